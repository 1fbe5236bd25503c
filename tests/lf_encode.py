"""What LLaMA-Factory trains on, for the RL token-parity test: run with LLaMA-Factory's own Python,
    <llamafactory venv>/bin/python tests/lf_encode.py EXPORT_DIR YAML_NAME MODEL_DIR OUT_JSON
it loads our SFT export exactly as `llamafactory-cli train <export>/<YAML_NAME> model_name_or_path=MODEL` would
(the export's YAML, LLaMA-Factory's argument parsing, tokenizer/processor loading, the family's template and
its Qwen-VL plugin, dataset loading and supervised preprocessing), and writes each row's `input_ids`,
`labels` and the `image_grid_thw` its plugin computes from the row's images. Nothing is trained.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import yaml
from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer

# what a CPU run without DeepSpeed, flash-attention or bf16 overrides in the export's YAML; nothing else changes
CPU_OVERRIDES = {"deepspeed": None, "flash_attn": "auto", "bf16": False, "report_to": "none",
                 "preprocessing_num_workers": 1, "overwrite_cache": True}  # fmt: skip


def main(export: Path, yaml_name: str, model: Path, out: Path) -> None:
    args = yaml.safe_load((export / yaml_name).read_text())
    args = {k: v for k, v in args.items() if v is not None} | CPU_OVERRIDES | {"model_name_or_path": str(model)}
    args = {k: v for k, v in args.items() if v is not None}
    args["output_dir"] = tempfile.mkdtemp(prefix="lf-encode-")
    model_args, data_args, training_args, _, _ = get_train_args(args)
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    dataset = get_dataset(template, model_args, data_args, training_args, "sft", **tokenizer_module)["train_dataset"]
    processor = tokenizer_module["processor"]
    rows = []
    for example in dataset:
        images = [str(export / p) if isinstance(p, str) else p for p in example["images"] or []]
        mm = template.mm_plugin._get_mm_inputs(images, [], [], processor)
        grid = mm["image_grid_thw"].tolist() if "image_grid_thw" in mm else []
        rows.append({"input_ids": example["input_ids"], "labels": example["labels"], "image_grid_thw": grid})
    out.write_text(json.dumps(rows))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: lf_encode.py EXPORT_DIR YAML_NAME MODEL_DIR OUT_JSON")
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
