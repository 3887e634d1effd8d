"""Training layer: experiment configs, losses, the trainer, data loaders, DDP and checkpoints."""
