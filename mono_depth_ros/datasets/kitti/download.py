"""Fetch, verify and extract the KITTI raw archives that a split needs (resumable, stdlib HTTP)."""

from dataclasses import dataclass, field
import http.client
import os
from pathlib import Path
import re
import socket
import time
from typing import BinaryIO
import urllib.error
import urllib.request
import zipfile
import zlib

from tqdm import tqdm

from mono_depth_ros.datasets.kitti.io import KITTI_FILES
from mono_depth_ros.datasets.kitti.splits import read_split, SPLIT_FILES, split_path

ARCHIVE_LIST = KITTI_FILES / 'archives.txt'
# Folder (below the output directory) for partial downloads, kept-aside archives and markers.
WORK_DIR = '.kitti_download'
CHUNK_BYTES = 1 << 20
MAX_BACKOFF_S = 60.0

_CALIB_RE = re.compile(r'^(\d{4}_\d{2}_\d{2})_calib\.zip$')
_DRIVE_RE = re.compile(r'^((\d{4}_\d{2}_\d{2})_drive_\d{4}_sync)\.zip$')
_FOLDER_RE = re.compile(r'^(\d{4}_\d{2}_\d{2})/\1_drive_\d{4}_sync$')
_CONTENT_RANGE_RE = re.compile(r'^bytes (\d+)-(\d+)/(\d+|\*)$')
_UNSATISFIED_RE = re.compile(r'^bytes \*/(\d+)$')
# Errors after which a transfer is worth trying again (the .part file keeps what arrived).
_TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
              socket.timeout)


class DownloadError(RuntimeError):
    """A download, archive list, split file or archive could not be used."""


class CorruptArchiveError(DownloadError):
    """A downloaded zip failed its integrity check."""


class _ShortTransferError(ConnectionError):
    """The server closed the connection before sending everything it announced."""


@dataclass(frozen=True)
class Archive:
    """One raw-data archive: a date's calibration zip or one synced drive."""

    name: str  # file name, e.g. 2011_09_26_drive_0002_sync.zip
    url: str
    date: str
    drive: str | None  # e.g. 2011_09_26_drive_0002_sync; None for a calibration zip

    @property
    def relative_url(self) -> str:
        """Path of this archive below the official raw_data/ folder."""
        if self.drive is None:
            return self.name
        return f'{self.drive[:-len("_sync")]}/{self.name}'


@dataclass
class Summary:
    """What a run did: archives fetched, skipped (already there) and failed, images converted."""

    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    converted: int = 0


def parse_archive_name(name: str, url: str) -> Archive:
    """Build an Archive from its file name; a name outside the KITTI scheme raises ValueError."""
    calib = _CALIB_RE.match(name)
    if calib:
        return Archive(name, url, calib.group(1), None)
    drive = _DRIVE_RE.match(name)
    if drive:
        return Archive(name, url, drive.group(2), drive.group(1))
    raise ValueError(f'{name!r} is neither <date>_calib.zip nor <date>_drive_<NNNN>_sync.zip')


def read_archive_list(path: str | Path = ARCHIVE_LIST,
                      base_url: str | None = None) -> list[Archive]:
    """Read an archive list (one URL per line); base_url redirects every archive to a mirror."""
    path = Path(path)
    if not path.is_file():
        raise DownloadError(f'archive list not found: {path}')
    archives = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        url = line.strip()
        if not url or url.startswith('#'):
            continue
        try:
            archive = parse_archive_name(url.rsplit('/', 1)[-1], url)
        except ValueError as error:
            raise DownloadError(f'{path}:{number}: {error}') from None
        if base_url is not None:
            archive = Archive(archive.name, f'{base_url.rstrip("/")}/{archive.relative_url}',
                              archive.date, archive.drive)
        archives.append(archive)
    if not archives:
        raise DownloadError(f'archive list {path} names no archives')
    return archives


def split_names() -> list[str]:
    """Packaged split names: each list ('eigen_zhou/train') and each group ('eigen_zhou')."""
    return sorted(set(SPLIT_FILES) | {name.split('/')[0] for name in SPLIT_FILES})


