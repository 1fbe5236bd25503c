"""The tool-use collapse alarm (train/rl/collapse.py): on scripted step sequences, the watch alone, then verl's
REAL v1 training loop (`PPOTrainer.fit`) driving our trainer's hook. The loop's GPU and TransferQueue work is
what stands in: each step hands the hook a scripted batch of trajectories; verl's own loop logs the metrics,
saves checkpoints, ends and returns as it does on a cluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from needs_verl import require_verl
from test_rl_agent_loop import rl, setup  # noqa: F401 (fixtures)

from minio3_data.errors import BadInputError
from train.rl.collapse import ALARM_METRIC, SIGNALS, CollapseSettings, CollapseWatch

HEALTHY = [2, 2, 1, 3, 0, 2, 2, 1]  # zooms of 8 trajectories: 7 of 8 zoom, 13/8 a trajectory
# the zoom rate of the collapse from step 10 (baseline 0.9, threshold 0.45): 3/8, 2/8, 1/8, 0, 0, ...
FADING = [[1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]]
COLLAPSE_STEP = 5 + 4 + 3  # 5 baseline steps, 4 healthy, 3 below: raised at step 12


def scripted(collapse: bool, steps: int = 20) -> list[list[int]]:
    """Per step, each trajectory's zooms: a healthy run (jittered), or one whose zooming fades from step 10."""
    healthy = [HEALTHY[i:] + HEALTHY[:i] if i % 3 else [z + (i % 2) for z in HEALTHY] for i in range(steps)]
    if not collapse:
        return healthy
    return healthy[:9] + FADING + [[0] * 8] * (steps - 12)


def metrics_of(zooms: list[int]) -> dict[str, float]:
    return {
        "minio3/zooms/rate": sum(z > 0 for z in zooms) / len(zooms),
        "minio3/zooms/mean": sum(zooms) / len(zooms),
    }


def watch_run(sequence: list[list[int]], **settings: Any) -> tuple[list[float], list[Any]]:
    watch = CollapseWatch(CollapseSettings(**settings))
    alarms, raised = [], []
    for step, zooms in enumerate(sequence, start=1):
        if (collapse := watch.observe(step, metrics_of(zooms))) is not None:
            raised.append(collapse)
        alarms.append(watch.alarm_metric().get(ALARM_METRIC, -1.0))
    return alarms, raised


def test_the_alarm_stays_silent_on_a_healthy_run() -> None:
    alarms, raised = watch_run(scripted(collapse=False, steps=60))
    assert raised == [] and alarms == [-1.0] * 4 + [0.0] * 56  # no metric until the baseline exists


def test_the_alarm_goes_up_after_patience_steps_below_the_fraction() -> None:
    alarms, raised = watch_run(scripted(collapse=True))
    assert [c.step for c in raised] == [COLLAPSE_STEP]  # once, not at every collapsed step
    assert alarms[: COLLAPSE_STEP - 1] == [-1.0] * 4 + [0.0] * (COLLAPSE_STEP - 5)
    assert alarms[COLLAPSE_STEP - 1 :] == [1.0] * (20 - COLLAPSE_STEP + 1)
    (collapse,) = raised
    baseline = sum(metrics_of(z)["minio3/zooms/rate"] for z in scripted(False)[:5]) / 5
    assert collapse.down["minio3/zooms/rate"] == pytest.approx((1 / 8, baseline))
    assert collapse.line().startswith(
        f"minio3: tool-use collapse at step 12: share of trajectories that zoom 0.125 < 0.5 × baseline {baseline:.3g}"
    )


