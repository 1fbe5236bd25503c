"""The `released` protocol profile, pinned to the released Mini-o3 code (github.com/Mini-o3/Mini-o3 @ 8654dbf).

Every expectation here is quoted from the released files or computed by hand from their formulas (the
arithmetic is in the comments), never taken from our own output.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from minio3_data.display import fit_pixels, released_crop_size, released_crop_steps, released_first_view_size
from minio3_data.images import OriginalCache, open_image
from minio3_data.profiles import get_profile
from minio3_data.protocol import Answer, Malformed, Void, Zoom
from minio3_data.records import Turn
from minio3_data.render import conversation
from minio3_data.zoom import Observation, ZoomEnv, ZoomError, crop_box

RELEASED = get_profile("released")
VISION = "<|vision_start|><|image_pad|><|vision_end|>"

# verl/trainer/constants.py l.1 (TOOL_CROP_SYSTEM_PROMPT), quoted
SYSTEM = (
    "You are a helpful assistant. Answer the user's question based on the image provided. Output your "
    "thinking process within the <think> and </think> tags. Whenever you find anything unclear, you can "
    "zoom in a specific region in the given image to see more clearly by outputing <grounding>{\"bbox_2d\": "
    "[x0, y0, x1, y1], \"source\": \"original_image\"}</grounding>, where (x0, y0) and (x1, y1) are the "
    "top-left and bottom-right coordinates of the region that you want to zoom in, respectively (suppose "
    "the width and height of the image are 1.0), and 'source' refers to the image that you zoom in and could "
    "be either 'original_image' or 'observation_i'. Once the final answer is confirmed, put it within "
    "<answer> and </answer>."
)
# constants.py l.7 (TOOL_CALL_CROP_MULTI_TRUN_PROMPT) formatted with action_turn=2, observation_turn=3
OBSERVATION_2 = (
    "After the above Action 2, here is the the zoom-in image (Observation 3):\n"
    "<|vision_start|><|image_pad|><|vision_end|>.\n"
    "Continue your reasoning process inside <think> and </think>. If needed, you can continue to zoom in "
    "on the original image or any of the observations, by outputting <grounding> and </grounding> as "
    "before. If the final answer is confirmed, put your final answer inside <answer> and </answer>."
)
# vllm_async_engine.py l.535 + constants.py l.9 (ERROR_INFO_MULTI_TURN_PROMPT)
ERROR_FOLLOW_UP = (
    "Please analyze the error information obtained from the function tool and adjust your response. "
    "Countinue your reasoning process inside <think> and </think>."
)


def test_texts_are_the_released_bytes() -> None:
    assert RELEASED.system_prompt == SYSTEM
    assert RELEASED.observation_text(2, 2, VISION) == OBSERVATION_2
    # the message's own period stays: "...: "observation_3".." is what the release sends
    message = 'Error in predicting the source observation: "observation_3".'
    assert RELEASED.error_text(message) == (
        'ERROR occurs during grounding. Error Information: Error in predicting the source observation: '
        '"observation_3"..\n' + ERROR_FOLLOW_UP
    )
    # a failed assert carries no message: "Error Information: .\n"
    assert RELEASED.error_text("") == "ERROR occurs during grounding. Error Information: .\n" + ERROR_FOLLOW_UP


ZOOM = '<think>t</think>\n<grounding>{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "original_image"}</grounding>'
BAD = '<think>t</think>\n<grounding>{"bbox_2d": [0.5, 0.5, 0.5, 0.9], "source": "original_image"}</grounding>'


def test_observation_numbering_drifts_by_turn_after_an_error_as_released() -> None:
    """_async_rollout_a_request numbers Observation current_iteration + 1; observation_k still resolves by
    crop. Turns: zoom (crop 1), invalid zoom (error turn), zoom (crop 2) -> 'Action 2 ... Observation 3'."""
    turns = [
        Turn(ZOOM, "zoom", bbox=[0.1, 0.2, 0.5, 0.6], source="original_image", observation=1),
        Turn(BAD, "zoom", bbox=[0.5, 0.5, 0.5, 0.9], source="original_image", error="E"),
        Turn(ZOOM, "zoom", bbox=[0.1, 0.2, 0.5, 0.6], source="original_image", observation=2),
    ]
    chat = conversation("q", [], turns)
    assert chat[0].text == SYSTEM
    assert chat[-1].text == OBSERVATION_2.replace(VISION, "<image>") and chat[-1].images == [2]
    minio3 = conversation("q", [], turns, protocol=get_profile("minio3"))
    assert "(Observation 2)" in minio3[-1].text  # ours: numbered by crop


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        # s = sqrt(40000 / (w*h)), int() each side; then a side < 28 -> int(side * 28 / short + 1)
        ((1, 1), (200, 200)),  # s = 200
        ((5, 3), (258, 154)),  # s = 51.64: 258.2, 154.9
        ((28, 28), (200, 200)),  # s = sqrt(40000 / 784) = 7.142857: 200.0
        ((27, 29), (192, 207)),  # s = sqrt(40000 / 783) = 7.147345: 192.98, 207.27
        ((150, 100), (244, 163)),  # s = 1.63299: 244.9, 163.3 (ours rounds up: 245 x 164)
        ((199, 201), (199, 201)),  # 39999 < 40000: s = 1.0000125: 199.002, 201.003
        ((200, 200), (200, 200)),  # within range: unchanged
        ((1000, 1000), (1000, 1000)),
        ((999, 3), (10218, 54)),  # s = 6.5365: 6530.0, 19.6 -> 6530 x 19; 19 < 28: t = 28/19: 9623.2+1, 28.9+1
        ((1500, 10), (4286, 29)),  # s = 1.63299: 2449.5, 16.3 -> 2449 x 16; t = 1.75: 4286.75, 29
        ((3000, 2000), (1732, 1154)),  # s = sqrt(2e6 / 6e6) = 0.57735: 1732.05, 1154.7
        ((7680, 4320), (1885, 1060)),  # 8K: s = 0.24551: 1885.5, 1060.6
        ((2000, 11), (5393, 29)),  # s = 1.34840: 2696.8, 14.8 -> 2696 x 14; t = 2: 5393, 29
        ((20000, 101), (19900, 100)),  # s = 0.99504: 19900.9, 100.5 -> 19900 x 100 (aspect 199: kept)
        ((11, 2000), (29, 5393)),
    ],
)
def test_crop_display_sizes_follow_the_released_rule(size: tuple[int, int], shown: tuple[int, int]) -> None:
    """vllm_async_engine.py process_image (l.189-225), max 2,000,000 / min 40,000 pixels."""
    assert released_crop_size(*size) == shown


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        ((7680, 4320), (1885, 1060)),  # 8K, LANCZOS in the loader: same sqrt scaling, int()
        ((4000, 3000), (1632, 1224)),  # s = sqrt(2e6 / 12e6) = 0.40825: 1633.0 -> int 1632 (1632.99)
        ((100, 100), (200, 200)),  # upscaled to 40,000 px
        ((150, 100), (244, 163)),
        ((2000, 1000), (2000, 1000)),  # exactly 2,000,000: unchanged
        ((1000, 27), (1217, 32)),  # 27,000 px: s = 1.2172: 1217.2, 32.9 -> 32
        ((300, 10), (1095, 36)),  # s = 3.6515: 1095.4, 36.5
    ],
)
def test_first_view_sizes_follow_the_released_loader(size: tuple[int, int], shown: tuple[int, int]) -> None:
    """multimodal_dataset.py process_image (l.79-113): no 28 px step, an assert instead."""
    assert released_first_view_size(*size) == shown


@pytest.mark.parametrize("size", [(2000, 20), (200000, 5)])
def test_first_views_the_released_loader_drops_are_refused(size: tuple[int, int]) -> None:
    """(2000, 20): 40,000 px, unchanged, a side of 20 < 28; (200000, 5): 1,000,000 px, a side of 5. The
    loader's assert fails and the row is skipped; we refuse the image with a clear message."""
    with pytest.raises(ValueError, match="under 28 px"):
        released_first_view_size(*size)


