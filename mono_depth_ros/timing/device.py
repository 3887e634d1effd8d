"""What the benchmark knows about the device: its name, peak FLOP rate and peak memory."""

import os
import platform
import time

import torch

# Dense peak rates (TFLOP/s, no sparsity, boost clock, vendor datasheets) of known GPUs, matched
# by a substring of torch.cuda.get_device_name(): (fp32 without TF32, fp16/bf16 tensor cores).
GPU_PEAK_TFLOPS = {
    'H200': (67.0, 989.0),
    'H100 PCIe': (51.0, 756.0),
    'H100 NVL': (60.0, 835.0),
    'H100': (67.0, 989.0),
    'GH200': (67.0, 989.0),
    'A100': (19.5, 312.0),
    'A10G': (31.2, 125.0),
    'A10': (31.2, 125.0),
    'L40S': (91.6, 362.0),
    'L4': (30.3, 121.0),
    'T4': (8.1, 65.0),
    'V100': (15.7, 125.0),
    'RTX 4090': (82.6, 165.2),
    'RTX 3090': (35.6, 71.0),
    'Orin': (5.3, 10.6),
}


def device_name(device: torch.device) -> str:
    """A human-readable name of the device (GPU model, or CPU model and thread count)."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            model = next(line.split(':', 1)[1].strip() for line in f
                         if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{model} ({torch.get_num_threads()} threads)'


def lookup_gpu_peak(name: str, precision: str) -> float | None:
    """Datasheet peak TFLOP/s of a known GPU at a precision, or None when the GPU is unknown."""
    for key, (fp32, half) in GPU_PEAK_TFLOPS.items():
        if key.lower() in name.lower():
            return fp32 if precision == 'fp32' else half
    return None


def probe_peak_tflops(device: torch.device, precision: str = 'fp32', size: int | None = None,
                      repeats: int = 5) -> float:
    """Measured matmul TFLOP/s on the device: the best of a few square matmuls."""
    dtype = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}[precision]
    if device.type == 'cpu' and dtype == torch.float16:
        dtype = torch.float32  # CPUs have no fast fp16 matmul; fp32 is their peak.
    # On a 2-core CPU VM a 1024 matmul read 0.09-0.17 TFLOP/s from run to run (a network then
    # reached over 100 % of it); 3072 (about 0.4 s a matmul) read 0.16-0.18.
    n = size or (4096 if device.type == 'cuda' else 3072)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float('inf')
    with torch.inference_mode():
        torch.matmul(a, b)  # warm-up: library initialisation and kernel selection
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            torch.matmul(a, b)
            synchronize(device)
            best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e12


def peak_tflops(device: torch.device, precision: str = 'fp32') -> tuple[float, str]:
    """Peak TFLOP/s of the device and where the number comes from ('table' or 'probe')."""
    if device.type == 'cuda':
        known = lookup_gpu_peak(torch.cuda.get_device_name(device), precision)
        if known is not None:
            return known, 'table'
    return probe_peak_tflops(device, precision), 'probe'


def synchronize(device: torch.device) -> None:
    """Wait for queued work on the device (a no-op on the CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _status_kib(field: str) -> int | None:
    """A memory field of /proc/self/status in KiB, or None where /proc is unavailable."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mib() -> float | None:
    """Current resident memory of this process in MiB (None where /proc is unavailable)."""
    kib = _status_kib('VmRSS')
    return None if kib is None else kib / 1024.0


def reset_peak_memory(device: torch.device) -> float:
    """Start a new peak-memory window; return the memory in use now (MiB, same kind as peak).

    CUDA: the allocator's peak and current allocation. CPU: the RSS high-water mark (VmHWM,
    reset through /proc/self/clear_refs on Linux) and the current RSS.
    """
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2 ** 20
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # Linux: reset VmHWM to the current RSS
    except OSError:
        pass
    return rss_mib() or 0.0


def peak_memory_mib(device: torch.device) -> tuple[float | None, str]:
    """Peak memory since reset_peak_memory and its kind: CUDA allocated, or the process RSS."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20, 'cuda_max_allocated'
    kib = _status_kib('VmHWM')
    if kib is None:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 'rss_peak_lifetime'
    return kib / 1024.0, 'rss_peak'


def cpu_count() -> int:
    """Number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
