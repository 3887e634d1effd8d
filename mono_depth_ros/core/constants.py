"""The one definition of every shared constant: depth limits, crops, image sizes, intrinsics."""

# Depth range used by KITTI evaluation (metres): the field's standard limits.
MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0

# Evaluation crops as fractions of (height, width): (top, bottom, left, right).
# Garg et al. 2016 crop, used with the Eigen split; Eigen et al. 2014 crop.
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
EIGEN_CROP = (0.3324324, 0.91351351, 0.0359477, 0.96405229)

# KITTI raw rectified image size (height, width) and the benchmark's bottom-centre crop.
KITTI_IMAGE_SIZE = (375, 1242)
KITTI_BENCHMARK_CROP = (352, 1216)

# Intrinsics of KITTI's left colour camera (P_rect_02, 2011_09_26): the canonical training camera
# and the node's fallback when no CameraInfo arrives. (fx, fy, cx, cy) in pixels at 1242x375.
KITTI_INTRINSICS = (721.5377, 721.5377, 609.5593, 172.854)

# Camera mounting height above the road on the KITTI vehicle (metres).
KITTI_CAMERA_HEIGHT = 1.65

# Velodyne HDL-64E mounting height above the road on the KITTI vehicle (metres): base_link on the
# ground below it is the parent of velo_link in the bags mono-depth-kitti2bag writes.
KITTI_VELODYNE_HEIGHT = 1.73

# ImageNet normalisation (torchvision's pretrained encoders expect it).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