def test_minio3_first_view_never_exceeds_the_cap() -> None:
    """Ours lifts the short side to 28 px: 200000 x 5 would become 1,120,000 x 28; refused, never sent."""
    with pytest.raises(ValueError, match="over the 2,000,000-pixel cap"):
        fit_pixels(200000, 5, 2_000_000, 40_000)
    assert fit_pixels(150, 100, 2_000_000, 40_000) == (245, 164)  # ours rounds up where the release truncates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # two groundings: the greedy pattern (l.523) executes the last
        (ZOOM + '<grounding>{"bbox_2d": [0.0, 0.0, 0.3, 0.3], "source": "observation_1"}</grounding>',
         Zoom((0.0, 0.0, 0.3, 0.3), "observation_1")),
        # a grounding makes the turn a tool call, even after an answer (l.682-703)
        ("<think>t</think><answer>A</answer>" + ZOOM[16:], Zoom((0.1, 0.2, 0.5, 0.6))),
        # observation_0 is matched by 'observation_([0-9]*)' and means the original (function_tools.py l.42-50)
        ('<grounding>{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "observation_0"}</grounding>',
         Zoom((0.1, 0.2, 0.5, 0.6), "original_image")),
        # no range check: the tool int-truncates and clamps (function_tools.py l.55-59), the same box as [0, 0.5, 1, 1]
        ('<grounding>{"bbox_2d": [-0.2, 0.5, 1.5, 1.0], "source": "original_image"}</grounding>',
         Zoom((-0.2, 0.5, 1.5, 1.0))),
        # no grounding: the trajectory ends; an answer only when the turn ends with </answer> (l.730)
        ("<think>t</think><answer>B</answer>", Answer("B")),
        ("<think>t</think><answer>B</answer> I hope that helps.", Void("")),
        ("<think>I am not sure yet.</think>", Void("")),
        # an observation that does not exist yet (assert, l.49)
        ('<grounding>{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "observation_3"}</grounding>',
         Malformed('Error in predicting the source observation: "observation_3".')),
        ('<grounding>{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "crop_1"}</grounding>',
         Malformed("The 'source' argument \"crop_1\" does not match the pattern 'observation_([0-9]*)'.")),
        # a failed `len(bbox_2d) == 4` assert has no message
        ('<grounding>{"bbox_2d": [0.1, 0.2, 0.5], "source": "original_image"}</grounding>', Malformed("")),
    ],
)
def test_parsing_follows_the_released_rollout(text: str, expected: object) -> None:
    got = RELEASED.parse_turn(text, num_observations=2)
    if isinstance(expected, Void):
        assert isinstance(got, Void)
    else:
        assert got == expected