def test_thresholds_are_settings() -> None:
    # a 2-step dip below half the baseline is no collapse with patience 3, is one with patience 2
    dip = scripted(False, 12)[:9] + FADING[:2] + scripted(False, 12)[:1]
    assert watch_run(dip)[1] == []
    assert [c.step for c in watch_run(dip, patience=2)[1]] == [11]
    # baselines: zoom rate (4·7/8 + 1)/5 = 0.9, zooms (4·13/8 + 21/8)/5 = 1.825. At fraction 0.1 the rate is down
    # below 0.09 (steps 13-15: raised at 15), the zooms below 0.1825 (1/8 from step 12: raised at 14)
    assert [c.step for c in watch_run(scripted(True), fraction=0.1)[1]] == [14]
    # a baseline over the first 10 steps takes in step 10's fall: down from step 11, raised at 13
    assert [c.step for c in watch_run(scripted(True), baseline_steps=10)[1]] == [13]


def test_a_policy_that_never_zoomed_cannot_collapse() -> None:
    assert watch_run([[0] * 8] * 20)[1] == []


def test_recovery_lowers_the_alarm_and_a_new_collapse_raises_it_again() -> None:
    sequence = scripted(True, 14) + scripted(False, 4) + [[0] * 8] * 3
    alarms, raised = watch_run(sequence)
    assert [c.step for c in raised] == [COLLAPSE_STEP, 21] and alarms[14:18] == [0.0] * 4


def test_bad_settings_are_one_line_naming_the_key() -> None:
    for settings, needle in (
        ({"fraction": 1.5}, "minio3.collapse.fraction=1.5: must be between 0 and 1"),
        ({"patience": 0}, "minio3.collapse.patience=0: must be at least 1"),
        ({"on_collapse": "halt"}, "minio3.collapse.on_collapse='halt': use warn or stop"),
    ):
        with pytest.raises(BadInputError, match=re.escape(needle)):
            CollapseSettings(**settings)
    with pytest.raises(BadInputError, match="minio3.collapse.patients: no such setting"):
        CollapseSettings.from_config({"patients": 3})


def test_the_signals_are_step_metrics() -> None:
    require_verl()
    from train.rl.step_metrics import Rollout, step_metrics

    fields = [{"overturn": False, "zooms": z} for z in (0, 2, 1, 0)]
    ours = step_metrics([Rollout("s/easy", f) for f in fields])
    assert {m: ours[m] for m in SIGNALS} == {"minio3/zooms/rate": 0.5, "minio3/zooms/mean": 0.75}


# --- through verl's training loop ------------------------------------------------------------------------------


