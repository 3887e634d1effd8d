"""Inference layer: the DepthEstimator interface, its backends, checkpoints in, outputs out."""