def split_files(split: str) -> list[Path]:
    """The packaged list files of a split name; a group name gives all of its lists."""
    names = [name for name in SPLIT_FILES if name == split or name.startswith(split + '/')]
    if not names:
        known = ', '.join(split_names())
        raise DownloadError(f'unknown split {split!r}; packaged splits: {known}')
    return [split_path(name) for name in sorted(names)]


def split_drives(paths: list[Path]) -> list[str]:
    """Sorted drive folders ('<date>/<date>_drive_NNNN_sync') named in split files."""
    drives = set()
    for path in paths:
        try:
            entries = read_split(Path(path))
        except (OSError, ValueError) as error:
            raise DownloadError(str(error)) from None
        for entry in entries:
            if not _FOLDER_RE.match(entry.folder):
                raise DownloadError(f'split file {path}: folder {entry.folder!r} is not a KITTI '
                                    'raw drive ("<date>/<date>_drive_NNNN_sync")')
            drives.add(entry.folder)
    return sorted(drives)


def select_archives(archives: list[Archive], drives: list[str]) -> list[Archive]:
    """The archives for the given drive folders plus each of their dates' calibration zip."""
    wanted = {folder.split('/')[1] for folder in drives}
    dates = {folder.split('/')[0] for folder in drives}
    chosen = [a for a in archives if a.drive in wanted or (a.drive is None and a.date in dates)]
    missing = sorted(wanted - {a.drive for a in chosen})
    missing += sorted(f'{date}_calib' for date in dates - {a.date for a in chosen if not a.drive})
    if missing:
        raise DownloadError(f'not in the archive list: {", ".join(missing)}')
    return chosen


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    """Send a GET for url, asking for the bytes from offset on when offset > 0."""
    if not url.startswith(('http://', 'https://')):
        raise DownloadError(f'only http(s) URLs can be fetched: {url}')
    headers = {'Range': f'bytes={offset}-'} if offset else {}
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _copy(response: http.client.HTTPResponse, out: BinaryIO, offset: int, name: str,
          progress: bool) -> None:
    """Stream the body to out, failing with _ShortTransferError if the server stops early."""
    length = response.headers.get('Content-Length')
    expected = int(length) if length is not None else None
    received = 0
    total = offset + expected if expected is not None else None
    with tqdm(total=total, initial=offset, unit='B', unit_scale=True, unit_divisor=1024,
              desc=name, disable=not progress, leave=False) as bar:
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if expected is not None and received < expected:
        raise _ShortTransferError(f'connection closed after {received} of {expected} bytes')


