"""Model families: image tokens as the real processor counts them, the family a model dir's config.json names, and
the processor view that trains a model with its family's pixel bounds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from minio3_data.errors import BadInputError
from minio3_data.families import FAMILIES, VISION_MARKERS, ModelFamily, get_family
from minio3_data.families.model_dir import VIEW_MARK, family_of_model, processor_view, refuse_other_family
from minio3_data.profiles import PROFILES

QWEN25, QWEN3 = get_family("qwen2.5-vl"), get_family("qwen3-vl")
# what the real checkpoints' preprocessor_config.json say (Qwen2.5-VL-7B-Instruct, Qwen3-VL-8B-Instruct)
STOCK = {"qwen2.5-vl": (3_136, 12_845_056), "qwen3-vl": (65_536, 16_777_216)}
NORMALISATION = {"qwen2.5-vl": {}, "qwen3-vl": {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}}

ORIGINALS = [(7680, 4320), (4320, 7680), (3840, 2160), (1920, 1080), (900, 600), (640, 480), (300, 200), (64, 64)]
CROPS = [(1, 1), (3, 5), (10, 10), (27, 27), (28, 28), (31, 33), (200, 200), (208, 208), (240, 240), (1, 150),
         (150, 1), (2, 390), (390, 2), (28, 5000), (5000, 28), (1000, 7), (3000, 2000), (7000, 4000)]  # fmt: skip
RAW = [(1, 1), (5, 900), (10, 1000), (16, 3200), (33, 47), (1000, 1000)]  # straight to the processor


def shown_sizes() -> list[tuple[int, int]]:
    """Every size a protocol shows: the first view of originals from 64 px to 8K, crops from 1 px to most of an 8K
    original, elongated to the 1:200 limit, by every profile's display rule."""
    sizes = set(RAW)
    for profile in PROFILES.values():
        for w, h in ORIGINALS:
            sizes.add(profile.display.first_view_size(w, h))
        for w, h in CROPS:
            try:
                sizes.add(profile.display.crop_size(w, h))
            except ValueError:  # a crop the profile refuses (too elongated for its pixel cap)
                pass
    return sorted(sizes)


def real_processor(family: ModelFamily, bounds: tuple[int, int]):
    """transformers' image processor as the family's checkpoints configure it, with `bounds`."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    assert transformers
    return Qwen2VLImageProcessorPil(patch_size=family.patch_size, merge_size=family.merge_size,
                                    size={"shortest_edge": bounds[0], "longest_edge": bounds[1]},
                                    **NORMALISATION[family.name])  # fmt: skip


def processor_tokens(processor, size: tuple[int, int]) -> int:
    from PIL import Image

    (grid,) = processor([Image.new("RGB", size, (90, 140, 200))])["image_grid_thw"].tolist()
    return grid[0] * grid[1] * grid[2] // processor.merge_size**2


@pytest.mark.parametrize("name", list(FAMILIES))
def test_image_tokens_equal_the_real_processors_from_tiny_crops_to_8k_originals(name: str) -> None:
    family = get_family(name)
    processor = real_processor(family, (family.min_pixels, family.max_pixels))
    sizes = shown_sizes()
    assert (7680 * 4320 > 2_000_000) and any(w * h > 1_900_000 for w, h in sizes)  # 8K first views at the cap
    assert any(max(w / h, h / w) > 100 for w, h in sizes)  # extreme aspect ratios
    for size in sizes:
        assert family.image_tokens(*size) == processor_tokens(processor, size) + VISION_MARKERS, size


@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_processor_only_rounds_what_a_protocol_shows(name: str) -> None:
    """With the family's bounds, every shown image keeps its size up to rounding each side to the factor. A
    profile that shows the original whole (qwen3-agent) leaves the downscaling of large ones to the processor:
    those are past the family's maximum, and their token counts are the real processor's (test above)."""
    family = get_family(name)
    for w, h in shown_sizes():
        if (w, h) in RAW or w * h > family.max_pixels:
            continue
        pw, ph = family.processor_size(w, h)
        assert (pw, ph) == (family.factor * round(w / family.factor), family.factor * round(h / family.factor))


def test_qwen3vls_stock_minimum_would_enlarge_the_protocols_crops() -> None:
    """reference/qwen3vl.md: 200x200 is 64 tokens with the stock processor (enlarged to 256 x 256), 36 with ours
    (rounded to 192 x 192), 49 for Qwen2.5-VL (196 x 196); 1920x1080 is 2040 either way."""
    stock = real_processor(QWEN3, STOCK["qwen3-vl"])
    assert processor_tokens(stock, (200, 200)) == 64
    assert QWEN3.image_tokens(200, 200) == 36 + 2 and QWEN25.image_tokens(200, 200) == 49 + 2
    assert processor_tokens(stock, (1920, 1080)) == 2040 and QWEN3.image_tokens(1920, 1080) == 2040 + 2
    assert QWEN3.min_pixels == 4 * 32 * 32 and QWEN25.min_pixels == STOCK["qwen2.5-vl"][0]
    assert (QWEN3.factor, QWEN25.factor) == (32, 28)


def test_sft_variants_and_their_yaml_names() -> None:
    assert [(v.name, v.template, v.model) for v in QWEN3.variants] == [
        ("instruct", "qwen3_vl_nothink", "Qwen/Qwen3-VL-8B-Instruct"), ("thinking", "qwen3_vl", "Qwen/Qwen3-VL-8B-Thinking"),
    ]  # fmt: skip
    assert QWEN3.yaml_name(QWEN3.variant()) == "sft_qwen3_vl.yaml"
    assert QWEN3.yaml_name(QWEN3.variant("thinking")) == "sft_qwen3_vl_thinking.yaml"
    assert QWEN25.yaml_name(QWEN25.variant()) == "sft_qwen2_5_vl.yaml" and QWEN25.variant().template == "qwen2_vl"
    with pytest.raises(BadInputError, match="the qwen2.5-vl family is trained as instruct"):
        QWEN25.variant("thinking")
    with pytest.raises(BadInputError, match="--model-family 'llava': use one of qwen2.5-vl, qwen3-vl"):
        get_family("llava")


# --- a model dir's family -------------------------------------------------------------------------------------


def model_dir(root: Path, config: dict, processor: dict | None = None, nested: bool = False) -> Path:
    """A model dir's files: config.json, an image processor config (flat, or nested as transformers 5 saves a
    whole processor), a weights file."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(config))
    (root / "model.safetensors").write_bytes(b"weights")
    (root / "tokenizer.json").write_text("{}")
    if processor is not None:
        name, body = ("processor_config.json", {"image_processor": processor, "processor_class": "X"}) if nested else (
            "preprocessor_config.json", processor)  # fmt: skip
        (root / name).write_text(json.dumps(body))
    return root


