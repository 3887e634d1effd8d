"""Core layer: constants, strict configs, geometry, metrics, statistics and shared paths.

numpy, OpenCV and PyYAML only: no torch, no ROS. Every other layer builds on this one.
"""