def _transfer(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One attempt: append to part (206) or rewrite it (200); leave part complete on success."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        # Range not satisfiable: the .part is already whole, or longer than the file.
        found = _UNSATISFIED_RE.match(error.headers.get('Content-Range', ''))
        if found and int(found.group(1)) == offset:
            return
        part.unlink()
        raise _ShortTransferError(f'range from byte {offset} refused; restarting') from None
    with response:
        mode = 'wb'
        if response.status == 206:
            found = _CONTENT_RANGE_RE.match(response.headers.get('Content-Range', ''))
            if not found or int(found.group(1)) != offset:
                part.unlink()
                raise _ShortTransferError('server answered a different range; restarting')
            mode = 'ab'
        else:
            offset = 0  # the server ignored the Range header: start over from byte 0
        with open(part, mode) as out:
            _copy(response, out, offset, part.name[:-len('.part')], progress)


def download(url: str, dest: Path, retries: int = 5, backoff: float = 1.0,
             timeout: float = 60.0, progress: bool = True) -> Path:
    """Download url to dest through dest.part, resuming it and retrying on connection errors."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + '.part')
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, timeout, progress)
            break
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == retries:
                raise DownloadError(f'{url}: HTTP {error.code} {error.reason}') from None
            reason = f'HTTP {error.code}'
        except _TRANSIENT as error:
            if attempt == retries:
                raise DownloadError(f'{url}: {error} (gave up after {retries + 1} attempts; '
                                    f'{part} is kept for resuming)') from None
            reason = str(error)
        wait = min(backoff * 2 ** attempt, MAX_BACKOFF_S)
        tqdm.write(f'{dest.name}: {reason}; retrying in {wait:.1f} s')
        time.sleep(wait)
    os.replace(part, dest)
    return dest


def verify_zip(path: Path) -> int:
    """Check every member's CRC; return the member count or raise CorruptArchiveError."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            count = len(archive.infolist())
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise CorruptArchiveError(f'{path.name}: corrupt archive ({error})') from None
    if bad is not None:
        raise CorruptArchiveError(f'{path.name}: corrupt archive (bad CRC in member {bad})')
    return count


def extract(path: Path, archive: Archive, out_dir: Path) -> None:
    """Extract a verified zip into out_dir, refusing members outside the KITTI raw layout."""
    prefix = f'{archive.date}/' if archive.drive is None else f'{archive.date}/{archive.drive}/'
    with zipfile.ZipFile(path) as zipped:
        names = zipped.namelist()
        for name in names:
            parts = Path(name).parts
            if name.startswith('/') or '..' in parts or not (
                    name.startswith(prefix) or name == f'{archive.date}/'):
                raise DownloadError(f'{archive.name}: member {name!r} is outside {prefix} '
                                    '(not a KITTI raw archive)')
        zipped.extractall(out_dir)


def marker_path(out_dir: Path, archive: Archive) -> Path:
    """The file whose presence says an archive has been extracted into out_dir."""
    return Path(out_dir) / WORK_DIR / f'{archive.name}.extracted'


def fetch_archive(archive: Archive, out_dir: Path, keep_zip: bool = False, **options) -> None:
    """Download, verify and extract one archive; a corrupt zip is moved aside as .corrupt."""
    work = Path(out_dir) / WORK_DIR
    dest = work / archive.name
    if not dest.exists():
        download(archive.url, dest, **options)
    try:
        count = verify_zip(dest)
    except CorruptArchiveError as error:
        aside = dest.with_name(dest.name + '.corrupt')
        os.replace(dest, aside)
        raise CorruptArchiveError(f'{error}; kept aside as {aside}') from None
    extract(dest, archive, Path(out_dir))
    marker_path(out_dir, archive).write_text(f'{count} members from {archive.url}\n')
    if not keep_zip:
        dest.unlink()


def convert_images(out_dir: Path, drives: list[str], quality: int = 92,
                   progress: bool = True) -> int:
    """Re-encode the drives' PNG camera images as JPEG; each PNG goes only once its JPEG exists."""
    import cv2

    pngs = sorted(png for folder in drives
                  for png in (Path(out_dir) / folder).glob('image_0[0-3]/data/*.png'))
    for png in tqdm(pngs, desc='png -> jpg', unit='img', disable=not progress, leave=False):
        image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DownloadError(f'cannot read image {png} for conversion')
        tmp = png.with_name(png.stem + '.tmp.jpg')
        if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise DownloadError(f'cannot write {tmp}')
        os.replace(tmp, png.with_suffix('.jpg'))
        png.unlink()
    return len(pngs)


def run(archives: list[Archive], out_dir: Path, keep_zips: bool = False,
        convert: str | None = None, quality: int = 92, progress: bool = True,
        **options) -> Summary:
    """Fetch every archive not yet extracted, carrying on past failures; convert if asked."""
    if convert not in (None, 'jpg'):
        raise DownloadError(f'unknown image format {convert!r}; supported: jpg')
    out_dir = Path(out_dir)
    (out_dir / WORK_DIR).mkdir(parents=True, exist_ok=True)
    summary = Summary()
    for index, archive in enumerate(archives, start=1):
        if marker_path(out_dir, archive).exists():
            summary.skipped.append(archive.name)
            continue
        tqdm.write(f'[{index}/{len(archives)}] {archive.name}')
        try:
            fetch_archive(archive, out_dir, keep_zip=keep_zips, progress=progress, **options)
        except DownloadError as error:
            tqdm.write(f'ERROR {error}')
            summary.failed[archive.name] = str(error)
            continue
        summary.fetched.append(archive.name)
    if convert == 'jpg':
        drives = [f'{a.date}/{a.drive}' for a in archives
                  if a.drive and a.name not in summary.failed]
        summary.converted = convert_images(out_dir, drives, quality, progress)
    return summary
