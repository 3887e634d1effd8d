"""Datasets layer: KITTI raw (calibration, I/O, ground truth, splits, download), the synthetic
world, the training dataset with its augmentation, and the table of data sources."""
