"""Training data: the KITTI-layout depth dataset and its augmentation."""

from mono_depth_ros.data.dataset import KittiDepthDataset

__all__ = ['KittiDepthDataset']
