"""The `--smoke` flag every benchmark has: tiny sizes through the same code path, so CI proves each bench still
runs (tests/test_bench_smoke.py) without paying for a measurement."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def parse_args(parser: argparse.ArgumentParser, **tiny: object) -> argparse.Namespace:
    """Parse the command line; with --smoke, `tiny` replaces the defaults (options given explicitly still win)."""
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, same code path: proves the bench runs")
    args = parser.parse_args()
    if args.smoke:
        parser.set_defaults(**tiny)
        args = parser.parse_args()
    return args


@contextmanager
def work_dir(args: argparse.Namespace, default: Path) -> Iterator[Path]:
    """Where a bench keeps its files: --workdir, else `default` (kept for a look afterwards), except that a smoke
    run gets a fresh temp dir, removed afterwards, so that smoke runs never meet each other or a measurement."""
    if args.workdir or not args.smoke:
        yield args.workdir or default
        return
    tmp = Path(tempfile.mkdtemp(prefix="minio3-bench-smoke-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
