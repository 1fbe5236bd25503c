"""`merge_runs`: the run dirs of `--shard i/N` (or of several machines) joined into one run dir.

The runs must have been made with the same data-shaping options (run.json). Attempts are keyed by
(item, sample), whose seeds do not depend on the shard, so merged shards give exactly the run an unsharded
synthesis would have given. The sources are only read; the merged dir is built aside and renamed into place,
and can itself be resumed with `synth-coldstart --out`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_dir
from minio3_data.records import Trajectory, read_items
from minio3_data.store import RunStore

from . import _write_identity, finalize
from .config import SynthConfig


@dataclass
class MergeSummary:
    out: Path
    runs: int
    attempts: int
    duplicates: int  # the same (item, sample) finished in more than one run; the first run's is kept
    kept: int


def _identity(run: Path) -> dict:
    path = run / "run.json"
    try:
        return json.loads(path.read_text())["identity"]
    except FileNotFoundError:
        raise BadInputError(f"{path}: missing; is {run} a synth-coldstart run dir?") from None
    except (ValueError, KeyError, TypeError):
        raise BadInputError(f"{path}: not a run.json written by synth-coldstart") from None


def merge_runs(
    runs: list[Path], out: Path, *, target: int | None = None, max_per_item: int | None = None,
    mix: dict[str, float] | None = None, overwrite: bool = False,
) -> MergeSummary:
    if len(runs) < 2:
        raise BadInputError("merge-runs needs at least two run dirs")
    identity = _identity(runs[0])
    for run in runs[1:]:
        other = _identity(run)
        diff = sorted(k for k in identity if other.get(k) != identity[k])
        if diff:
            raise BadInputError(f"{run}: made with different {', '.join(diff)} than {runs[0]}; only runs of one "
                                "synthesis (same dataset, teacher, exemplars, seed, ...) can be merged")
    attempts: dict[tuple[str, int], Trajectory] = {}
    replies: dict[str, dict] = {}
    duplicates = 0
    for run in runs:
        state = RunStore(run).load(repair=False)
        replies.update(state.replies)
        for key, traj in state.attempts.items():
            if key in attempts and attempts[key].status != "failed":
                duplicates += traj.status != "failed"
                continue
            attempts[key] = traj
    cfg = SynthConfig(dataset=Path(identity["dataset"]), out=out, split=identity["split"], target=target,
                      max_per_item=max_per_item, mix=mix or {})
    cfg.validate()
    items = read_items(cfg.dataset / f"{cfg.split}.parquet")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        store = RunStore(tmp)
        for key in sorted(attempts):
            store.add_attempt(attempts[key])
        for reply in replies.values():
            store.add_reply(reply)
        store.close()
        _write_identity(tmp, identity)
        cfg.out = tmp
        known = {it.id for it in items}
        stats = finalize(cfg, items, [t for (iid, _), t in sorted(attempts.items()) if iid in known],
                         {"stopped": None, "merged_from": [str(r) for r in runs], "duplicates": duplicates})
    return MergeSummary(out, len(runs), len(attempts), duplicates, stats["kept"])