def trainer_for(
    rl: Any, setup: dict[str, Any], tmp: Path, on_collapse: str, steps: int = 20, save_freq: int = 5
) -> Any:
    """Our sync trainer, built by verl's registry from verl's own config with the launcher's collapse section."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    cfg = rl.compose_config(setup["model"], overrides=[
        "trainer.logger=[console]", "trainer.val_before_train=false", "trainer.test_freq=-1",
        f"trainer.save_freq={save_freq}", f"trainer.default_local_dir={tmp}",
        f"+minio3.collapse.on_collapse={on_collapse}",
    ])  # fmt: skip
    trainer = get_trainer_cls("minio3_sync")(cfg)
    trainer.global_steps, trainer.steps_per_epoch, trainer.total_training_steps = 0, 1000, steps
    trainer._init_dump_executor()
    return trainer


def run_fit(trainer: Any, sequence: list[list[int]], monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """verl's `fit`, each step's batch one of `sequence` (what the rollout and the update would leave). The
    returned record (steps run, checkpoints saved) fills as the loop runs, so it holds even if `fit` raises."""
    import transfer_queue as tq
    from transfer_queue import KVBatchMeta
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from train.rl import trainer as minio3_trainer
    from train.rl.step_metrics import Rollout

    ran: dict[str, list[int]] = {"steps": [], "saved": []}

    def step(metrics: dict[str, Any], timing_raw: dict[str, Any]) -> Any:
        ran["steps"].append(trainer.global_steps)
        return KVBatchMeta(partition_id="train", keys=[f"step{trainer.global_steps}"], tags=[{}])

    def trajectories(batch: Any) -> list[Any]:
        zooms = sequence[trainer.global_steps - 1]
        return [Rollout("synthetic/hard", {"overturn": False, "zooms": z}) for z in zooms]

    monkeypatch.setattr(trainer, "step", step)
    monkeypatch.setattr(trainer, "on_step_end", lambda: None)  # the weight sync to vLLM
    monkeypatch.setattr(trainer, "_save_checkpoint", lambda: ran["saved"].append(trainer.global_steps))
    monkeypatch.setattr(PPOTrainer, "_compute_metrics", lambda *a, **k: None)  # verl's own, from the queue
    monkeypatch.setattr(minio3_trainer, "batch_trajectories", trajectories)
    monkeypatch.setattr(tq, "kv_clear", lambda **_: None)
    return ran


def logged_alarms(stdout: str) -> dict[int, float]:
    """step -> the alarm metric, from verl's console logger's lines."""
    found = re.findall(r"^step:(\d+) - .*?" + re.escape(ALARM_METRIC) + r":([0-9.]+)", stdout, flags=re.M)
    return {int(step): float(value) for step, value in found}


def test_stop_saves_a_checkpoint_and_exits_naming_the_step_and_numbers(
    rl: Any, setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from train.rl.trainer import ToolUseCollapse

    trainer = trainer_for(rl, setup, tmp_path, "stop")
    ran = run_fit(trainer, scripted(True), monkeypatch)
    expected = r"tool-use collapse at step 12: share of trajectories that zoom 0\.125 <"
    with pytest.raises(ToolUseCollapse, match=expected):
        trainer.fit(agent_loop_manager=None)
    assert ran == {"steps": list(range(1, 13)), "saved": [5, 10, 12]}  # verl's every 5 steps, then ours
    out = capsys.readouterr().out
    assert logged_alarms(out) == {**dict.fromkeys(range(5, 12), 0.0), 12: 1.0}  # step 12 is logged, then the end
    assert out.count("minio3: tool-use collapse at step 12") == 1


def test_stop_on_a_step_verl_checkpoints_anyway_saves_once(
    rl: Any, setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from train.rl.trainer import ToolUseCollapse

    trainer = trainer_for(rl, setup, tmp_path, "stop", save_freq=4)
    ran = run_fit(trainer, scripted(True), monkeypatch)
    with pytest.raises(ToolUseCollapse, match=f"checkpoint {re.escape(str(tmp_path))}/global_step_12"):
        trainer.fit(agent_loop_manager=None)
    assert ran["saved"] == [4, 8, 12]


@pytest.mark.parametrize("on_collapse,collapse", [("warn", True), ("stop", False)])
def test_a_warned_collapse_or_a_healthy_run_trains_to_the_end(
    rl: Any, setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    on_collapse: str, collapse: bool,
) -> None:  # fmt: skip
    trainer = trainer_for(rl, setup, tmp_path, on_collapse)
    ran = run_fit(trainer, scripted(collapse), monkeypatch)
    trainer.fit(agent_loop_manager=None)
    assert ran == {"steps": list(range(1, 21)), "saved": [5, 10, 15, 20]}
    out = capsys.readouterr().out
    up = COLLAPSE_STEP if collapse else 21
    assert logged_alarms(out) == {**dict.fromkeys(range(5, up), 0.0), **dict.fromkeys(range(up, 21), 1.0)}
    assert out.count("minio3: tool-use collapse at step") == int(collapse)


def test_a_resumed_run_keeps_the_early_baseline(
    rl: Any, setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resumed after the collapse, the run compares with its first steps, not the collapsed ones it resumes at."""
    first = trainer_for(rl, setup, tmp_path, "warn", steps=8)
    run_fit(first, scripted(True), monkeypatch)
    first.fit(agent_loop_manager=None)
    resumed = trainer_for(rl, setup, tmp_path, "warn")
    assert resumed.collapse_watch.baseline == first.collapse_watch.baseline is not None
    assert resumed.collapse_watch.observe(13, metrics_of([0] * 8)) is None  # down 1 step of 3
