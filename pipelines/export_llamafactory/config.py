"""The LLaMA-Factory side of an export: `dataset_info.json`, an SFT YAML per variant of the model family
(sft_qwen2_5_vl.yaml; sft_qwen3_vl.yaml and sft_qwen3_vl_thinking.yaml) and the DeepSpeed ZeRO-3 configs.

Defaults are the released Mini-o3 cold-start recipe (sft_configs/qwen2.5-vl.yaml), with two deliberate
changes: `max_samples` is left out (LLaMA-Factory would silently cut the data at 100,000 rows) and
`report_to` is `none` (nothing phones home unless asked). The family gives the template and the default model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from minio3_data.export_dir import DATASET_INFO_NAME
from minio3_data.families import ModelFamily, SftVariant

DATASET_NAME = "minio3_coldstart"
DS_Z3_NAME = "ds_z3_config.json"
DS_Z3_OFFLOAD_NAME = "ds_z3_offload_config.json"


def dataset_info(file_name: str) -> dict[str, Any]:
    """The entry the released README shows, pointing at our data file."""
    return {
        DATASET_NAME: {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "images": "images"},
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
                "assistant_tag": "gpt",
                "system_tag": "system",
            },
        }
    }



def deepspeed_z3(offload: bool) -> dict[str, Any]:
    """ZeRO-3 with every batch/precision knob left to the HF Trainer ("auto"); offload moves state to CPU RAM."""
    zero: dict[str, Any] = {
        "stage": 3,
        "overlap_comm": False,
        "contiguous_gradients": True,
        "sub_group_size": 1e9,
        "reduce_bucket_size": "auto",
        "stage3_prefetch_bucket_size": "auto",
        "stage3_param_persistence_threshold": "auto",
        "stage3_max_live_parameters": 1e9,
        "stage3_max_reuse_distance": 1e9,
        "stage3_gather_16bit_weights_on_model_save": True,
    }
    if offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto", "loss_scale": 0, "loss_scale_window": 1000, "initial_scale_power": 16,
                 "hysteresis": 2, "min_loss_scale": 1},
        "zero_optimization": zero,
    }  # fmt: skip


def sft_config(
    export_dir: Path, cutoff_len: int, image_max_pixels: int, image_min_pixels: int, variant: SftVariant
) -> dict[str, dict[str, Any]]:
    """The released hyper-parameters, by section, for full SFT of `variant`'s model on this export."""
    root = str(export_dir.resolve())
    return {
        "model": {
            "model_name_or_path": variant.model,
            "image_max_pixels": image_max_pixels,
            "image_min_pixels": image_min_pixels,
            "video_max_pixels": 16384,
            "trust_remote_code": True,
        },
        "method": {
            "stage": "sft",
            "do_train": True,
            "finetuning_type": "full",
            "freeze_vision_tower": True,
            "freeze_multi_modal_projector": True,
            "freeze_language_model": False,
            "flash_attn": "fa2",  # LLaMA-Factory falls back to the default attention when it is missing
            "deepspeed": str(Path(root) / DS_Z3_OFFLOAD_NAME),  # or ds_z3_config.json when GPU memory allows
        },
        "dataset": {
            "dataset": DATASET_NAME,
            "dataset_dir": root,
            "media_dir": root,  # image paths in the data are relative to the export dir
            "template": variant.template,
            "cutoff_len": cutoff_len,
            "overwrite_cache": True,
            "preprocessing_num_workers": 16,
            "dataloader_num_workers": 0,
        },
        "output": {
            "output_dir": f"saves/{variant.model.rsplit('/', 1)[-1].lower()}/full/mini-o3-coldstart",
            "logging_steps": 10,
            "save_steps": 500,
            "plot_loss": True,
            "overwrite_output_dir": True,
            "save_only_model": False,
            "report_to": "none",
        },
        "train": {
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": 4,
            "learning_rate": 1.0e-5,
            "num_train_epochs": 3.0,
            "lr_scheduler_type": "cosine",
            "warmup_ratio": 0.1,
            "bf16": True,
            "ddp_timeout": 180000000,
            "resume_from_checkpoint": None,
        },
    }


def yaml_scalar(v: Any) -> str:
    """A YAML scalar that YAML 1.1 loaders (PyYAML, OmegaConf) read back as the same type.

    Floats always carry a dot ("1.0e-05"): YAML 1.1 reads "1e-05" as a string.
    """
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = repr(v)
        if "e" in text and "." not in text:
            mantissa, exp = text.split("e")
            text = f"{mantissa}.0e{exp}"
        return text
    return json.dumps(str(v), ensure_ascii=False)  # a JSON string is a valid double-quoted YAML scalar


def render_yaml(sections: dict[str, dict[str, Any]]) -> str:
    model = sections["model"]["model_name_or_path"]
    lines = [f"# LLaMA-Factory full SFT of {model} on a minio3 export (released Mini-o3 cold-start recipe).",
             "# Run: minio3 train-sft --export <this dir> --model <path or id>   (overrides: -- key=value ...)"]  # fmt: skip
    for name, values in sections.items():
        lines.append(f"\n### {name}")
        lines += [f"{k}: {yaml_scalar(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def config_files(
    export_dir: Path, data_file: str, cutoff_len: int, image_max_pixels: int, image_min_pixels: int,
    family: ModelFamily,
) -> dict[str, str]:
    """Every LLaMA-Factory file of an export, name -> text; `export_dir` is the final (not temp) location."""
    yamls = {
        family.yaml_name(v): render_yaml(sft_config(export_dir, cutoff_len, image_max_pixels, image_min_pixels, v))
        for v in family.variants
    }
    return {
        DATASET_INFO_NAME: _json_text(dataset_info(data_file)),
        **yamls,
        DS_Z3_NAME: _json_text(deepspeed_z3(offload=False)),
        DS_Z3_OFFLOAD_NAME: _json_text(deepspeed_z3(offload=True)),
    }


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2) + "\n"
