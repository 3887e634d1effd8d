"""Learning-rate schedules: linear warm-up, then poly, cosine or constant decay."""

import math

import torch


class LearningRateFactor:
    """Multiplier of the base learning rate at a step (a picklable object for LambdaLR)."""

    def __init__(self, name: str, total_steps: int, warmup_steps: int = 0,
                 warmup_start: float = 0.01, power: float = 0.9,
                 min_lr_ratio: float = 0.0) -> None:
        self.name = name
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start = float(warmup_start)
        self.power = float(power)
        self.min_lr_ratio = float(min_lr_ratio)

    def __call__(self, step: int) -> float:
        """Return the lr factor after `step` optimizer steps."""
        if step < self.warmup_steps:
            return self.warmup_start + (1.0 - self.warmup_start) * step / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min(max(step - self.warmup_steps, 0) / span, 1.0)
        if self.name == 'poly':
            decay = (1.0 - progress) ** self.power
        elif self.name == 'cosine':
            decay = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            decay = 1.0
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * decay


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: dict,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Return a LambdaLR stepping once per optimizer step, as the schedule config says."""
    factor = LearningRateFactor(schedule['name'], total_steps, schedule['warmup_steps'],
                                schedule['warmup_start'], schedule['power'],
                                schedule['min_lr_ratio'])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
