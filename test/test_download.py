"""mono-depth-download-kitti against a local HTTP server serving small KITTI-layout archives."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import io
from pathlib import Path
import socket
import threading
import zipfile

import cv2
import numpy as np
import pytest

from mono_depth_ros.datasets.kitti import download as kd
from mono_depth_ros.tools import download_kitti

# Drives served by the test server (all in the official list); the split names two of them.
DRIVES = ('2011_09_26_drive_0001_sync', '2011_09_26_drive_0002_sync', '2011_09_28_drive_0001_sync')
SPLIT_LINES = ('2011_09_26/2011_09_26_drive_0002_sync 0000000001 l\n'
               '2011_09_28/2011_09_28_drive_0001_sync 0000000000 r\n'
               '2011_09_26/2011_09_26_drive_0002_sync 0000000000 l\n')
WANTED = {'/raw_data/2011_09_26_calib.zip', '/raw_data/2011_09_28_calib.zip',
          '/raw_data/2011_09_26_drive_0002/2011_09_26_drive_0002_sync.zip',
          '/raw_data/2011_09_28_drive_0001/2011_09_28_drive_0001_sync.zip'}
FRAMES = 2


def drive_members(drive: str) -> dict[str, bytes]:
    """Files of a small drive archive: colour images and Velodyne scans, KITTI layout."""
    date = drive[:10]
    rng = np.random.default_rng(int(drive[-9:-5]) + 100 * int(date[-2:]))
    members = {}
    for frame in range(FRAMES):
        # Smooth image (JPEG-friendly) with a drive-specific pattern.
        ys, xs = np.mgrid[0:24, 0:40]
        image = np.stack([xs * 6, ys * 10, (xs + ys + frame * 20) % 256], axis=-1) % 256
        png = cv2.imencode('.png', image.astype(np.uint8))[1].tobytes()
        for camera in ('image_02', 'image_03'):
            members[f'{date}/{drive}/{camera}/data/{frame:010d}.png'] = png
        scan = rng.normal(size=(50, 4)).astype(np.float32)
        members[f'{date}/{drive}/velodyne_points/data/{frame:010d}.bin'] = scan.tobytes()
    members[f'{date}/{drive}/image_02/timestamps.txt'] = b'2011-09-26 13:02:25.964389445\n'
    return members


def calib_members(date: str) -> dict[str, bytes]:
    """Files of a calibration archive."""
    return {f'{date}/calib_cam_to_cam.txt': b'calib_time: 09-Jan-2012 13:57:47\n',
            f'{date}/calib_velo_to_cam.txt': b'R: 1 0 0 0 1 0 0 0 1\nT: 0 0 0\n',
            f'{date}/calib_imu_to_velo.txt': b'R: 1 0 0 0 1 0 0 0 1\nT: 0 0 0\n'}


def make_zip(members: dict[str, bytes]) -> bytes:
    """Zip members uncompressed (so corrupting a data byte breaks exactly one CRC)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


