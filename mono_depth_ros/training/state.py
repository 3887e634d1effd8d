"""Random-number-generator state: seed, capture and restore Python, NumPy, torch and CUDA RNGs."""

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, torch and every CUDA device from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """Return every RNG state as tensors and plain values (safe for torch.load weights_only)."""
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state = {
        'python': {'version': version, 'state': torch.tensor(internal, dtype=torch.int64),
                   'gauss': gauss},
        'numpy': {'bit_generator': numpy_state['bit_generator'],
                  'key': torch.from_numpy(numpy_state['state']['key'].astype(np.int64)),
                  'pos': int(numpy_state['state']['pos']),
                  'has_gauss': int(numpy_state['has_gauss']),
                  'gauss': float(numpy_state['gauss'])},
        'torch': torch.get_rng_state(),
        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states written by capture_rng_state (CUDA states only where CUDA exists)."""
    python = state['python']
    random.setstate((python['version'], tuple(int(v) for v in python['state'].tolist()),
                     python['gauss']))
    numpy = state['numpy']
    np.random.set_state({
        'bit_generator': numpy['bit_generator'],
        'state': {'key': numpy['key'].numpy().astype(np.uint32), 'pos': numpy['pos']},
        'has_gauss': numpy['has_gauss'], 'gauss': numpy['gauss'],
    })
    torch.set_rng_state(state['torch'].cpu())
    cuda_states = state.get('cuda') or []
    if cuda_states and torch.cuda.is_available():
        count = min(len(cuda_states), torch.cuda.device_count())
        for index in range(count):
            torch.cuda.set_rng_state(cuda_states[index].cpu(), index)
