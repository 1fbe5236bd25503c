"""`merge_runs`: the run dirs of `--shard i/N` (or of several machines) joined into one run dir.

The runs must have been made with the same data-shaping options (run.json); the merged dir may not be, contain
or sit inside one of them or their dataset, and is locked while it is built. Attempts are keyed by
(item, sample), whose seeds do not depend on the shard, so merged shards give exactly the run an unsharded
synthesis would have given. The sources are only read; the merged dir is built aside and renamed into place,
and can itself be resumed with `synth-coldstart --out`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from minio3_data import __version__
from minio3_data.errors import BadInputError
from minio3_data.exclusions import (
    EXCLUDED_NAME,
    Exclusion,
    exclusion_line,
    exclusion_summary,
    write_exclusions,
)
from minio3_data.fsutil import atomic_dir
from minio3_data.records import Trajectory, Usage
from minio3_data.store import LogDamage, RunStore, identity_diff, write_run_json

from pipelines.sampling.config import SynthConfig
from pipelines.sampling.items import dataset_items
from pipelines.sampling.run_dir import recorded_identity

from . import finalize
from .patterns import check_mix

STAGE = "merge-runs"


@dataclass
class MergeSummary:
    out: Path
    runs: int
    attempts: int
    duplicates: int  # the same (item, sample) finished in more than one run; the first run's is kept
    kept: int
    damaged: list[str] = field(default_factory=list)  # damaged source log lines, skipped (sources are not changed)
    skipped: list[Exclusion] = field(default_factory=list)  # dataset rows and damaged lines, as in excluded.jsonl

    def exclusion_line(self) -> str | None:
        return exclusion_line(self.skipped, self.out / EXCLUDED_NAME)


def merge_runs(
    runs: list[Path], out: Path, *, target: int | None = None, max_per_item: int | None = None,
    mix: dict[str, float] | None = None, overwrite: bool = False,
) -> MergeSummary:
    if len(runs) < 2:
        raise BadInputError("merge-runs needs at least two run dirs")
    identity = recorded_identity(runs[0])
    for run in runs[1:]:
        diff = identity_diff(identity, recorded_identity(run))
        if diff:
            raise BadInputError(f"{run}: made with different {', '.join(diff)} than {runs[0]}; only runs of one "
                                "synthesis (same dataset, teacher, exemplars, seed, ...) can be merged")
    attempts: dict[tuple[str, int], Trajectory] = {}
    replies: dict[str, dict] = {}
    paid = Usage()  # what lines left out of the merge paid (retried and duplicate attempts): still counted
    duplicates: list[Exclusion] = []
    damaged: list[LogDamage] = []
    origin: dict[tuple[str, int], Path] = {}
    for run in runs:
        state = RunStore(run).load(repair=False, samples=identity.get("samples_per_item"))
        damaged += state.damaged
        replies.update(state.replies)
        paid.add(state.superseded)
        for key, traj in state.attempts.items():
            if key in attempts and attempts[key].status != "failed":
                if traj.status != "failed":
                    duplicates.append(Exclusion(STAGE, traj.id, "duplicate attempt",
                                                f"{run} finished it too; {origin[key]}'s is kept"))  # fmt: skip
                paid.add(traj.usage)
                continue
            if key in attempts:
                paid.add(attempts[key].usage)
            attempts[key] = traj
            origin[key] = run
    cfg = SynthConfig(dataset=Path(identity["dataset"]), out=out, split=identity["split"], target=target,
                      max_per_item=max_per_item, mix=mix or {})
    cfg.validate()
    check_mix(cfg.mix)
    items, skipped = dataset_items(cfg.dataset, cfg.split, STAGE)
    skipped += [e for damage in damaged for e in damage.exclusions(STAGE)] + duplicates
    with atomic_dir(out, overwrite=overwrite, inputs=[("RUNS", run) for run in runs]) as tmp:
        store = RunStore(tmp)
        for key in sorted(attempts):
            store.add_attempt(attempts[key])
        for reply in replies.values():
            store.add_reply(reply)
        store.close()
        write_run_json(tmp, identity, __version__)
        write_exclusions(tmp, skipped)
        cfg.out = tmp
        known = {it.id for it in items}
        stats = finalize(cfg, items, [t for (iid, _), t in sorted(attempts.items()) if iid in known], paid,
                         replies.values(),
                         {"stopped": None, "merged_from": [str(r) for r in runs], "duplicates": len(duplicates),
                          "damaged_lines": [dataclasses.asdict(d) for d in damaged],
                          "excluded": exclusion_summary(skipped)})
    return MergeSummary(out, len(runs), len(attempts), len(duplicates), stats["kept"],
                        [d.describe() for d in damaged], skipped)