def test_python_expressions_are_never_evaluated() -> None:
    """A documented difference: the release `eval`s the bbox text and would zoom on [0.25, 0.2, 0.5, 0.5]."""
    text = '<grounding>{"bbox_2d": [1/4, 0.1+0.1, 0.5, 0.5], "source": "original_image"}</grounding>'
    assert isinstance(RELEASED.parse_turn(text), Malformed)


def test_trim_ends_a_grounding_turn_at_its_first_closing_tag() -> None:
    """vLLM stops at the first '</grounding>' (ppo_trainer.yaml rollout.stop); an answer before it does not end
    the turn in the release."""
    two = ZOOM + "<grounding>{}</grounding>"
    assert RELEASED.trim_turn(two) == ZOOM
    assert RELEASED.trim_turn("<think>t</think><answer>A</answer><grounding>x</grounding>").endswith("</grounding>")
    assert RELEASED.trim_turn("<think>t</think><answer>A</answer> bye") == "<think>t</think><answer>A</answer>"


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        # function_tools.py l.62-71 on a 1000 x 500 source: int(), clamp to [0, 999] x [0, 499];
        # [0, 0, 999, 2] is 999 / 2 = 499.5 >= 200 wide
        ((0.5, 0.5, 0.5, 0.9), "The bounding box is not valid in width: [500, 250, 500, 450]"),
        ((0.1, 0.5, 0.9, 0.5001), "The bounding box is not valid in height: [100, 250, 900, 250]"),
        # x0 is clamped only below (max(x0, 0)): int(1.0 * 1000) = 1000 is printed as is
        ((1.0, 0.0, 1.0, 1.0), "The bounding box is not valid in width: [1000, 0, 999, 499]"),
        ((0.0, 0.0, 1.0, 0.004), "The absolute aspect ratio of the bounding box exceeds 200, which is too large."),
        ((float("nan"), 0.0, 1.0, 1.0), "cannot convert float NaN to integer"),
        ((0.0, 0.0, float("inf"), 1.0), "cannot convert float infinity to integer"),
    ],
)
def test_refused_boxes_get_the_released_messages(bbox: tuple[float, ...], message: str) -> None:
    assert crop_box((0, 0, 1000, 500), bbox) == message  # type: ignore[arg-type]


def test_crop_pixels_are_the_releases_crop_then_resize(tmp_path) -> None:
    """function_tools.crop_image (PIL crop, resize=1) then process_image's NEAREST resize; the first view is
    the loader's LANCZOS resize of the full decode."""
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 255, (1800, 2400, 3), dtype=np.uint8)).save(path)
    original = open_image(path)
    env = ZoomEnv(path, cache=OriginalCache())
    for bbox in [(0.1, 0.1, 0.13, 0.12), (0.0, 0.0, 1.0, 1.0), (0.3, 0.2, 0.9, 0.95), (0.5, 0.5, 0.51, 0.9)]:
        obs = env.step(Zoom(bbox))
        assert isinstance(obs, Observation)
        box = (int(bbox[0] * 2400), int(bbox[1] * 1800), min(int(bbox[2] * 2400), 2399), min(int(bbox[3] * 1800), 1799))
        crop = original.crop(box)
        expected = crop.resize(released_crop_size(*crop.size), Image.Resampling.NEAREST)
        assert np.array_equal(np.asarray(obs.image), np.asarray(expected)), bbox
    # 2400 x 1800 = 4,320,000 px: s = sqrt(2e6 / 4.32e6) = 0.680414: 1632.99 x 1224.74 -> 1632 x 1224
    expected_view = original.resize((1632, 1224), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(env.first_view().image), np.asarray(expected_view))


