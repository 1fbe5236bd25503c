"""A sampling run's dir: what it reads besides itself, and the options it was made with (run.json)."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.exemplars import shipped_dir
from minio3_data.outputs import Inputs
from minio3_data.store import ATTEMPTS, RUN_JSON, identity_diff, run_identity

from .config import ADDED_LATER, SynthConfig


def read_inputs(cfg: SynthConfig) -> Inputs:
    """The dirs a synthesis (or an evaluation) reads besides its run dir: the dataset, and the exemplars it
    puts in context (--exemplars, or the shipped six)."""
    exemplars = (cfg.exemplars or shipped_dir()) if cfg.exemplars_in_context > 0 else None
    return [("--dataset", cfg.dataset), ("--exemplars", exemplars)]


def recorded_identity(run_dir: Path) -> dict[str, object]:
    """The identity a run dir's run.json records, each field that joined the identity later filled with what its
    absence means (ADDED_LATER): how a resume and a merge compare runs made before and after it."""
    return {**ADDED_LATER, **run_identity(run_dir)}


def _shown(value: object) -> str:
    """An identity value as a refusal names it: JSON, cut short."""
    text = "none" if value is None else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _grew(old: object, new: object) -> bool:
    return isinstance(old, int) and isinstance(new, int) and new > old


def check_run_json(cfg: SynthConfig, prompts_digest: str, may_grow: Collection[str] = ()) -> None:
    """A run dir remembers the options that shape its data; resuming with different ones would mix runs, except
    that the numbers in `may_grow` may be larger now (an evaluation's turn budget: its trajectories go on).

    run.json is (re)written only after the teacher, judge and exemplars are set up, so a typo in an option
    never pins a run dir to it. Any other non-empty dir is refused: the run would write its outputs over the
    files there, and attempts whose run.json is gone cannot be checked against these options."""
    out = Path(cfg.out)
    if (out / RUN_JSON).exists():
        old, new = recorded_identity(cfg.out), cfg.identity(prompts_digest)
        diff = [k for k in identity_diff(old, new) if not (k in may_grow and _grew(old.get(k), new.get(k)))]
        if diff:
            values = ", ".join(f"{k} {_shown(old.get(k))}, not {_shown(new.get(k))}" for k in diff)
            raise BadInputError(
                f"{cfg.out}: this run dir was made with different {', '.join(diff)}; "
                f"resume with the same options (it has {values}) or pick another --out"
            )
    elif (out / ATTEMPTS).exists():
        raise BadInputError(
            f"{cfg.out}: holds {ATTEMPTS} but no {RUN_JSON}, so its attempts cannot be matched to these "
            f"options; restore {RUN_JSON} or pick another --out"
        )
    elif out.is_dir() and any(out.iterdir()):
        raise BadInputError(f"{cfg.out}: not empty and not a run dir (no {RUN_JSON}); pick a new or empty --out")
