"""The offline bag tools above the live node: bag I/O, mono-depth-bag, kitti2bag, lidar ground
truth from a bag, scoring a recorded bag, and playing a drive to the node over DDS."""