def test_a_source_that_does_not_exist_yet_is_refused_in_released_words(tmp_path) -> None:
    path = tmp_path / "gray.png"
    Image.new("RGB", (400, 300), (90, 90, 90)).save(path)
    env = ZoomEnv(path, cache=OriginalCache())
    result = env.step(Zoom((0, 0, 1, 1), "observation_2"))
    assert isinstance(result, ZoomError)
    assert result.message == 'Error in predicting the source observation: "observation_2".'


LOOSE_ZOOM = "<think>Too small; zoom.</think>\n<grounding>{'bbox_2d': [0.25, 0.25, 0.75, 0.75]}</grounding> ok?"
EMPTY_ZOOM = '<think>Again.</think><grounding>{"bbox_2d": [0.5, 0.5, 0.5, 0.9], "source": "original_image"}'
NESTED_ZOOM = '<think>Closer.</think><grounding>{"bbox_2d": [0.0, 0.0, 0.5, 0.5], "source": "observation_1"}'


def _scripted(answer: str):
    """Turn 0 loose JSON, turn 1 an empty box (error turn), turn 2 a zoom into observation_1, then `answer`."""

    def policy(view) -> str:
        return [LOOSE_ZOOM, EMPTY_ZOOM, NESTED_ZOOM][view.turn] if view.turn < 3 else f"<answer>{answer}</answer>"

    return policy


def test_a_synthesis_run_speaks_the_released_protocol_end_to_end(tiny_dataset, tmp_path) -> None:
    """Over a real loopback server: what the teacher is sent (texts, numbering), what is stored (canonical
    turns), what run.json and the export record."""
    import json

    from loopback_teacher import LoopbackTeacher

    from minio3_data.records import read_items
    from minio3_data.teacher_options import TeacherOptions
    from pipelines.export_llamafactory import export_run
    from pipelines.synth_coldstart import SynthConfig, synth_coldstart

    run = tmp_path / "run"
    with LoopbackTeacher(_scripted(read_items(tiny_dataset / "train.parquet")[0].answer)) as srv:
        synth_coldstart(SynthConfig(
            dataset=tiny_dataset, out=run, teacher="openai", target=None, samples_per_item=1, limit=1,
            concurrency=1, progress=False, exemplars_in_context=0,
            client=TeacherOptions(model="m", base_urls=[srv.openai_url], api_key_env="NONE", timeout=5),
        ))
        last = srv.requests[-1].view
    system, *_ = last.texts
    assert system == SYSTEM
    texts = last.texts
    error = next(t for t in texts if t.startswith("ERROR"))
    assert error == ("ERROR occurs during grounding. Error Information: The bounding box is not valid in width: "
                     f"{_empty_box(tiny_dataset)}.\n" + ERROR_FOLLOW_UP)
    third = [t for t in texts if t.startswith("After the above Action 2")]
    assert third and third[0].startswith("After the above Action 2, here is the the zoom-in image (Observation 3):\n")
    (attempt,) = [json.loads(x) for x in (run / "attempts.jsonl").read_text().splitlines()]
    assert attempt["status"] == "answered"
    stored = attempt["turns"][0]["text"]
    assert stored == ('<think>Too small; zoom.</think>\n<grounding>{"bbox_2d": [0.25, 0.25, 0.75, 0.75], '
                      '"source": "original_image"}</grounding>')  # canonical: what the released pattern reads
    assert [t["observation"] for t in attempt["turns"]] == [1, None, 2, None]
    assert json.loads((run / "run.json").read_text())["identity"]["protocol"] == "released"
    export = export_run(run, tmp_path / "sft", workers=1, progress=False)
    assert export.protocol == "released"
    record = json.loads((tmp_path / "sft" / "export.json").read_text())
    assert record["protocol"] == "released"


def _empty_box(dataset) -> list[int]:
    """[0.5, 0.5, 0.5, 0.9] on the first train item's image, by the released rule: int(v * side), clamped."""
    from minio3_data.records import read_items

    item = read_items(dataset / "train.parquet")[0]
    w, h = item.width, item.height
    return [int(0.5 * w), int(0.5 * h), int(0.5 * w), min(int(0.9 * h), h - 1)]