class Server:
    """State of the test server: files by URL path, a request log and fault switches."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.log: list[tuple[str, str | None, int]] = []  # (path, Range header, status)
        self.cut_once: dict[str, int] = {}  # path -> bytes to send before dropping, once
        self.ignore_range = False
        self.url = ''


def make_handler(state: Server):
    """A request handler serving state.files with Range support and one-shot cut-offs."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server dispatches to
            data = state.files.get(self.path)
            wanted = self.headers.get('Range')
            if data is None:
                return self._reply(404, b'', {})
            start = 0
            if wanted and not state.ignore_range:
                start = int(wanted.removeprefix('bytes=').rstrip('-'))
                if start >= len(data):
                    return self._reply(416, b'', {'Content-Range': f'bytes */{len(data)}'})
            status = 206 if start else 200
            span = f'bytes {start}-{len(data) - 1}/{len(data)}'
            headers = {'Content-Range': span} if start else {}
            body = data[start:]
            cut = state.cut_once.pop(self.path, None)
            self._reply(status, body, headers, send=body if cut is None else body[:cut])

        def _reply(self, status, body, headers, send=None):
            state.log.append((self.path, self.headers.get('Range'), status))
            self.send_response(status)
            self.send_header('Content-Length', str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body if send is None else send)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail any connection attempt to a host other than 127.0.0.1, and bypass proxies."""
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        assert address[0] in ('127.0.0.1', 'localhost'), f'non-loopback connection to {address}'
        return real(address, *args, **kwargs)

    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy',
                 'ALL_PROXY'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, 'create_connection', guarded)


@pytest.fixture
def server():
    """A KITTI mirror on 127.0.0.1 serving calib zips for two dates and three drives."""
    state = Server()
    for date in ('2011_09_26', '2011_09_28'):
        state.files[f'/raw_data/{date}_calib.zip'] = make_zip(calib_members(date))
    for drive in DRIVES:
        state.files[f'/raw_data/{drive[:-5]}/{drive}.zip'] = make_zip(drive_members(drive))
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), make_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f'http://127.0.0.1:{httpd.server_address[1]}/raw_data'
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def split_file(tmp_path) -> Path:
    path = tmp_path / 'my_split.txt'
    path.write_text(SPLIT_LINES)
    return path


def cli(server, split_file, out, *extra) -> int:
    """Run the tool on the test split against the test server."""
    return download_kitti.main(['--split-file', str(split_file), '--out', str(out),
                                '--base-url', server.url, '--quiet', '--backoff', '0', *extra])


def test_packaged_archive_list_is_the_official_one():
    archives = kd.read_archive_list()
    assert len(archives) == 66
    assert sum(a.drive is None for a in archives) == 5
    drive = next(a for a in archives if a.drive == '2011_09_26_drive_0002_sync')
    assert drive.url == ('https://s3.eu-central-1.amazonaws.com/avg-kitti/raw_data/'
                         '2011_09_26_drive_0002/2011_09_26_drive_0002_sync.zip')
    mirrored = kd.read_archive_list(base_url='http://mirror.example/kitti/')
    assert mirrored[0].url == 'http://mirror.example/kitti/2011_09_26_calib.zip'


def test_eigen_split_needs_28_drives_and_5_calibrations(capsys, tmp_path):
    assert download_kitti.main(['--split', 'eigen', '--dry-run', '--out', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'split eigen: 33 archives (28 drives + 5 calibration)' in out
    assert 'dry run: 33 of 33 archives would be fetched' in out
    assert out.count('  fetch ') == 33
    zhou = kd.split_drives(kd.split_files('eigen_zhou'))
    assert len(zhou) == 32  # train and val lists together


def test_fetches_exactly_the_split_archives_then_skips_them(server, split_file, tmp_path, capsys):
    out = tmp_path / 'kitti'
    assert cli(server, split_file, tmp_path / 'dry', '--dry-run') == 0
    assert 'dry run: 4 of 4 archives would be fetched' in capsys.readouterr().out
    assert server.log == [] and not (tmp_path / 'dry').exists()

    assert cli(server, split_file, out) == 0
    assert {path for path, _, _ in server.log} == WANTED and len(server.log) == 4
    members = drive_members('2011_09_26_drive_0002_sync')
    for name, data in members.items():
        assert (out / name).read_bytes() == data, name
    assert (out / '2011_09_26' / 'calib_cam_to_cam.txt').is_file()
    assert (out / '2011_09_28' / '2011_09_28_drive_0001_sync' / 'velodyne_points').is_dir()
    assert not (out / '2011_09_26' / '2011_09_26_drive_0001_sync').exists()
    assert sorted(p.name for p in (out / kd.WORK_DIR).iterdir()) == sorted(
        Path(path).name + '.extracted' for path in WANTED)  # zips removed, markers left
    assert 'done: 4 fetched, 0 already extracted, 0 failed' in capsys.readouterr().out

    assert cli(server, split_file, out) == 0
    assert len(server.log) == 4
    assert 'done: 0 fetched, 4 already extracted, 0 failed' in capsys.readouterr().out


def test_resumes_a_partial_download_with_a_range_request(server, tmp_path):
    path = '/raw_data/2011_09_26_drive_0002/2011_09_26_drive_0002_sync.zip'
    data = server.files[path]
    dest = tmp_path / 'drive.zip'
    (tmp_path / 'drive.zip.part').write_bytes(data[:1000])
    kd.download(server.url + path.removeprefix('/raw_data'), dest, progress=False)
    assert server.log == [(path, 'bytes=1000-', 206)]
    assert dest.read_bytes() == data and not (tmp_path / 'drive.zip.part').exists()


def test_interrupted_transfer_is_resumed(server, tmp_path):
    path = '/raw_data/2011_09_28_calib.zip'
    server.cut_once[path] = 123
    dest = kd.download(server.url + '/2011_09_28_calib.zip', tmp_path / 'c.zip', backoff=0,
                       progress=False)
    assert server.log == [(path, None, 200), (path, 'bytes=123-', 206)]
    assert dest.read_bytes() == server.files[path]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    path = '/raw_data/2011_09_28_calib.zip'
    server.ignore_range = True
    (tmp_path / 'c.zip.part').write_bytes(b'x' * 500)  # stale bytes that must not survive
    dest = kd.download(server.url + '/2011_09_28_calib.zip', tmp_path / 'c.zip', progress=False)
    assert server.log == [(path, 'bytes=500-', 200)]
    assert dest.read_bytes() == server.files[path]


def test_complete_part_file_is_accepted_on_416(server, tmp_path):
    path = '/raw_data/2011_09_28_calib.zip'
    (tmp_path / 'c.zip.part').write_bytes(server.files[path])
    dest = kd.download(server.url + '/2011_09_28_calib.zip', tmp_path / 'c.zip', progress=False)
    assert server.log[-1][2] == 416 and dest.read_bytes() == server.files[path]


def test_corrupt_archive_is_named_kept_aside_and_others_proceed(server, split_file, tmp_path,
                                                                capsys):
    path = '/raw_data/2011_09_26_drive_0002/2011_09_26_drive_0002_sync.zip'
    data = bytearray(server.files[path])
    first = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
    data[first.header_offset + 30 + len(first.filename) + 10] ^= 0xFF
    server.files[path] = bytes(data)
    out = tmp_path / 'kitti'
    assert cli(server, split_file, out) == 1
    err = capsys.readouterr().err
    assert '2011_09_26_drive_0002_sync.zip: corrupt archive' in err and first.filename in err
    assert (out / kd.WORK_DIR / '2011_09_26_drive_0002_sync.zip.corrupt').is_file()
    assert not (out / '2011_09_26' / '2011_09_26_drive_0002_sync').exists()
    assert (out / '2011_09_28' / '2011_09_28_drive_0001_sync' / 'image_03').is_dir()
    assert (out / '2011_09_26' / 'calib_velo_to_cam.txt').is_file()
    server.files[path] = make_zip(drive_members('2011_09_26_drive_0002_sync'))
    assert cli(server, split_file, out) == 0  # the next run fetches only the failed one
    assert [p for p, _, _ in server.log].count(path) == 2 and len(server.log) == 5


def test_convert_jpg_leaves_readable_jpegs_and_no_pngs(server, split_file, tmp_path, capsys):
    out = tmp_path / 'kitti'
    assert cli(server, split_file, out, '--convert', 'jpg', '--jpeg-quality', '95') == 0
    assert 'done: 4 fetched, 0 already extracted, 0 failed, 8 images converted' in (
        capsys.readouterr().out)
    assert list(out.rglob('*.png')) == []
    jpgs = sorted(out.rglob('*.jpg'))
    assert len(jpgs) == 2 * 2 * FRAMES  # two drives, two cameras
    original = cv2.imdecode(np.frombuffer(drive_members('2011_09_26_drive_0002_sync')[
        '2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000001.png'], np.uint8), 1)
    jpg = cv2.imread(str(out / '2011_09_26/2011_09_26_drive_0002_sync/image_02/data/'
                                '0000000001.jpg'))
    assert jpg.shape == original.shape == (24, 40, 3)
    assert np.abs(jpg.astype(int) - original).mean() < 6
    assert len(list(out.rglob('*.bin'))) == 2 * FRAMES


def test_connection_refused_retries_then_names_the_url(tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    url = f'http://127.0.0.1:{port}/x.zip'
    with pytest.raises(kd.DownloadError, match=r'x\.zip.*gave up after 3 attempts'):
        kd.download(url, tmp_path / 'x.zip', retries=2, backoff=0, progress=False)


def test_missing_file_on_server_is_an_http_error(server, tmp_path):
    with pytest.raises(kd.DownloadError, match='HTTP 404'):
        kd.download(server.url + '/nope.zip', tmp_path / 'nope.zip', backoff=0, progress=False)
    assert len(server.log) == 1  # a 404 is not retried


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    bad = tmp_path / 'bad.txt'
    bad.write_text('2011_09_26/2011_09_26_drive_0002_sync 0000000001 l\n'
                   '2011_09_26/2011_09_26_drive_0002_sync x l\n')
    assert download_kitti.main(['--split-file', str(bad), '--dry-run']) == 2
    assert 'line 2' in capsys.readouterr().err
    unknown = tmp_path / 'unknown.txt'
    unknown.write_text('2011_09_26/2011_09_26_drive_0999_sync 1 l\n')
    assert download_kitti.main(['--split-file', str(unknown), '--dry-run']) == 2
    assert 'not in the archive list: 2011_09_26_drive_0999_sync' in capsys.readouterr().err
    odd = tmp_path / 'odd.txt'
    odd.write_text('2011_09_26/some_drive 1 l\n')
    assert download_kitti.main(['--split-file', str(odd), '--dry-run']) == 2
    assert "'2011_09_26/some_drive' is not a KITTI raw drive" in capsys.readouterr().err
    listing = tmp_path / 'list.txt'
    listing.write_text('http://127.0.0.1/2011_09_26_calib.zip\nhttp://127.0.0.1/readme.txt\n')
    with pytest.raises(kd.DownloadError, match=r'list\.txt:2: .readme\.txt. is neither'):
        kd.read_archive_list(listing)
    with pytest.raises(kd.DownloadError, match="unknown split 'kitti'"):
        kd.split_files('kitti')


def test_archive_escaping_the_layout_is_refused(tmp_path):
    archive = kd.parse_archive_name('2011_09_26_drive_0002_sync.zip', 'http://127.0.0.1/x')
    path = tmp_path / archive.name
    path.write_bytes(make_zip({'2011_09_26/2011_09_26_drive_0002_sync/a.txt': b'a',
                               '2011_09_26/../../evil.txt': b'b'}))
    with pytest.raises(kd.DownloadError, match='evil.txt.*not a KITTI raw archive'):
        kd.extract(path, archive, tmp_path / 'out')
    assert not (tmp_path / 'evil.txt').exists()
