"""Synthetic items: the API, the unambiguity checker, the difficulty rule, determinism, the dataset dir."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from minio3_data.display import first_view_size
from minio3_data.errors import BadInputError
from minio3_data.images import open_image
from minio3_data.protocol import IMAGE_PLACEHOLDER, OPTION_LETTERS
from minio3_data.records import read_items
from pipelines.build_visualprobe import build_visualprobe
from pipelines.build_visualprobe import difficulty as rule
from pipelines.build_visualprobe.checker import check, lookalikes, targets
from pipelines.build_visualprobe.questions import KINDS, Description, QuestionSpec, relation
from pipelines.build_visualprobe.scene import SHAPE_COLORS, SceneObject, render, sign_size
from pipelines.build_visualprobe.synthetic import make_sample

SMALL = (768, 1024)


def _shape(shape: str, color: str, box: list[float], pattern: str = "plain") -> SceneObject:
    return SceneObject(shape, color, [float(v) for v in box], pattern=pattern)


@pytest.mark.parametrize("kind", KINDS)
def test_make_sample_is_checked_and_self_consistent(kind: str) -> None:
    for seed in range(3):
        s = make_sample(seed, kind=kind, long_side=SMALL)
        assert s.kind == kind and s.image.size == (s.width, s.height)
        assert max(s.width, s.height) in range(SMALL[0], SMALL[1] + 1)
        assert IMAGE_PLACEHOLDER not in s.question and "Options:" not in s.question
        x0, y0, x1, y1 = s.target_bbox
        assert 0 <= x0 < x1 <= s.width and 0 <= y0 < y1 <= s.height
        if s.options:
            assert s.options[OPTION_LETTERS.index(s.answer)] == s.value and len(set(s.options)) == 4
        else:
            assert s.answer == s.value
        tagged = [o.box for o in s.objects if "target" in o.tags]
        assert sorted(map(tuple, tagged)) == sorted(map(tuple, s.target_boxes))
        assert sorted(map(tuple, s.distractor_boxes)) == sorted(
            tuple(o.box) for o in s.objects if "lookalike" in o.tags
        )


def test_answers_follow_from_the_objects() -> None:
    s = make_sample(4, kind="count", long_side=SMALL, multiple_choice=False)
    assert int(s.answer) == len(s.target_boxes) >= 2
    s = make_sample(4, kind="text", long_side=SMALL, multiple_choice=False)
    (sign,) = [o for o in s.objects if "target" in o.tags]
    assert sign.is_sign and s.answer == sign.text
    s = make_sample(4, kind="position", long_side=SMALL, multiple_choice=False)
    asked, reference = s.target_boxes
    assert s.answer == relation(asked, reference) and s.question.endswith(": left, right, above or below?")
    s = make_sample(4, kind="position", long_side=SMALL, multiple_choice=True)
    assert s.options[OPTION_LETTERS.index(s.answer)] == relation(*s.target_boxes)
    assert s.question.endswith("?") and "left" not in s.question  # the options are rendered separately


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_requested_difficulty_is_assigned_by_the_rule(difficulty: str) -> None:
    for kind in KINDS:
        s = make_sample(11, kind=kind, difficulty=difficulty, long_side=SMALL)
        assert s.difficulty == difficulty
        assert s.view_px == pytest.approx(rule.view_px(s.target_boxes, s.width, s.height))
        assert rule.classify(s.view_px, len(s.distractor_boxes)) == difficulty


def test_hard_targets_are_tiny_in_the_first_view_but_legible_in_the_original() -> None:
    s = make_sample(3, kind="text", difficulty="hard", long_side=(6000, 8192), multiple_choice=False)
    fw, _ = first_view_size(s.width, s.height)
    (sign,) = [o for o in s.objects if "target" in o.tags]
    assert sign.font_size >= 12  # readable at full resolution
    assert sign.short_side * fw / s.width < 20  # a few pixels in the first view
    assert len(s.distractor_boxes) >= 5  # other signs in the same text style


def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    a, b = make_sample(9, long_side=SMALL), make_sample(9, long_side=SMALL)
    assert a.image.tobytes() == b.image.tobytes() and (a.question, a.answer, a.options) == (
        b.question,
        b.answer,
        b.options,
    )
    assert make_sample(10, long_side=SMALL).image.tobytes() != a.image.tobytes()


def test_bad_arguments_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINIO3_MAX_IMAGE_PIXELS", raising=False)
    with pytest.raises(BadInputError, match="difficulty 'impossible'"):
        make_sample(0, difficulty="impossible")
    with pytest.raises(BadInputError, match="question kind 'smell'"):
        make_sample(0, kind="smell")
    with pytest.raises(BadInputError, match="long side range 900:800"):
        make_sample(0, long_side=(900, 800))
    with pytest.raises(BadInputError, match="above the limit of 250,000,000; .* MINIO3_MAX_IMAGE_PIXELS"):
        make_sample(0, long_side=(2048, 20000))


# --- the renderer draws what the objects say ---------------------------------------------------------------


def test_render_draws_each_object_in_its_box_and_color() -> None:
    objs = [_shape("square", "red", [20, 20, 60, 60]), _shape("circle", "blue", [100, 20, 140, 60])]
    im = render(200, 100, objs, seed=1)
    for obj in objs:
        cx, cy = (obj.box[0] + obj.box[2]) / 2, (obj.box[1] + obj.box[3]) / 2
        got = im.getpixel((int(cx), int(cy)))
        assert max(abs(g - w) for g, w in zip(got, SHAPE_COLORS[obj.color])) < 12


def test_sign_text_is_drawn_and_distinct() -> None:
    w, h = sign_size("K7", 14)
    pix = []
    for text in ("K7", "H4"):
        sign = SceneObject(
            "sign", "white", [10.0, 10.0, 10.0 + w, 10.0 + h], border="red", text=text, font_size=14
        )
        pix.append(render(w + 20, h + 20, [sign], seed=3).crop((10, 10, 10 + w, 10 + h)))
    dark = int((np.asarray(pix[0]).max(axis=2) < 80).sum())
    assert dark > 15  # glyph strokes in the shared dark text color
    assert pix[0].tobytes() != pix[1].tobytes()


# --- the unambiguity checker -------------------------------------------------------------------------------


def test_checker_accepts_a_sound_item() -> None:
    objs = [_shape("star", "red", [10, 10, 30, 30]), _shape("star", "blue", [60, 10, 80, 30], "striped")]
    spec = QuestionSpec("color", [Description(shape="star", pattern="plain")], "red")
    assert check(spec, objs, 200, 100) == []
    assert targets(spec, objs) == [objs[0]] and lookalikes(spec, objs) == [objs[1]]


def test_checker_rejects_two_matching_objects() -> None:
    objs = [_shape("star", "red", [10, 10, 30, 30]), _shape("star", "blue", [60, 10, 80, 30])]
    problems = check(
        QuestionSpec("color", [Description(shape="star", pattern="plain")], "red"), objs, 200, 100
    )
    assert any("matches 2 objects" in p for p in problems)


def test_checker_rejects_a_wrong_count_and_a_wrong_attribute() -> None:
    objs = [_shape("circle", "green", [10, 10, 30, 30]), _shape("circle", "green", [50, 10, 70, 30])]
    assert (
        check(QuestionSpec("count", [Description(shape="circle", color="green")], "2"), objs, 200, 100) == []
    )
    assert check(QuestionSpec("count", [Description(shape="circle", color="green")], "3"), objs, 200, 100)
    spec = QuestionSpec("shape", [Description(color="green", pattern="plain")], "circle")
    assert any("matches 2" in p for p in check(spec, objs, 200, 100))
    assert check(
        QuestionSpec("shape", [Description(color="green", pattern="plain")], "star"), objs[:1], 200, 100
    )


def test_checker_rejects_a_description_that_gives_the_answer_away() -> None:
    objs = [_shape("star", "red", [10, 10, 30, 30])]
    problems = check(QuestionSpec("color", [Description(shape="star", color="red")], "red"), objs, 200, 100)
    assert any("gives the asked color away" in p for p in problems)


def test_checker_rejects_overlap_tiny_targets_and_bad_options() -> None:
    overlapping = [_shape("star", "red", [10, 10, 30, 30]), _shape("circle", "blue", [25, 25, 45, 45])]
    spec = QuestionSpec("color", [Description(shape="star", pattern="plain")], "red")
    assert any("overlap" in p for p in check(spec, overlapping, 200, 100))
    tiny = [_shape("star", "red", [10, 10, 18, 18])]
    assert any("below 16px" in p for p in check(spec, tiny, 200, 100))
    good = [_shape("star", "red", [10, 10, 30, 30])]
    assert check(QuestionSpec("color", spec.subjects, "red", ["red", "red", "blue", "green"]), good, 200, 100)
    assert check(
        QuestionSpec("color", spec.subjects, "red", ["pink", "cyan", "blue", "green"]), good, 200, 100
    )
    sign = SceneObject("sign", "white", [10.0, 10.0, 40.0, 25.0], border="red", text="K7", font_size=9)
    text = QuestionSpec("text", [Description(shape="sign", color="white", border="red")], "K7")
    assert any("below 12px" in p for p in check(text, [sign], 200, 100))


def test_checker_rejects_an_unclear_relation() -> None:
    a, b = _shape("star", "red", [10, 10, 30, 30]), _shape("circle", "blue", [40, 40, 60, 60])  # diagonal
    spec = QuestionSpec(
        "position",
        [Description(shape="star", color="red"), Description(shape="circle", color="blue")],
        "left",
    )
    assert any("unclear" in p for p in check(spec, [a, b], 200, 100))
    b.box = [80.0, 12.0, 100.0, 32.0]
    assert check(spec, [a, b], 200, 100) == []


# --- the difficulty rule -----------------------------------------------------------------------------------


def test_difficulty_rule_boundaries() -> None:
    assert rule.classify(25, 0) == "easy"
    assert rule.classify(25, 5) == "easy"  # 0 + 1 points
    assert rule.classify(15, 0) == "easy"  # 1 + 0
    assert rule.classify(15, 5) == "medium"  # 1 + 1
    assert rule.classify(9.9, 0) == "medium"  # 2 + 0
    assert rule.classify(20, 13) == "medium"  # 0 + 2
    assert rule.classify(19.9, 13) == "hard"  # 1 + 2
    assert rule.classify(5, 12) == "hard"  # 2 + 1
    assert rule.view_px([[0, 0, 100, 40]], 4000, 2000) == pytest.approx(40 * 2000 / 4000, rel=0.01)
    assert rule.view_px([[0, 0, 100, 40]], 1000, 800) == 40  # no downscale below 2 MP


def test_quotas_follow_the_released_split() -> None:
    assert rule.quotas(515) == {"easy": 141, "medium": 268, "hard": 106}
    assert rule.quotas(500) == {"easy": 137, "medium": 260, "hard": 103}
    for n in range(40):
        assert sum(rule.quotas(n).values()) == n
    assert "3-4 points" in rule.rule_markdown() or "3-4 = hard" in rule.rule_markdown()


# --- the dataset dir -------------------------------------------------------------------------------------


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_dataset_is_identical_for_any_worker_count(tmp_path: Path) -> None:
    kw = {"train": 3, "test": 4, "seed": 5, "long_side": (512, 768)}
    build_visualprobe("synthetic", tmp_path / "one", workers=1, **kw)
    build_visualprobe("synthetic", tmp_path / "two", workers=2, **kw)
    one, two = _hashes(tmp_path / "one"), _hashes(tmp_path / "two")
    assert one == two and sum(k.endswith(".jpg") for k in one) == 7
    build_visualprobe("synthetic", tmp_path / "other", workers=1, **{**kw, "seed": 6})
    assert _hashes(tmp_path / "other")["test.parquet"] != one["test.parquet"]


def test_dataset_dir_contract(tmp_path: Path) -> None:
    out = tmp_path / "vp"
    summary = build_visualprobe("synthetic", out, train=5, test=6, seed=2, workers=1, long_side=(512, 768))
    assert summary.counts == {"train": 5, "test": 6}
    train, test = read_items(out / "train.parquet"), read_items(out / "test.parquet")
    assert {it.difficulty for it in test} <= {"easy", "medium", "hard"}
    assert {d: sum(it.difficulty == d for it in test) for d in ("easy", "medium", "hard")} == rule.quotas(6)
    for it in train + test:
        assert not Path(it.image).is_absolute() and it.image.startswith("images/")
        assert open_image(out / it.image).size == (it.width, it.height)
        assert it.target_bbox is not None and it.source == "synthetic" and it.kind in KINDS
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["test"]["by_difficulty"] == {
        d: n for d, n in sorted(rule.quotas(6).items()) if n
    }
    by_both = manifest["counts"]["train"]["by_difficulty_and_kind"]
    assert sum(n for kinds in by_both.values() for n in kinds.values()) == 5
    assert manifest["difficulty_rule"]["classes"]["hard"] == "3-4 points" and manifest["excluded"]["count"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_parquet_loads_with_datasets(tmp_path: Path) -> None:
    import datasets
    out = tmp_path / "vp"
    build_visualprobe("synthetic", out, train=2, test=2, seed=0, workers=1, long_side=(512, 768))
    ds = datasets.load_dataset(
        "parquet",
        data_files={"train": str(out / "train.parquet"), "test": str(out / "test.parquet")},
        cache_dir=str(tmp_path / "hf"),
    )
    assert ds["train"].num_rows == 2 and ds["test"].num_rows == 2
    assert len(ds["test"][0]["target_bbox"]) == 4 and isinstance(ds["test"][0]["options"], list)