def test_a_turn_without_an_action_ends_a_released_attempt_as_void(tiny_dataset, tmp_path) -> None:
    import json

    from loopback_teacher import LoopbackTeacher

    from minio3_data.teacher_options import TeacherOptions
    from pipelines.synth_coldstart import SynthConfig, synth_coldstart

    def config(protocol: str) -> SynthConfig:
        return SynthConfig(
            dataset=tiny_dataset, out=tmp_path / protocol, teacher="openai", target=None, samples_per_item=1,
            limit=1, max_turns=3, concurrency=1, progress=False, exemplars_in_context=0, protocol=get_profile(protocol),
            client=TeacherOptions(model="m", base_urls=[srv.openai_url], api_key_env="NONE", timeout=5),
        )

    with LoopbackTeacher(lambda view: "<think>I cannot tell yet.</think>") as srv:
        synth_coldstart(config("released"))
        assert srv.count == 1  # the release stops at the first turn without an action
        synth_coldstart(config("minio3"))
        assert srv.count == 1 + 3  # ours answers it with an error turn, up to the turn budget
    (released,) = [json.loads(x) for x in (tmp_path / "released" / "attempts.jsonl").read_text().splitlines()]
    assert released["status"] == "void" and [t["action"] for t in released["turns"]] == ["void"]
    (ours,) = [json.loads(x) for x in (tmp_path / "minio3" / "attempts.jsonl").read_text().splitlines()]
    assert ours["status"] == "malformed" and len(ours["turns"]) == 3

_coord = st.floats(0, 1, allow_nan=False).map(lambda v: round(v, 3))


@given(st.tuples(_coord, _coord, _coord, _coord), st.integers(0, 5), st.text(max_size=40).filter(lambda t: "<" not in t))
def test_released_parse_reads_what_canonical_rendering_writes(bbox, source, think) -> None:
    """Whatever a teacher wrote, the stored (canonical) turn parses back to the same action in both profiles."""
    from minio3_data.protocol import canonical_turn, source_name

    zoom = Zoom(bbox, source_name(source))
    stored = canonical_turn(f"<think>{think}</think>", zoom)
    assert RELEASED.parse_turn(stored, num_observations=5) == zoom
    assert get_profile("minio3").parse_turn(stored, num_observations=5) == zoom


# --- the release's reading and tool, to its exception texts (vllm_async_engine.py l.520-582) -------------------
#
# process_tool_call matches ARGS on the whole turn, `eval`s group 1 as the bbox and takes group 2 as the source;
# prepare_grounding_inputs_multi_turn asserts a list of four, resolves the source, multiplies each coordinate
# by the source's side, int()s it, clamps x0/y0 below at 0 and x1/y1 above at the last pixel, and asserts the
# width and height; the error turn carries str(exception).
ARGS = r""".*<grounding>{"bbox_2d": (.*),.*"source": [',"](.*)[',"]}</grounding>"""


def grounding(args: str) -> str:
    return f"<think>Too small to read.</think>\n<grounding>{args}</grounding>"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # ARGS needs `{"bbox_2d": ` right after the tag and `"}` right before the closing tag; re.match gives
        # None and `match.group(1)` raises AttributeError
        ('{"bbox_2d":[0.1,0.2,0.5,0.6],"source":"original_image"}', "'NoneType' object has no attribute 'group'"),
        ('{"source": "original_image", "bbox_2d": [0.1, 0.2, 0.5, 0.6]}', "'NoneType' object has no attribute 'group'"),
        ('```json\n{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "original_image"}\n```',
         "'NoneType' object has no attribute 'group'"),
        ("{'bbox_2d': [0.1, 0.2, 0.5, 0.6], 'source': 'original_image'}", "'NoneType' object has no attribute 'group'"),
        ('{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "original_image" }', "'NoneType' object has no attribute 'group'"),
        ("zoom into the top left", "'NoneType' object has no attribute 'group'"),
        # an extra key after the source: group 2 runs to the last quote before `}`
        ('{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "original_image", "label": "cat"}',
         'The \'source\' argument "original_image", "label": "cat" does not match the pattern \'observation_([0-9]*)\'.'),
        # an extra key before the source: group 1 is `[...], "label": "cat"`, which eval cannot parse
        ('{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "label": "cat", "source": "original_image"}',
         "invalid syntax (<string>, line 1)"),
        # names eval cannot find: NameError
        ('{"bbox_2d": [NaN, 0.2, 0.5, 0.6], "source": "original_image"}', "name 'NaN' is not defined"),
        ('{"bbox_2d": [0.1, 0.2, true, 0.6], "source": "original_image"}', "name 'true' is not defined"),
        ('{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}', "name 'x0' is not defined"),
        # not a list of four: the assert has no message
        ('{"bbox_2d": (0.1, 0.2, 0.5, 0.6), "source": "original_image"}', ""),
        ('{"bbox_2d": [[0.1, 0.2, 0.5, 0.6]], "source": "original_image"}', ""),
        # literals eval builds and Python refuses
        ('{"bbox_2d": [{[1]: 2}, 0.2, 0.5, 0.6], "source": "original_image"}', "unhashable type: 'list'"),
        ('{"bbox_2d": [-"a", 0.2, 0.5, 0.6], "source": "original_image"}', "bad operand type for unary -: 'str'"),
    ],
)
def test_a_grounding_the_release_cannot_read_gets_its_exception_text(args: str, message: str) -> None:
    assert RELEASED.parse_turn(grounding(args), num_observations=2) == Malformed(message)
    assert RELEASED.error_text(message) == (
        f"ERROR occurs during grounding. Error Information: {message}.\n" + ERROR_FOLLOW_UP
    )


