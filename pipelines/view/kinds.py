"""What kind of dir `minio3 view` was given, told by the file each stage writes and no other does.

Order matters: an eval dir holds a run of trajectories (run.json) beside its results.json, so results.json
is looked for first.
"""

from __future__ import annotations

from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.export_dir import SUMMARY_NAME
from minio3_data.store import ATTEMPTS, RUN_JSON
from pipelines.compare.report import RECORD as COMPARISON
from pipelines.eval.report import RESULTS

from .dataset_source import MANIFEST

KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("compare", (COMPARISON,)),
    ("eval", (RESULTS,)),
    ("run", (RUN_JSON, ATTEMPTS)),
    ("export", (SUMMARY_NAME,)),
    ("dataset", (MANIFEST,)),
)


def detect_kind(path: Path) -> str:
    """The kind's name in KINDS; a dir of no kind is a one-line error naming what was looked for."""
    if not path.is_dir():
        raise BadInputError(f"{path}: no such directory; give a run, dataset, eval or export dir")
    for kind, marks in KINDS:
        if any((path / mark).is_file() for mark in marks):
            return kind
    looked = ", ".join(f"{mark} ({kind})" for kind, marks in KINDS for mark in marks)
    raise BadInputError(f"{path}: not a run, dataset, eval or export dir; none of {looked} is in it")
