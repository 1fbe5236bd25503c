"""The `minio3-1000` profile: boxes in Qwen3-VL's native grounding frame (0-1000 integers). A box the model writes
becomes the canonical relative action every stage stores and crops with, and comes back as the same integers;
the crop it names is within one pixel of the one its integers name. Synthesis (exemplars, the scripted teacher)
writes in the frame, the export keeps it and re-derives every crop, and an export into another frame is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minio3_data.errors import BadInputError
from minio3_data.images import OriginalCache
from minio3_data.profiles import get_profile
from minio3_data.profiles.frame import PER_MILLE
from minio3_data.protocol import Malformed, Zoom, render_turn

NATIVE, MINIO3 = get_profile("minio3-1000"), get_profile("minio3")
SIDE = st.integers(min_value=1, max_value=10_000)


@st.composite
def native_boxes(draw: st.DrawFn) -> tuple[int, int, int, int]:
    x0, x1 = sorted(draw(st.lists(st.integers(0, 1000), min_size=2, max_size=2, unique=True)))
    y0, y1 = sorted(draw(st.lists(st.integers(0, 1000), min_size=2, max_size=2, unique=True)))
    return x0, y0, x1, y1


def turn(box: object, source: str = "original_image") -> str:
    return f'<think>look</think>\n<grounding>{{"bbox_2d": {json.dumps(box)}, "source": "{source}"}}</grounding>'


def exact_pixels(box: tuple[int, ...], size: tuple[int, int]) -> tuple[int, ...]:
    """The box its integers name on a source of `size`, in exact integer arithmetic (truncated, clamped)."""
    w, h = size
    return tuple(min(k * side // 1000, side - 1) for k, side in zip(box, (w, h, w, h), strict=True))


@given(native_boxes(), SIDE, SIDE)
def test_a_native_box_round_trips_exactly_and_crops_within_one_pixel(box: tuple[int, ...], w: int, h: int) -> None:
    action = NATIVE.parse_turn(turn(list(box)))
    assert isinstance(action, Zoom) and all(0 <= v <= 1 for v in action.bbox)
    stored = NATIVE.stored_turn(turn(list(box)), action)
    assert stored == turn(list(box))  # the canonical text, the same integers
    assert NATIVE.parse_turn(stored) == action  # and read back, the same canonical action
    assert PER_MILLE.in_frame(action) == Zoom(box, "original_image")
    pixels = NATIVE.box_on_source(action.bbox, (w, h))
    exact = exact_pixels(box, (w, h))
    if isinstance(pixels, tuple):
        assert max(abs(a - b) for a, b in zip(pixels, exact, strict=True)) <= 1, (pixels, exact)
    else:  # refused (under a pixel, or 1:200): so would the exact box be, give or take that pixel a side
        cw, ch = exact[2] - exact[0], exact[3] - exact[1]
        assert min(cw, ch) <= 1 or max((cw + 1) / (ch - 1), (ch + 1) / (cw - 1)) >= 200, (pixels, exact)


@given(st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_a_relative_box_written_natively_is_stable_after_one_rounding(box: list[float]) -> None:
    """Canonical -> native rounds to the nearest thousandth (at most half a unit); from then on it is exact."""
    native = PER_MILLE.in_frame(Zoom(tuple(box)))
    assert isinstance(native, Zoom) and all(isinstance(k, int) and abs(k / 1000 - v) <= 0.0005 + 1e-12
                                            for k, v in zip(native.bbox, box, strict=True))  # fmt: skip
    again = PER_MILLE.in_frame(Zoom(tuple(PER_MILLE.canonical(k) for k in native.bbox)))
    assert again == native


def test_the_native_profile_speaks_in_its_frame() -> None:
    assert "as whole numbers from 0 to 1000" in NATIVE.system_prompt and "taken as 1.0" in MINIO3.system_prompt
    assert NATIVE.system_prompt.replace(PER_MILLE.extent, "") == MINIO3.system_prompt.replace(MINIO3.frame.extent, "")
    far = NATIVE.parse_turn(turn([100, 200, 1500, 900]))
    assert isinstance(far, Malformed) and "outside [0, 1000]" in far.reason and "are 1000" in far.reason
    relative = NATIVE.parse_turn(turn([0.1, 0.2, 0.5, 0.9]))  # relative numbers in a 0-1000 frame: a sliver
    assert isinstance(relative, Zoom)
    refused = NATIVE.box_on_source(relative.bbox, (1000, 800))
    assert refused == ("the box [0, 0, 0, 1] is 0x0 pixels on the 1000x800 source; x1 must be greater than x0 and "
                       "y1 greater than y0, with (x0, y0) the top-left corner")  # fmt: skip
    zoom = Zoom((0.25, 0.5, 0.75, 1.0))
    assert MINIO3.in_words(render_turn("t", zoom), zoom) == render_turn("t", zoom)  # relative: untouched
    assert NATIVE.in_words(render_turn("t", zoom), zoom) == render_turn("t", Zoom((250, 500, 750, 1000)))


def test_synthesis_writes_the_frame_and_export_re_derives_every_crop(tmp_path: Path) -> None:
    from pipelines.build_visualprobe import build_visualprobe
    from pipelines.export_llamafactory import export_run
    from pipelines.sampling.prompt import render_exemplar

    from minio3_data.exemplars import load_exemplars
    from minio3_data.records import read_trajectories
    from minio3_data.families import get_family
    from pipelines.synth_coldstart import SynthConfig, synth_coldstart

    exemplar = render_exemplar(load_exemplars()[0], OriginalCache(), NATIVE)
    texts = [part for m in exemplar.messages if m.role == "assistant" for part in m.parts if isinstance(part, str)]
    assert any('"bbox_2d": [' in t for t in texts) and not any('"bbox_2d": [0.' in t for t in texts)
    dataset = tmp_path / "vp"
    build_visualprobe("synthetic", dataset, train=4, test=1, seed=3, long_side=(1200, 1600), workers=1)
    run = tmp_path / "run"
    synth_coldstart(SynthConfig(dataset=dataset, out=run, protocol=NATIVE, model_family=get_family("qwen3-vl"),
                                target=4, samples_per_item=2, progress=False))  # fmt: skip
    zooms = [t for traj in read_trajectories(run / "trajectories.parquet") for t in traj.turns if t.action == "zoom"]
    assert zooms and all(isinstance(NATIVE.parse_turn(t.text), Zoom) for t in zooms)
    for t in zooms:  # the text holds the integers, the record the canonical action they name
        written = json.loads(t.text.split("<grounding>")[1].split("</grounding>")[0])["bbox_2d"]
        assert all(isinstance(k, int) for k in written) and [k / 1000 for k in written] == pytest.approx(t.bbox)
    summary = export_run(run, tmp_path / "sft", workers=1, progress=False)
    assert summary.protocol == "minio3-1000" and summary.model_family == "qwen3-vl"
    assert summary.rows_written > 0 and not summary.excluded  # every crop re-derived from the stored actions
    with pytest.raises(BadInputError, match=r"writes boxes in \[0, 1\], but .* were written in \[0, 1000\]"):
        export_run(run, tmp_path / "sft2", protocol=MINIO3, workers=1, progress=False)
