"""KITTI raw I/O: calibration files, Velodyne scans, images, improved ground truth, split lists."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from mono_depth_ros.datasets.kitti import (
    KittiFormatError,
    load_intrinsics,
    load_velodyne,
    read_calib_file,
    read_image,
    read_improved_gt,
    read_split,
    split_path,
    SplitEntry,
    velo_to_image_matrix,
)

SAMPLE = Path(__file__).resolve().parent / 'data' / 'kitti_sample'
CALIB_DIR = SAMPLE / '2011_09_26'
FRAME = SplitEntry('2011_09_26/2011_09_26_drive_0001_sync', 0, 'l')


def test_read_calib_file_parses_matrices_and_skips_the_date_line():
    calib = read_calib_file(CALIB_DIR / 'calib_cam_to_cam.txt')
    assert 'calib_time' not in calib
    assert calib['P_rect_02'].shape == (12,)
    assert calib['P_rect_02'][0] == pytest.approx(721.5377)
    assert calib['P_rect_02'][3] == pytest.approx(44.85728)
    np.testing.assert_allclose(calib['S_rect_02'], [1242, 375])
    velo = read_calib_file(CALIB_DIR / 'calib_velo_to_cam.txt')
    assert velo['R'].shape == (9,) and velo['T'][2] == pytest.approx(-0.2717806)


def test_load_intrinsics_left_and_right():
    k_left, size = load_intrinsics(CALIB_DIR, 2)
    assert size == (375, 1242)
    np.testing.assert_allclose(k_left, [[721.5377, 0, 609.5593], [0, 721.5377, 172.854],
                                        [0, 0, 1]])
    k_right, _ = load_intrinsics(CALIB_DIR, 3)
    np.testing.assert_allclose(k_right, k_left)
    with pytest.raises(ValueError, match='camera must be 2'):
        load_intrinsics(CALIB_DIR, 1)


def test_velo_to_image_maps_a_point_ahead_to_its_hand_computed_pixel():
    matrix, _ = velo_to_image_matrix(CALIB_DIR, 2)
    velo = read_calib_file(CALIB_DIR / 'calib_velo_to_cam.txt')
    cam = read_calib_file(CALIB_DIR / 'calib_cam_to_cam.txt')
    point = np.array([10.0, 1.0, -1.0])
    in_cam = velo['R'].reshape(3, 3) @ point + velo['T']
    rect = cam['R_rect_00'].reshape(3, 3) @ in_cam
    expected = cam['P_rect_02'].reshape(3, 4) @ np.append(rect, 1.0)
    np.testing.assert_allclose(matrix @ np.append(point, 1.0), expected, rtol=1e-12)


def test_calibration_missing_key_and_missing_file_are_named(tmp_path):
    (tmp_path / 'calib_cam_to_cam.txt').write_text(
        (CALIB_DIR / 'calib_cam_to_cam.txt').read_text().replace('P_rect_02:', 'P_rect_0x:'))
    with pytest.raises(KittiFormatError, match="no key 'P_rect_02'"):
        load_intrinsics(tmp_path, 2)
    (tmp_path / 'calib_cam_to_cam.txt').write_text(
        (CALIB_DIR / 'calib_cam_to_cam.txt').read_text().replace(
            'R_rect_00: 9.999239e-01 ', 'R_rect_00: '))
    with pytest.raises(KittiFormatError, match="'R_rect_00' has 8 values, expected 9"):
        velo_to_image_matrix(tmp_path, 2)
    with pytest.raises(FileNotFoundError, match='calib_velo_to_cam.txt'):
        read_calib_file(tmp_path / 'calib_velo_to_cam.txt')
    (tmp_path / 'bad.txt').write_text('P_rect_02 1 2 3\n')
    with pytest.raises(KittiFormatError, match='line 1'):
        read_calib_file(tmp_path / 'bad.txt')
    (tmp_path / 'bad.txt').write_text('calib_time: 09-Jan-2012\nT: 1 2 x\n')
    with pytest.raises(KittiFormatError, match="line 2: 'T' holds a non-number"):
        read_calib_file(tmp_path / 'bad.txt')


def test_load_velodyne_reads_the_sample_scan():
    points = load_velodyne(FRAME.velodyne_path(SAMPLE))
    assert points.dtype == np.float32 and points.shape == (114278, 4)
    assert np.isfinite(points).all()


def test_load_velodyne_rejects_a_truncated_scan_and_names_missing_files(tmp_path):
    np.arange(8, dtype=np.float32).tofile(tmp_path / 'ok.bin')
    np.testing.assert_array_equal(load_velodyne(tmp_path / 'ok.bin'),
                                  [[0, 1, 2, 3], [4, 5, 6, 7]])
    (tmp_path / 'bad.bin').write_bytes(b'\0' * 20)
    with pytest.raises(KittiFormatError, match=r'bad\.bin has 20 bytes, not a multiple of 16'):
        load_velodyne(tmp_path / 'bad.bin')
    with pytest.raises(FileNotFoundError, match='missing.bin'):
        load_velodyne(tmp_path / 'missing.bin')


def test_read_image_is_rgb(tmp_path):
    image = read_image(FRAME.image_path(SAMPLE))
    assert image.shape == (375, 1242, 3) and image.dtype == np.uint8
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's channel order
    cv2.imwrite(str(tmp_path / 'blue.png'), bgr)
    np.testing.assert_array_equal(read_image(tmp_path / 'blue.png')[0, 0], [0, 0, 255])
    (tmp_path / 'junk.png').write_bytes(b'not a png')
    with pytest.raises(KittiFormatError, match='could not be decoded'):
        read_image(tmp_path / 'junk.png')


def test_read_improved_gt_divides_by_256(tmp_path):
    raw = np.array([[0, 256, 5120], [65535, 1, 12800]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / 'gt.png'), raw)
    depth = read_improved_gt(tmp_path / 'gt.png')
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, [[0, 1, 20], [255.99609375, 1 / 256, 50]])
    cv2.imwrite(str(tmp_path / 'eight.png'), raw.astype(np.uint8))
    with pytest.raises(KittiFormatError, match='uint16'):
        read_improved_gt(tmp_path / 'eight.png')


def test_split_entry_paths():
    entry = SplitEntry('2011_09_26/2011_09_26_drive_0002_sync', 69, 'r')
    root = Path('/kitti')
    assert entry.camera == 3
    assert entry.image_path(root) == Path(
        '/kitti/2011_09_26/2011_09_26_drive_0002_sync/image_03/data/0000000069.png')
    assert entry.velodyne_path(root) == Path(
        '/kitti/2011_09_26/2011_09_26_drive_0002_sync/velodyne_points/data/0000000069.bin')
    assert entry.improved_gt_path(root) == Path('/kitti/2011_09_26/2011_09_26_drive_0002_sync/'
                                                'proj_depth/groundtruth/image_03/0000000069.png')
    assert entry.calib_dir(root) == Path('/kitti/2011_09_26')


@pytest.mark.parametrize('name, count', [
    ('eigen', 697), ('eigen_benchmark', 652), ('eigen_zhou/train', 39810),
    ('eigen_zhou/val', 4424), ('eigen_full/train', 45200), ('eigen_full/val', 1776)])
def test_packaged_splits_have_their_published_sizes(name, count):
    entries = read_split(name)
    assert len(entries) == count
    assert split_path(name).is_file()


def test_eigen_first_frames_parse_padded_and_plain_indices():
    assert read_split('eigen')[0] == SplitEntry('2011_09_26/2011_09_26_drive_0002_sync', 69, 'l')
    assert read_split('eigen_benchmark')[0] == read_split('eigen')[0]


def test_malformed_split_lines_name_the_line(tmp_path):
    good = '2011_09_26/2011_09_26_drive_0001_sync 0 l\n'
    cases = {
        'two fields': ('2011_09_26/2011_09_26_drive_0001_sync 3\n', 'expected'),
        'bad side': ('2011_09_26/2011_09_26_drive_0001_sync 3 x\n', "side 'x'"),
        'bad frame': ('2011_09_26/2011_09_26_drive_0001_sync -3 l\n', "frame index '-3'"),
        'no date': ('2011_09_26_drive_0001_sync 3 l\n', 'must be "<date>/<drive>"'),
    }
    for name, (line, message) in cases.items():
        path = tmp_path / f'{name}.txt'
        path.write_text(good + '\n' + line)
        with pytest.raises(ValueError, match=f'line 3: .*{message}'):
            read_split(path)
    (tmp_path / 'empty.txt').write_text('\n')
    with pytest.raises(ValueError, match='lists no frames'):
        read_split(tmp_path / 'empty.txt')
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        read_split(tmp_path / 'nope.txt')
    with pytest.raises(ValueError, match='unknown split'):
        split_path('eigen_zhou')
