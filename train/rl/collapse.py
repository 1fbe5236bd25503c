"""The tool-use collapse alarm: RL runs of zoom agents can stop zooming (the zoom rate falls to zero within tens
of steps), and the run then trains a model that answers without looking. The step metrics already count
zooms per trajectory at every step; this watches two of them against the run's own early baseline:

  - `minio3/zooms/rate`: the share of trajectories that zoomed at least once;
  - `minio3/zooms/mean`: zooms per trajectory.

The baseline of each is its mean over the first `baseline_steps` training steps. From then on a signal is
*down* at a step when it is below `fraction` × its baseline; when either signal has been down for `patience`
consecutive steps the alarm is raised: `minio3/alarm/tool_collapse` is 1.0 (0.0 otherwise, logged at every
step once the baseline exists), a console line names the step and the numbers, and with `on_collapse: stop`
the trainer saves a checkpoint and exits non-zero. A signal whose baseline is 0 (the policy never zoomed)
cannot collapse. Defaults: baseline 5 steps, fraction 0.5, patience 3.

The baseline is kept next to the checkpoints (`BASELINE_FILE` in `trainer.default_local_dir`), so a resumed
run compares with the run's early steps, not with the steps it resumed at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args

from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_write_text

# Light on purpose (no verl): `minio3 train-rl` checks --on-collapse before it knows verl is installed. The
# metric names are step_metrics.py's (tests/test_rl_collapse.py checks they are there).
OnCollapse = Literal["warn", "stop"]
ON_COLLAPSE: tuple[str, ...] = get_args(OnCollapse)
ALARM_METRIC = "minio3/alarm/tool_collapse"
SIGNALS: dict[str, str] = {  # metric -> how the console line calls it
    "minio3/zooms/rate": "share of trajectories that zoom",
    "minio3/zooms/mean": "zooms per trajectory",
}
SECTION = "minio3.collapse"  # where the run's config holds the settings
BASELINE_FILE = "minio3_tool_use_baseline.json"


@dataclass(frozen=True)
class CollapseSettings:
    """The alarm's thresholds (config `minio3.collapse.*`; `--on-collapse` sets `on_collapse`)."""

    on_collapse: OnCollapse = "warn"
    baseline_steps: int = 5
    fraction: float = 0.5
    patience: int = 3

    def __post_init__(self) -> None:
        if self.on_collapse not in ON_COLLAPSE:
            raise BadInputError(f"{SECTION}.on_collapse={self.on_collapse!r}: use {' or '.join(ON_COLLAPSE)}")
        for name in ("baseline_steps", "patience"):
            if getattr(self, name) < 1:
                raise BadInputError(f"{SECTION}.{name}={getattr(self, name)}: must be at least 1")
        if not 0 < self.fraction < 1:
            raise BadInputError(f"{SECTION}.fraction={self.fraction}: must be between 0 and 1 (exclusive)")

    @classmethod
    def from_config(cls, section: Mapping[str, object] | None) -> CollapseSettings:
        """The settings in the run's `minio3.collapse` section (defaults where it has none)."""
        given = dict(section or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise BadInputError(f"{SECTION}.{unknown[0]}: no such setting; use {', '.join(known)}")
        return cls(**given)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Collapse:
    """The alarm raised at `step`: each signal that is down, (its value, its baseline)."""

    step: int
    down: dict[str, tuple[float, float]]
    settings: CollapseSettings

    def line(self) -> str:
        parts = [
            f"{SIGNALS[m]} {value:.3g} < {self.settings.fraction:g} × baseline {base:.3g}"
            for m, (value, base) in self.down.items()
        ]
        return (
            f"minio3: tool-use collapse at step {self.step}: {'; '.join(parts)} for {self.settings.patience} "
            f"steps in a row (baseline: the mean of the first {self.settings.baseline_steps} steps)"
        )


@dataclass
class CollapseWatch:
    """Fed each step's `minio3/...` metrics; says when the alarm is raised."""

    settings: CollapseSettings
    baseline: dict[str, float] | None = None
    early: list[dict[str, float]] = field(default_factory=list)  # the steps the baseline is taken over
    run_down: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIGNALS, 0))
    raised: bool = False

    def observe(self, step: int, metrics: Mapping[str, float]) -> Collapse | None:
        """Take one step's metrics; the Collapse when the alarm goes up at this step, else None. Steps without
        the signals (a batch another agent loop made) are skipped."""
        if not all(m in metrics for m in SIGNALS):
            return None
        values = {m: float(metrics[m]) for m in SIGNALS}
        if self.baseline is None:
            self.early.append(values)
            if len(self.early) == self.settings.baseline_steps:
                self.baseline = {m: sum(v[m] for v in self.early) / len(self.early) for m in SIGNALS}
            return None
        for m, value in values.items():
            down = value < self.settings.fraction * self.baseline[m]
            self.run_down[m] = self.run_down[m] + 1 if down else 0
        collapsed = {m: (values[m], self.baseline[m]) for m in SIGNALS if self.run_down[m] >= self.settings.patience}
        was_raised, self.raised = self.raised, bool(collapsed)
        return Collapse(step, collapsed, self.settings) if collapsed and not was_raised else None

    def alarm_metric(self) -> dict[str, float]:
        """The alarm's metric for the step just observed ({} while the baseline is being taken)."""
        return {} if self.baseline is None else {ALARM_METRIC: float(self.raised)}

    def save(self, directory: Path) -> None:
        """Keep the baseline for a resumed run."""
        if self.baseline is not None:
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write_text(directory / BASELINE_FILE, json.dumps({"baseline": self.baseline, "early": self.early}))

    def load(self, directory: Path) -> None:
        """The baseline a previous run of this dir took, if any."""
        path = directory / BASELINE_FILE
        if path.is_file():
            saved = json.loads(path.read_text())
            self.baseline, self.early = saved["baseline"], saved["early"]


__all__ = [
    "ALARM_METRIC", "BASELINE_FILE", "Collapse", "CollapseSettings", "CollapseWatch", "ON_COLLAPSE", "SECTION",
    "SIGNALS",
]  # fmt: skip