@pytest.mark.parametrize(
    ("bbox", "size", "result"),
    [
        # strings: "0" * 400 -> int 0; "1" * 400 -> a 400-digit int, clamped to 399: the whole image
        (["0", "0", "1", "1"], (400, 300), (0, 0, 399, 299)),
        # True * 400 = 400 -> 399
        ([False, False, True, True], (400, 300), (0, 0, 399, 299)),
        # "0.5" * 10 is not an integer literal
        (["0.5", 0, 1, 1], (10, 30), "invalid literal for int() with base 10: '0.50.50.50.50.50.50.50.50.50.5'"),
        # int() shows at most 200 characters of the string's repr (%.200R)
        (["0.5", 0, 1, 1], (100, 30), "invalid literal for int() with base 10: " + ("'" + "0.5" * 100)[:200]),
        # "1" * 5000 has more than int()'s 4,300 digits (Python 3.11, the release's pin)
        (["0", "0", "1", "1"], (5000, 30), "Exceeds the limit (4300 digits) for integer string conversion: "
         "value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit"),
        ([None, 0, 1, 1], (10, 30), "unsupported operand type(s) for *: 'NoneType' and 'int'"),
        ([[1], 0, 1, 1], (10, 30), "int() argument must be a string, a bytes-like object or a real number, not 'list'"),
        # 1e308 * 10 overflows to inf
        ([1e308, 0, 1, 1], (10, 30), "cannot convert float infinity to integer"),
        # x0 and y0 are clamped only below: int(1.0 * 9) = 9 stays 9 (ours used to print 8)
        ([1.0, 0.17, 0.8, 0.95], (9, 30), "The bounding box is not valid in width: [9, 5, 7, 28]"),
        # pixels written as relative coordinates: 169 * 20 = 3380, 29 * 23 = 667 (ours used to print [19, 22, 19, 22])
        ([169, 29, 1, 1], (20, 23), "The bounding box is not valid in width: [3380, 667, 19, 22]"),
    ],
)
def test_the_release_computes_with_what_the_model_wrote(bbox: list, size: tuple[int, int], result: object) -> None:
    assert crop_box((0, 0, *size), tuple(bbox), RELEASED) == result


def test_string_coordinates_zoom_through_the_whole_tool_path(tmp_path) -> None:
    """Read from the turn, stepped through ZoomEnv: the release crops the whole image where ours refused."""
    path = tmp_path / "gray.png"
    Image.new("RGB", (400, 300), (90, 90, 90)).save(path)
    action = RELEASED.parse_turn(grounding('{"bbox_2d": ["0", "0", "1", "1"], "source": "original_image"}'))
    assert action == Zoom(("0", "0", "1", "1"))
    obs = ZoomEnv(path, cache=OriginalCache()).step(action)
    assert isinstance(obs, Observation) and obs.box == (0, 0, 399, 299)
    assert action.numbers() == [0.0, 0.0, 1.0, 1.0]  # what a record stores; its replay gives the same box


def test_expressions_and_calls_are_the_documented_no_eval_difference() -> None:
    text = grounding('{"bbox_2d": [__import__("os").getpid(), 0.2, 0.5, 0.6], "source": "original_image"}')
    action = RELEASED.parse_turn(text)
    assert isinstance(action, Malformed) and action.reason.startswith("minio3 does not evaluate the expression")


