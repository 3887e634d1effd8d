"""Evaluation layer: scoring depth against ground truth with the KITTI protocol, and reports."""
