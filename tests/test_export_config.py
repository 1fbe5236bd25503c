"""The LLaMA-Factory files of an export: dataset_info entry, SFT YAML with the released recipe, DeepSpeed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from export_fixtures import make_run

from pipelines.export_llamafactory import export_run
from pipelines.export_llamafactory.config import yaml_scalar

RELEASED_ENTRY = {
    "formatting": "sharegpt",
    "columns": {"messages": "conversations", "images": "images"},
    "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
             "system_tag": "system"},
}  # fmt: skip


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cfg")
    out = tmp / "export dir"
    export_run(make_run(tmp), out, image_max_pixels=1_000_000, image_min_pixels=50_000, cutoff_len=16384,
               workers=1, progress=False)  # fmt: skip
    return out


def test_dataset_info_is_the_released_entry_pointing_at_our_file(export: Path) -> None:
    info = json.loads((export / "dataset_info.json").read_text())
    assert info == {"minio3_coldstart": {"file_name": "minio3_coldstart.json", **RELEASED_ENTRY}}


def test_yaml_has_the_released_hyper_parameters_and_our_options(export: Path) -> None:
    cfg = yaml.safe_load((export / "sft_qwen2_5_vl.yaml").read_text())
    assert cfg["template"] == "qwen2_vl" and cfg["dataset"] == "minio3_coldstart"
    assert (cfg["image_max_pixels"], cfg["image_min_pixels"], cfg["cutoff_len"]) == (1_000_000, 50_000, 16384)
    assert cfg["stage"] == "sft" and cfg["finetuning_type"] == "full"
    assert cfg["freeze_vision_tower"] is True and cfg["freeze_multi_modal_projector"] is True
    assert cfg["freeze_language_model"] is False
    assert cfg["learning_rate"] == 1e-5 and isinstance(cfg["learning_rate"], float)
    assert (
        cfg["num_train_epochs"] == 3.0 and cfg["lr_scheduler_type"] == "cosine" and cfg["warmup_ratio"] == 0.1
    )
    assert (
        cfg["bf16"] is True
        and cfg["per_device_train_batch_size"] == 1
        and cfg["gradient_accumulation_steps"] == 4
    )
    assert "max_samples" not in cfg  # LLaMA-Factory would silently cut the data there
    assert cfg["dataset_dir"] == cfg["media_dir"] == str(export.resolve())  # the final dir, not the temp one


def test_deepspeed_configs_are_zero3_and_referenced(export: Path) -> None:
    cfg = yaml.safe_load((export / "sft_qwen2_5_vl.yaml").read_text())
    offload = json.loads(Path(cfg["deepspeed"]).read_text())
    plain = json.loads((export / "ds_z3_config.json").read_text())
    assert offload["zero_optimization"]["stage"] == plain["zero_optimization"]["stage"] == 3
    assert offload["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert "offload_param" not in plain["zero_optimization"]


@pytest.mark.parametrize(
    "value",
    [1e-5, 1.0e-12, 0.1, 3.0, 1e9, 2_000_000, 0, True, False, None, "no", "a: b", 'q"uote', "1e-5", "null"],
)
def test_yaml_scalars_read_back_as_the_same_value(value: object) -> None:
    back = yaml.safe_load(f"k: {yaml_scalar(value)}")["k"]
    assert back == value and type(back) is type(value)


def test_a_qwen3vl_export_has_an_instruct_and_a_thinking_yaml_and_records_its_family(qwen3_export: Path) -> None:
    instruct = yaml.safe_load((qwen3_export / "sft_qwen3_vl.yaml").read_text())
    thinking = yaml.safe_load((qwen3_export / "sft_qwen3_vl_thinking.yaml").read_text())
    assert (instruct["template"], instruct["model_name_or_path"]) == ("qwen3_vl_nothink", "Qwen/Qwen3-VL-8B-Instruct")
    assert (thinking["template"], thinking["model_name_or_path"]) == ("qwen3_vl", "Qwen/Qwen3-VL-8B-Thinking")
    assert instruct["output_dir"] == "saves/qwen3-vl-8b-instruct/full/mini-o3-coldstart"
    assert {k: v for k, v in instruct.items() if k not in ("template", "model_name_or_path", "output_dir")} == {
        k: v for k, v in thinking.items() if k not in ("template", "model_name_or_path", "output_dir")
    }  # the released recipe for both
    assert not (qwen3_export / "sft_qwen2_5_vl.yaml").exists()
    summary = json.loads((qwen3_export / "export.json").read_text())
    assert summary["model_family"] == "qwen3-vl"


def test_the_length_check_counts_the_familys_image_tokens(qwen3_export: Path, tmp_path: Path) -> None:
    """The same rows are longer for Qwen2.5-VL (28 px a token side) than for Qwen3-VL (32 px)."""
    qwen25 = export_run(make_run(tmp_path), tmp_path / "export", workers=1, progress=False)
    qwen3 = json.loads((qwen3_export / "export.json").read_text())
    assert qwen25.model_family == "qwen2.5-vl" and qwen25.max_tokens > qwen3["max_tokens"] > 0