def check(condition: bool, message: str = "") -> None:
    """The release's `assert` (pytest rewrites this file's own asserts, which would change their messages)."""
    if not condition:
        raise AssertionError(message)


def release_reply(text: str, size: tuple[int, int]) -> tuple[int, ...] | str:
    """The release's reading and tool written out from the rules above, with Python's own `eval` on the fixed
    literal strings of this file: the box on the original (the only image so far), or str(exception)."""
    import re

    try:
        m = re.match(ARGS, text, re.DOTALL)
        value, source = eval(m.group(1)), m.group(2)  # noqa: S307 - only this file's fixed strings
        check(isinstance(value, list) and len(value) == 4)
        if source != "original_image":
            match = re.match("observation_([0-9]*)", source, re.DOTALL)
            try:
                index = int(match.group(1))
            except Exception:
                raise ValueError(f"The 'source' argument \"{source}\" does not match the pattern 'observation_([0-9]*)'.")
            check(index < 1, f'Error in predicting the source observation: "{source}".')
        w, h = size
        scaled = (value[0] * w, value[1] * h, value[2] * w, value[3] * h)
        box = [int(scaled[0]), int(scaled[1]), int(scaled[2]), int(scaled[3])]
        box = [max(box[0], 0), max(box[1], 0), min(box[2], w - 1), min(box[3], h - 1)]
        check(box[0] <= box[2] - 1, f"The bounding box is not valid in width: {box}")
        check(box[1] <= box[3] - 1, f"The bounding box is not valid in height: {box}")
        bw, bh = box[2] - box[0], box[3] - box[1]
        if bw / bh >= 200 or bh / bw >= 200:
            raise ValueError("The absolute aspect ratio of the bounding box exceeds 200, which is too large.")
        return tuple(box)
    except Exception as e:
        return str(e)


DIFFERENTIAL = [
    '{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "original_image"}',
    '{"bbox_2d":  [0.1, 0.2, 0.5, 0.6], "source": \'original_image\'}',
    '{"bbox_2d": [1, 0, 0, 1], "source": "original_image"}',
    '{"bbox_2d": [-3, -0.5, 2, 7], "source": "original_image"}',
    '{"bbox_2d": [0.5, 0.5, 0.5004, 0.9], "source": "original_image"}',
    '{"bbox_2d": [0.0, 0.0, 1.0, 0.001], "source": "original_image"}',
    '{"bbox_2d": ["0", "0", "1", "1"], "source": "original_image"}',
    '{"bbox_2d": ["1", "0", "1", "1"], "source": "original_image"}',
    '{"bbox_2d": ["00", "0", "12", "1"], "source": "original_image"}',
    '{"bbox_2d": [b"0", 0, 1, 1], "source": "original_image"}',
    '{"bbox_2d": [True, False, True, True], "source": "original_image"}',
    '{"bbox_2d": [1e999, 0, 1, 1], "source": "original_image"}',
    '{"bbox_2d": [1j, 0, 1, 1], "source": "original_image"}',
    '{"bbox_2d": [None, {}, 1, 1], "source": "original_image"}',
    '{"bbox_2d": [0, (0,), 1, 1], "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1, 1, 1], "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1], 1], "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1, 1], "extra": 1, "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1, 1], "source": "original_image",}',
    '{"bbox_2d": [0.1, 0.2, 0.5, 0.6, "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1, ...], "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1, {1, 2}], "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1, ~1], "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1, not 0], "source": "original_image"}',
    '{"bbox_2d": [\t0, 0, 1, 1], "source": "original_image"}',
    '{"bbox_2d": [0x1, 0, 1, 1_0], "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1, 1]\n, "source": "original_image"}',
    '{"bbox_2d": [0, 0, 1, 1], "source": "original_image"}</grounding> and <grounding>{"bbox_2d": [0, 0, 0.5, 0.5]',
]


@pytest.mark.parametrize("args", DIFFERENTIAL)
@pytest.mark.parametrize("size", [(640, 480), (7, 3000)])
def test_reading_and_tool_agree_with_the_release_written_out(args: str, size: tuple[int, int]) -> None:
    text = grounding(args)
    expected = release_reply(text, size)
    action = RELEASED.parse_turn(text, num_observations=0)
    got = action.reason if isinstance(action, Malformed) else crop_box((0, 0, *size), action.bbox, RELEASED)
    assert got == expected


