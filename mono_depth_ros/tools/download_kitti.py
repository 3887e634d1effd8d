"""mono-depth-download-kitti: fetch, verify and extract the KITTI raw archives a split needs."""

import argparse
from pathlib import Path
import sys

from mono_depth_ros.datasets.kitti.download import (
    ARCHIVE_LIST,
    DownloadError,
    marker_path,
    read_archive_list,
    run,
    select_archives,
    split_drives,
    split_files,
    split_names,
    WORK_DIR,
)


def _bounded_int(low: int, high: int):
    """An argparse type accepting integers in [low, high]."""
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f'{value} is outside [{low}, {high}]')
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument('--split', choices=split_names(),
                       help='packaged split (a group such as eigen_zhou means all its lists)')
    which.add_argument('--split-file', type=Path, help='your own split list file')
    parser.add_argument('--out', type=Path, default=Path('kitti_data'),
                        help='KITTI raw root to extract into (<out>/<date>/...)')
    parser.add_argument('--archive-list', type=Path, default=ARCHIVE_LIST,
                        help='file with one archive URL per line (default: the official list)')
    parser.add_argument('--base-url', help='mirror to fetch from instead, laid out like '
                        'raw_data/ (<date>_calib.zip, <drive>/<drive>_sync.zip)')
    parser.add_argument('--convert', choices=['jpg'],
                        help='re-encode extracted PNG camera images as JPEG (PNGs deleted)')
    parser.add_argument('--jpeg-quality', type=_bounded_int(1, 100), default=92,
                        help='JPEG quality for --convert jpg, 1-100')
    parser.add_argument('--keep-zips', action='store_true',
                        help=f'keep archives in <out>/{WORK_DIR} after extracting')
    parser.add_argument('--retries', type=_bounded_int(0, 100), default=5,
                        help='attempts after a connection error, with exponential backoff')
    parser.add_argument('--backoff', type=float, default=1.0,
                        help='first wait before a retry, seconds (doubles each time)')
    parser.add_argument('--timeout', type=float, default=60.0, help='socket timeout, seconds')
    parser.add_argument('--dry-run', action='store_true', help='list what would be fetched')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Fetch the archives; exit 1 if any failed, 2 on bad input."""
    args = build_parser().parse_args(argv)
    label = str(args.split_file) if args.split_file else args.split
    try:
        drives = split_drives([args.split_file] if args.split_file else split_files(args.split))
        archives = select_archives(read_archive_list(args.archive_list, args.base_url), drives)
    except DownloadError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    calibs = sum(archive.drive is None for archive in archives)
    print(f'split {label}: {len(archives)} archives ({len(drives)} drives + {calibs} calibration)'
          f' into {args.out}')
    if args.dry_run:
        done = 0
        for archive in archives:
            extracted = marker_path(args.out, archive).exists()
            done += extracted
            print(f'  {"extracted" if extracted else "fetch":<9}  {archive.url}')
        print(f'dry run: {len(archives) - done} of {len(archives)} archives would be fetched, '
              f'{done} already extracted')
        return 0
    try:
        summary = run(archives, args.out, keep_zips=args.keep_zips, convert=args.convert,
                      quality=args.jpeg_quality, progress=not args.quiet, retries=args.retries,
                      backoff=args.backoff, timeout=args.timeout)
    except DownloadError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(f'done: {len(summary.fetched)} fetched, {len(summary.skipped)} already extracted, '
          f'{len(summary.failed)} failed'
          + (f', {summary.converted} images converted to jpg' if args.convert else ''))
    for message in summary.failed.values():
        print(f'  FAILED {message}', file=sys.stderr)
    return 1 if summary.failed else 0


if __name__ == '__main__':
    sys.exit(main())
