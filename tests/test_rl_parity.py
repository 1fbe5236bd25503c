"""A policy sees in RL exactly what it saw in SFT: for the same trajectories, the token ids (and the image
placements and grids) that our RL rollout builds — verl's real agent loop with our plug-ins, from our RL data
rows — equal the ones LLaMA-Factory's template of the model family builds from our SFT export of those
trajectories: `qwen2_vl` for Qwen2.5-VL, `qwen3_vl_nothink` (Instruct) and `qwen3_vl` (Thinking) for Qwen3-VL.

Each family runs twice: with its tiny model's own processor bounds (small images), and at the sizes training
really uses: the model dir seen through the processor view train-sft and train-rl make (the family's bounds;
for Qwen3-VL from a processor with the real checkpoint's 65,536 px minimum), where the first view of a 900 x 600
original is some five hundred image tokens.
The LLaMA-Factory side runs in its own environment (tests/lf_encode.py, with its Python), on the export's own
YAML; the RL side replays each recorded assistant turn as the scripted model output (tests/rl_stand_ins.py).
One tiny offline model of the family (tokenizer, processor config) serves both.
Slow like the LLaMA-Factory training test: it needs LLaMA-Factory's CPU environment (built on first use).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from export_fixtures import error_turn_trajectory, make_dataset, make_run, standard_trajectories
from lf_env import LF_TEST_TIMEOUT_S, REPO, build_tiny_model, llamafactory_cli, offline_env
from needs_verl import require_verl

from minio3_data.families import get_family
from minio3_data.families.model_dir import processor_view
from minio3_data.profiles import get_profile
from minio3_data.records import ProbeItem, Trajectory, write_items
from pipelines.export_llamafactory import export_run

IGNORE = -100  # LLaMA-Factory's label for tokens it does not train on
# (family, processor bounds: the tiny model's own | the family's, through a processor view, SFT variant)
CASES = [
    ("qwen2.5-vl", "tiny", "instruct"), ("qwen2.5-vl", "family", "instruct"),
    ("qwen3-vl", "tiny", "instruct"), ("qwen3-vl", "family", "instruct"), ("qwen3-vl", "family", "thinking"),
]  # fmt: skip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(LF_TEST_TIMEOUT_S)]


@pytest.fixture(scope="module", params=CASES, ids=["-".join(c) for c in CASES])
def parity(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Trajectories (a direct answer, a crop, a crop of a crop, a duplicate, an error turn), their SFT export
    for the family, and what LLaMA-Factory builds from it with the model the case trains."""
    require_verl()
    name, bounds, variant = request.param
    family = get_family(name)
    lf_cli = llamafactory_cli()
    tmp = tmp_path_factory.mktemp("parity")
    dataset = make_dataset(tmp / "dataset")
    trajectories = [*standard_trajectories(dataset), error_turn_trajectory(dataset)]
    export = tmp / "export"
    summary = export_run(make_run(tmp, trajectories), export, family=family, workers=1, progress=False)
    assert summary.rows_written == len(trajectories)
    stock = ("--stock-pixels",) if bounds == "family" and name == "qwen3-vl" else ()
    model = build_tiny_model(lf_cli, tmp / "model", name, *stock)
    if bounds == "family":  # as train-sft and train-rl would train it
        view = processor_view(model, family, tmp / "view")
        assert view is not None
        model = view.write()
    encoded = tmp / "lf.json"
    yaml_name = family.yaml_name(family.variant(variant))
    done = subprocess.run(
        [str(lf_cli.parent / "python"), str(REPO / "tests" / "lf_encode.py"), str(export), yaml_name, str(model),
         str(encoded)],
        capture_output=True, text=True, timeout=600, env=offline_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return {"tmp": tmp, "dataset": dataset, "trajectories": trajectories, "model": model, "family": name,
            "bounds": bounds, "lf": json.loads(encoded.read_text())}  # fmt: skip


def rl_rows(parity: dict[str, Any]) -> Path:
    """The trajectories' items as RL data rows (train/rl/data.py), in the run's protocol."""
    from train.rl.agent_loop import AGENT_LOOP
    from train.rl.data import write_rl_data

    dataset: Path = parity["dataset"]
    items = {}
    for t in parity["trajectories"]:
        items[t.item_id] = ProbeItem(id=t.item_id, image=t.image, question=t.question, answer=t.ground_truth,
                                     options=list(t.options), width=t.width, height=t.height)  # fmt: skip
    write_items(dataset / "train.parquet", list(items.values()))
    write_items(dataset / "test.parquet", list(items.values()))
    return Path(write_rl_data(dataset, parity["tmp"] / "rl", protocol=get_profile("released"), max_turns=12, agent_name=AGENT_LOOP).files["train"])


def rollout(rl: Any, parity: dict[str, Any], traj: Trajectory, rows: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The RL rollout of `traj`'s item with its recorded turns as the model's output."""
    cfg = rl.compose_config(parity["model"], protocol="released", family=parity["family"])
    server = rl.ScriptedServer(lambda q, t: traj.turns[t].text, [traj.question])
    worker = rl.make_worker(cfg, server, monkeypatch)
    (row,) = [r for r in rl.dataset_rows(cfg, worker, rows) if r["extra_info"]["item_id"] == traj.item_id]
    return rl.run_rows(worker, [row]), worker


def test_rl_rollout_builds_the_tokens_llamafactory_trains_on(parity: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import rl_stand_ins as rl

    rows = rl_rows(parity)
    for traj, lf in zip(parity["trajectories"], parity["lf"], strict=True):
        out, worker = rollout(rl, parity, traj, rows, monkeypatch)
        tok = worker.tokenizer
        im_end, newline = tok.convert_tokens_to_ids("<|im_end|>"), tok.encode("\n", add_special_tokens=False)[0]
        ids = rl.sequence_ids(out, 0)
        # the same ids; LLaMA-Factory's assistant slot also writes the "\n" after the final <|im_end|>, which
        # the rollout never generates (generation stops at <|im_end|>)
        assert lf["input_ids"] == [*ids, newline], traj.id
        assert rl.grid(out, 0).tolist() == lf["image_grid_thw"], traj.id  # the same image sizes, in order
        # trained positions: the policy's own tokens in both; LLaMA-Factory also trains each "\n" after an
        # assistant <|im_end|> (verl inserts it with mask 0, as a template token)
        prompt_len = len(ids) - len(rl.response_mask(out, 0))
        rl_trained = {prompt_len + j for j, m in enumerate(rl.response_mask(out, 0)) if m}
        lf_trained = {j for j, label in enumerate(lf["labels"]) if label != IGNORE}
        after_im_end = {p + 1 for p in rl_trained if ids[p] == im_end}
        assert lf_trained == rl_trained | after_im_end, traj.id
        assert out.non_tensor_batch["overturn"][0] is False and out.non_tensor_batch["acc"][0] == 1.0
    first_view = parity["lf"][0]["image_grid_thw"][0]  # a 900 x 600 original: 540,000 px, the first view as it is
    factor = get_family(parity["family"]).factor
    if parity["bounds"] == "family":  # the processor only rounds each side: 600 / factor rows, 900 / factor columns
        assert first_view == [1, 2 * round(600 / factor), 2 * round(900 / factor)]
    else:  # the tiny processor's 64-token maximum shrinks it
        assert first_view[1] * first_view[2] // 4 <= 64