def test_a_crop_the_release_resizes_twice_is_resized_twice(tmp_path) -> None:
    """process_image resizes after each step that fires: a 2700 x 14 crop is 37,800 px < 40,000, so
    s = sqrt(40000 / 37800) = 1.028689: 2777.46 x 14.40 -> 2777 x 14; then 14 < 28, t = 28 / 14 = 2:
    int(2777 * 2 + 1) x int(14 * 2 + 1) = 5555 x 29, NEAREST each time."""
    assert released_crop_steps(2700, 14) == [(2777, 14), (5555, 29)]
    rng = np.random.default_rng(1)
    path = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 255, (100, 3000, 3), dtype=np.uint8)).save(path)
    obs = ZoomEnv(path, cache=OriginalCache()).step(Zoom((0.0, 0.1, 0.9, 0.24)))  # 0..2700 x 10..24
    assert isinstance(obs, Observation) and obs.box == (0, 10, 2700, 24) and obs.size == (5555, 29)
    crop = open_image(path).crop(obs.box)
    twice = crop.resize((2777, 14), Image.Resampling.NEAREST).resize((5555, 29), Image.Resampling.NEAREST)
    assert np.array_equal(np.asarray(obs.image), np.asarray(twice))
    once = crop.resize((5555, 29), Image.Resampling.NEAREST)
    assert not np.array_equal(np.asarray(once), np.asarray(twice))  # what a single resize would have shown


def test_teachers_are_read_tolerantly_in_synthesis_only() -> None:
    """for_teachers: the documented tolerant reading (loose JSON read, stored canonical); eval and RL read
    as the release does and keep the model's bytes."""
    compact = grounding('{"bbox_2d":[0.1,0.2,0.5,0.6],"source":"original_image"}')
    teachers = RELEASED.for_teachers()
    zoom = teachers.parse_turn(compact)
    assert zoom == Zoom((0.1, 0.2, 0.5, 0.6))
    assert teachers.stored_turn(compact, zoom) == (
        '<think>Too small to read.</think>\n<grounding>{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "original_image"}'
        "</grounding>"
    )
    assert RELEASED.parse_turn(teachers.stored_turn(compact, zoom)) == zoom  # canonical text reads strictly
    assert RELEASED.parse_turn(compact) == Malformed("'NoneType' object has no attribute 'group'")
    spaced = grounding('{"bbox_2d": [0.10, 0.2, 0.5, 0.6], "source": "original_image"}')
    assert RELEASED.stored_turn(spaced, RELEASED.parse_turn(spaced)) == spaced  # the bytes, 0.10 included
    assert isinstance(teachers.parse_turn(grounding('{"bbox_2d": ["0", "0", "1", "1"]}')), Malformed)


def test_an_eval_reads_and_answers_as_the_release(tmp_path) -> None:
    """Over a real loopback server: a compact grounding gets the release's exception text, string coordinates
    crop the whole image (Observation 2 after Action 1: the release's numbering), and the policy's own bytes
    stay in its context."""
    from loopback_teacher import LoopbackTeacher

    from minio3_data.records import ProbeItem, read_trajectories, write_items
    from minio3_data.teacher_options import TeacherOptions
    from pipelines.eval import eval_config, evaluate

    (tmp_path / "data" / "images").mkdir(parents=True)
    Image.new("RGB", (640, 480), (200, 40, 40)).save(tmp_path / "data" / "images" / "a.jpg")
    write_items(tmp_path / "data" / "test.parquet", [ProbeItem("kite", "images/a.jpg", "What colour is the kite?",
                                                               "red", width=640, height=480)])  # fmt: skip
    turns = [
        grounding('{"bbox_2d":[0.1,0.2,0.5,0.6],"source":"original_image"}'),
        grounding('{"bbox_2d": ["0", "0", "1", "1"], "source": "original_image"}'),
        "<think>It is red.</think>\n<answer>red</answer>",
    ]
    with LoopbackTeacher(lambda view: turns[view.turn]) as srv:
        client = TeacherOptions(model="policy", base_urls=[srv.openai_url], api_key_env="NONE", timeout=5.0)
        evaluate(eval_config(tmp_path / "data", tmp_path / "eval", budgets=[4], k=1, teacher="openai",
                             progress=False, concurrency=1, client=client))  # fmt: skip
        last = srv.requests[-1].view
    texts = last.texts
    assert "ERROR occurs during grounding. Error Information: 'NoneType' object has no attribute 'group'.\n" + (
        ERROR_FOLLOW_UP) in texts
    assert any(t.startswith("After the above Action 1, here is the the zoom-in image (Observation 2):") for t in texts)
    assert turns[0] in texts and turns[1] in texts  # the model's bytes, not a canonical rewrite
    (traj,) = read_trajectories(tmp_path / "eval" / "trajectories.parquet")
    assert [t.box_px for t in traj.turns] == [None, [0, 0, 639, 479], None]
    assert traj.final_answer == "red"
