"""train-rl with a Qwen3-VL model dir: the family is read from its config.json, the rollout counts Qwen3-VL's image
tokens without pixel work, renders with the family's chat template, and trains through the processor view with the
family's bounds; verl checks the dry run. (Token parity with LLaMA-Factory: tests/test_rl_parity.py.)"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from needs_verl import require_verl
from typer.testing import CliRunner

from cli import app
from minio3_data.families import get_family

STOCK = {"qwen2.5-vl": {"min_pixels": 3_136, "max_pixels": 12_845_056},  # the real checkpoints'
         "qwen3-vl": {"min_pixels": 65_536, "max_pixels": 16_777_216}}  # fmt: skip
SPAN = "<|vision_start|><|image_pad|><|vision_end|>"


@pytest.fixture(scope="module")
def rl() -> Any:
    require_verl()
    import rl_stand_ins

    return rl_stand_ins


@pytest.mark.parametrize("bounds", ["stock", "family"])
def test_the_counting_processor_gives_qwen3vls_ids_without_pixel_work(rl: Any, tmp_path: Path, bounds: str) -> None:
    from PIL import Image

    from train.rl.token_counting import counting_processor

    family = get_family("qwen3-vl")
    pixels = STOCK["qwen3-vl"] if bounds == "stock" else {"min_pixels": family.min_pixels, "max_pixels": family.max_pixels}
    full = rl.load_processor(rl.write_tiny_model(tmp_path / "m", "qwen3-vl", pixels))
    counting = counting_processor(full)
    assert counting is not full and type(counting).__name__ == "CountingImageOnlyQwen3VLProcessor"
    sizes = [(28, 28), (200, 200), (29, 57), (56, 5000), (5000, 40), (333, 777), (1414, 1414), (1732, 1154)]
    text = f"a {SPAN} b {SPAN}"
    for (w0, h0), (w1, h1) in itertools.pairwise(sizes):
        images = [Image.new("RGB", (w0, h0)), Image.new("RGB", (w1, h1))]
        expected = full(text=[text], images=images, return_tensors="pt")["input_ids"][0].tolist()
        assert list(counting(text=[text], images=images, return_tensors="pt")["input_ids"][0]) == expected


def test_qwen3vls_rollout_template_has_no_default_system_turn() -> None:
    """LLaMA-Factory's qwen3_vl templates write no system turn where a conversation has none; qwen2_vl writes
    "You are a helpful assistant."; with a system turn both render the same."""
    from jinja2 import Template

    from train.rl.chat_template import CHAT_TEMPLATE, chat_template

    user = [{"role": "user", "content": "Q?"}]
    render = lambda template, messages: Template(template).render(messages=messages, add_generation_prompt=True)  # noqa: E731
    assert render(chat_template(get_family("qwen3-vl")), user) == "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
    assert render(CHAT_TEMPLATE, user).startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    system = [{"role": "system", "content": "Zoom."}, *user]
    assert render(chat_template(get_family("qwen3-vl")), system) == render(CHAT_TEMPLATE, system)


@pytest.mark.parametrize("family", ["qwen3-vl", "qwen2.5-vl"])
def test_dry_run_with_a_real_checkpoints_processor(rl: Any, tiny_dataset: Path, tmp_path: Path, family: str) -> None:
    """A model dir with the real checkpoint's processor bounds: Qwen3-VL's is trained through a view with
    min_pixels 4,096 (its stock 65,536 would enlarge the crops); Qwen2.5-VL's stock bounds are the family's, so
    the model dir is used as it is. verl composes and checks the config either way."""
    from train.rl.chat_template import chat_template

    model = rl.write_tiny_model(tmp_path / "model", family, STOCK[family])
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train-rl", "--dataset", str(tiny_dataset), "--model", str(model), "--out", str(out),
                                   "--dry-run"])  # fmt: skip
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())["actor_rollout_ref"]["model"]
    assert cfg["custom_chat_template"] == chat_template(get_family(family))
    if family == "qwen2.5-vl":
        assert cfg["path"] == str(model.resolve()) and "training reads" not in res.output
        return
    assert cfg["path"] == str((out / "model").resolve()) and "training reads" in res.output
    processor = rl.load_processor(cfg["path"])
    assert (processor.image_processor.size.shortest_edge, processor.image_processor.size.longest_edge) == (4096, 16_777_216)
    assert CliRunner().invoke(app, ["train-rl", "--dataset", str(tiny_dataset), "--model", str(model), "--out",
                                    str(out), "--dry-run"]).exit_code == 0  # fmt: skip  (a rerun keeps the view)


def test_a_model_of_no_known_family_is_one_line(rl: Any, tiny_dataset: Path, tmp_path: Path) -> None:
    import json

    model = rl.write_tiny_model(tmp_path / "model", "qwen3-vl")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": "llava", "architectures": ["Llava"]}))
    res = CliRunner().invoke(app, ["train-rl", "--dataset", str(tiny_dataset), "--model", str(model), "--out",
                                   str(tmp_path / "run"), "--dry-run"])  # fmt: skip
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "model_type 'llava', which no model family knows" in res.output