def test_config_json_names_the_family(tmp_path: Path) -> None:
    assert family_of_model(model_dir(tmp_path / "a", {"model_type": "qwen3_vl"})) is QWEN3
    assert family_of_model(model_dir(tmp_path / "b", {"model_type": "qwen2_5_vl"})) is QWEN25
    assert family_of_model(model_dir(tmp_path / "c", {"architectures": ["Qwen3VLMoeForConditionalGeneration"]})) is QWEN3
    with pytest.raises(BadInputError, match=r"model_type 'llava', which no model family knows \(qwen2.5-vl: "):
        family_of_model(model_dir(tmp_path / "d", {"model_type": "llava"}))
    with pytest.raises(BadInputError, match="cannot read config.json"):
        family_of_model(tmp_path / "none")


def test_a_model_of_another_family_than_the_exports_is_refused_naming_both(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as e:
        refuse_other_family(QWEN3, tmp_path, QWEN25, "the export sft/")
    assert str(e.value) == (
        f"--model {tmp_path} is a qwen3-vl model (its config.json), but the export sft/ is for qwen2.5-vl; "
        "re-export with --model-family qwen3-vl, or train a qwen2.5-vl model"
    )
    refuse_other_family(QWEN3, tmp_path, QWEN3, "the export sft/")


@pytest.mark.parametrize("nested", [False, True])
def test_a_processor_view_trains_with_the_familys_bounds(tmp_path: Path, nested: bool) -> None:
    processor = {"patch_size": 16, "merge_size": 2, "image_processor_type": "Qwen2VLImageProcessor",
                 "size": {"shortest_edge": 65536, "longest_edge": 16777216}}  # fmt: skip
    model = model_dir(tmp_path / "qwen3", {"model_type": "qwen3_vl"}, processor, nested)
    view = processor_view(model, QWEN3, tmp_path / "run" / "model")
    assert view is not None and "4,096-16,777,216 px" in view.note()
    out = view.write()
    assert out == tmp_path / "run" / "model" and out.is_dir() and not out.is_symlink()
    name = "processor_config.json" if nested else "preprocessor_config.json"
    written = json.loads((out / name).read_text())
    cfg = written["image_processor"] if nested else written
    assert cfg["size"] == {"shortest_edge": 4096, "longest_edge": 16777216} and cfg["patch_size"] == 16
    assert (out / "model.safetensors").is_symlink() and os.readlink(out / "model.safetensors") == str(model.resolve() / "model.safetensors")
    assert (out / "model.safetensors").read_bytes() == b"weights" and not (out / name).is_symlink()
    assert processor_view(out, QWEN3, tmp_path / "again") is None  # the view has the family's bounds
    stamp = (out / VIEW_MARK).stat().st_mtime_ns
    assert view.write() == out and (out / VIEW_MARK).stat().st_mtime_ns == stamp  # a rerun keeps it


def test_transformers_reads_the_views_bounds(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    real_processor(QWEN3, STOCK["qwen3-vl"]).save_pretrained(model)
    view = processor_view(model, QWEN3, tmp_path / "view")
    assert view is not None
    loaded = Qwen2VLImageProcessorPil.from_pretrained(view.write())
    assert (loaded.size.shortest_edge, loaded.size.longest_edge, loaded.patch_size) == (4096, 16_777_216, 16)
    assert processor_tokens(loaded, (200, 200)) == 36


def test_a_model_with_the_familys_bounds_needs_no_view_and_a_foreign_dir_is_never_replaced(tmp_path: Path) -> None:
    qwen25 = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14}  # Qwen2.5-VL-7B's own keys
    assert processor_view(model_dir(tmp_path / "a", {"model_type": "qwen2_5_vl"}, qwen25), QWEN25, tmp_path / "v") is None
    tiny = model_dir(tmp_path / "b", {"model_type": "qwen2_5_vl"}, {**qwen25, "max_pixels": 50176})
    view = processor_view(tiny, QWEN25, tmp_path / "v")
    assert view is not None
    assert json.loads((view.write() / "preprocessor_config.json").read_text())["max_pixels"] == 12845056
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(BadInputError, match="exists and is not a processor view made by minio3"):
        processor_view(tiny, QWEN25, foreign).write()  # type: ignore[union-attr]
    assert (foreign / "keep.txt").read_text() == "mine"
