"""The action language and the `minio3` profile's reading: what real models write parses, what must be rejected
is, render/parse round-trip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minio3_data.profiles import get_profile
from minio3_data.profiles.minio3 import COORD_TOLERANCE, SYSTEM_PROMPT
from minio3_data.protocol import (
    Answer,
    Malformed,
    Zoom,
    extract_think,
    question_text,
    render_turn,
    restore_stop,
    source_index,
    source_name,
    trim_turn,
)

parse_turn = get_profile("minio3").parse_turn

BOX = (0.1, 0.2, 0.3, 0.4)


def grounding(args: str, think: str = "The sign is small; zoom in.") -> str:
    return f"<think>{think}</think>\n<grounding>{args}</grounding>"


@pytest.mark.parametrize(
    "text, expected",
    [
        # canonical
        (grounding('{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "original_image"}'), Zoom(BOX)),
        # no spaces, key order swapped
        (grounding('{"source":"original_image","bbox_2d":[0.1,0.2,0.3,0.4]}'), Zoom(BOX)),
        # single quotes (Python literal)
        (
            grounding("{'bbox_2d': [0.1, 0.2, 0.3, 0.4], 'source': 'observation_1'}"),
            Zoom(BOX, "observation_1"),
        ),
        # integer coordinates
        (grounding('{"bbox_2d": [0, 0, 1, 1], "source": "original_image"}'), Zoom((0.0, 0.0, 1.0, 1.0))),
        # newlines and indentation inside the object
        (
            grounding(
                '{\n  "bbox_2d": [\n    0.1, 0.2,\n    0.3, 0.4\n  ],\n  "source": "original_image"\n}'
            ),
            Zoom(BOX),
        ),
        # trailing comma
        (grounding("{'bbox_2d': [0.1, 0.2, 0.3, 0.4], 'source': 'original_image',}"), Zoom(BOX)),
        # source missing: the original
        (grounding('{"bbox_2d": [0.1, 0.2, 0.3, 0.4]}'), Zoom(BOX)),
        # extra keys are ignored
        (
            grounding('{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "label": "sign", "source": "original_image"}'),
            Zoom(BOX),
        ),
        # the object wrapped in a one-element list
        (grounding('[{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "original_image"}]'), Zoom(BOX)),
        # a markdown code fence around the JSON
        (
            grounding('```json\n{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "observation_2"}\n```'),
            Zoom(BOX, "observation_2"),
        ),
        # no braces at all
        (grounding('"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "original_image"'), Zoom(BOX)),
        # exponent notation and a tuple
        (grounding("{'bbox_2d': (1e-1, 2e-1, 3e-1, 4e-1), 'source': 'original_image'}"), Zoom(BOX)),
        # sloppy source spelling: case and padding; zero-padded observation numbers are normalised
        (
            grounding('{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": " Observation_02 "}'),
            Zoom(BOX, "observation_2"),
        ),
        # within tolerance of [0, 1]: clamped
        (grounding('{"bbox_2d": [-0.01, 0.2, 1.015, 0.4]}'), Zoom((0.0, 0.2, 1.0, 0.4))),
        # the API dropped the stop string
        (
            '<think>zoom</think><grounding>{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "original_image"}',
            Zoom(BOX),
        ),
        ("<think>It is red.</think> <answer>B", Answer("B")),
        # text around the tags
        (
            'Sure! <think>look</think> Here: <grounding>{"bbox_2d": [0.1, 0.2, 0.3, 0.4]}</grounding> done',
            Zoom(BOX),
        ),
        # no think at all
        ("<answer> (C) a red umbrella </answer>", Answer("(C) a red umbrella")),
        ("<think>x</think><answer>line one\nline two</answer>", Answer("line one\nline two")),
        # tags merely mentioned inside the thought are skipped
        (
            (
                "<think>I will answer with <answer>A</answer> after I zoom by writing <grounding>.</think>"
                '<grounding>{"bbox_2d": [0.1, 0.2, 0.3, 0.4]}</grounding>'
            ),
            Zoom(BOX),
        ),
        # an action written inside the thought is still found when nothing follows it
        ('<think>zoom: <grounding>{"bbox_2d": [0.1, 0.2, 0.3, 0.4]}</grounding></think>', Zoom(BOX)),
    ],
)
def test_accepts_what_models_write(text: str, expected: object) -> None:
    assert parse_turn(text, num_observations=2) == expected


@pytest.mark.parametrize(
    "args, reason",
    [
        ('{"bbox_2d": [nan, 0.2, 0.3, 0.4]}', "non-finite"),
        ('{"bbox_2d": [NaN, 0.2, 0.3, 0.4]}', "non-finite"),
        ('{"bbox_2d": [0.1, inf, 0.3, 0.4]}', "non-finite"),
        ('{"bbox_2d": [0.1, 0.2, Infinity, 0.4]}', "non-finite"),
        ('{"bbox_2d": [0.1, 0.2, 0.3, -Infinity]}', "non-finite"),
        ('{"bbox_2d": [0.1, 0.2, 0.3, 1e999]}', "non-finite"),
        ("{'bbox_2d': [float('nan'), 0.2, 0.3, 0.4]}", "four numbers"),
        ('{"bbox_2d": [0.1, 0.2, 0.3]}', "four numbers"),
        ('{"bbox_2d": [0.1, 0.2, 0.3, 0.4, 0.5]}', "four numbers"),
        ('{"bbox_2d": [[0.1, 0.2, 0.3, 0.4]]}', "four numbers"),
        ('{"bbox_2d": ["0.1", "0.2", "0.3", "0.4"]}', "four numbers"),
        ('{"bbox_2d": [true, 0.2, 0.3, 0.4]}', "four numbers"),
        ('{"bbox_2d": []}', "four numbers"),
        ('{"bbox_2d": 0.5}', "four numbers"),
        ('{"bbox_2d": [120, 40, 560, 300], "source": "original_image"}', "outside [0, 1]"),
        (f'{{"bbox_2d": [0.1, 0.2, {1 + 2 * COORD_TOLERANCE}, 0.4]}}', "outside [0, 1]"),
        ('{"bbox_2d": [-0.5, 0.2, 0.3, 0.4]}', "outside [0, 1]"),
        ('{"bbox_2d": [1' + "0" * 400 + ", 0.2, 0.3, 0.4]}", "outside [0, 1]"),
        ('{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "observation_3"}', "does not exist"),
        ('{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "observation_0"}', "unknown source"),
        ('{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "crop_1"}', "unknown source"),
        ('{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": 1}', "source must be"),
        ('{"box": [0.1, 0.2, 0.3, 0.4]}', "bbox_2d"),
        ("zoom into the top left", "cannot read"),
        ("", "cannot read"),
        ('{"bbox_2d": [__import__("os").system("touch /tmp/pwned"), 0.2, 0.3, 0.4]}', "four numbers"),
        ("__import__('os').system('touch /tmp/pwned')", "cannot read"),
    ],
)
def test_rejects_with_a_reason(args: str, reason: str) -> None:
    action = parse_turn(grounding(args), num_observations=2)
    assert isinstance(action, Malformed), action
    assert reason in action.reason


def test_never_evaluates_code(tmp_path) -> None:
    marker = tmp_path / "pwned"
    for payload in (
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        f"{{'bbox_2d': [__import__('pathlib').Path({str(marker)!r}).touch(), 0, 1, 1]}}",
    ):
        assert isinstance(parse_turn(grounding(payload)), Malformed)
    assert not marker.exists()


def test_huge_or_deep_input_is_malformed_not_a_crash() -> None:
    assert isinstance(parse_turn(grounding("[" * 100_000 + "]" * 100_000)), Malformed)
    assert isinstance(parse_turn(grounding('{"bbox_2d": [' + "9" * 5000 + ", 0, 1, 1]}")), Malformed)


def test_no_action_is_malformed() -> None:
    assert isinstance(parse_turn("<think>I need to look closer.</think>"), Malformed)
    assert isinstance(parse_turn("The answer is B."), Malformed)


def test_unknown_observation_only_checked_when_count_given() -> None:
    text = grounding('{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "source": "observation_5"}')
    assert parse_turn(text) == Zoom(BOX, "observation_5")
    assert isinstance(parse_turn(text, num_observations=4), Malformed)
    assert parse_turn(text, num_observations=5) == Zoom(BOX, "observation_5")


def test_both_actions_first_closing_tag_wins() -> None:
    zoom = '<grounding>{"bbox_2d": [0.1, 0.2, 0.3, 0.4]}</grounding>'
    assert parse_turn(f"<think>t</think>{zoom}<answer>A</answer>") == Zoom(BOX)
    assert parse_turn(f"<think>t</think><answer>A</answer>{zoom}") == Answer("A")
    # an unclosed grounding after an answer is not completed: the answer closed first
    assert parse_turn('<think>t</think><answer>A</answer><grounding>{"bbox_2d": [0.1') == Answer("A")
    # two zooms: the first one
    second = zoom.replace("0.1", "0.5")
    assert parse_turn(f"<think>t</think>{zoom}{second}") == Zoom(BOX)


def test_trim_turn_drops_text_after_the_action() -> None:
    text = '<think>t</think><grounding>{"bbox_2d": [0.1, 0.2, 0.3, 0.4]}</grounding>\n<answer>A</answer> bye'
    trimmed = trim_turn(text)
    assert trimmed.endswith("</grounding>") and "<answer>" not in trimmed
    assert parse_turn(trimmed) == parse_turn(text)
    assert trim_turn("<think>t</think><answer>B") == "<think>t</think><answer>B</answer>"


def test_restore_stop() -> None:
    assert (
        restore_stop('<grounding>{"bbox_2d": [0, 0, 1, 1]}  ')
        == '<grounding>{"bbox_2d": [0, 0, 1, 1]}</grounding>'
    )
    assert restore_stop("<answer>A") == "<answer>A</answer>"
    done = "<think>x</think><answer>A</answer>"
    assert restore_stop(done) == done


def test_sources() -> None:
    assert source_index("original_image") == 0
    assert source_index("observation_12") == 12
    assert source_name(0) == "original_image" and source_name(3) == "observation_3"
    for bad in ("observation_0", "observation_", "observation_-1", "image", "Observation_1"):
        with pytest.raises(ValueError):
            source_index(bad)


def test_templates_keep_the_released_structure() -> None:
    for tag in (
        "<think>",
        "</think>",
        "<grounding>",
        "</grounding>",
        "<answer>",
        "</answer>",
        '"bbox_2d"',
        "observation_i",
    ):
        assert tag in SYSTEM_PROMPT
    assert "original_image" in SYSTEM_PROMPT and "1.0" in SYSTEM_PROMPT
    minio3 = get_profile("minio3")
    text = minio3.observation_text(0, 1)
    assert text.startswith("After the above Action 0, here is the zoom-in image (Observation 1):\n<image>.\n")
    before, after = minio3.observation_parts(3, 2)
    assert before.endswith("(Observation 2):\n") and after.startswith(".\n") and "Action 3" in before
    err = minio3.error_text("the box is 0x5 pixels.")
    assert err.startswith("ERROR occurs during grounding. Error Information: the box is 0x5 pixels.\n")
    assert "<think>" in err


def test_question_text() -> None:
    assert question_text("What colour is the kite?") == "What colour is the kite?"
    q = question_text("What colour is the kite?", ["red", "blue"])
    assert q.splitlines() == [
        "What colour is the kite?",
        "Options:",
        "A. red",
        "B. blue",
        "Answer with the option's letter.",
    ]


# --- property tests: parse(render(x)) == x ------------------------------------------------------------

prose = st.text(st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=60)
coords = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
zooms = st.builds(
    lambda b, k: Zoom(tuple(b), source_name(k)), st.lists(coords, min_size=4, max_size=4), st.integers(0, 50)
)
answers = st.builds(Answer, prose.map(str.strip))


@given(think=prose, action=st.one_of(zooms, answers))
def test_parse_inverts_render(think: str, action: Zoom | Answer) -> None:
    text = render_turn(think, action)
    assert parse_turn(text) == action
    assert extract_think(text) == think.strip()


@given(think=prose, zoom=zooms)
def test_parse_inverts_render_without_stop_string(think: str, zoom: Zoom) -> None:
    """APIs cut the stop string; the parser restores it."""
    text = render_turn(think, zoom).removesuffix("</grounding>")
    assert parse_turn(text) == zoom


@given(st.text(max_size=300))
def test_parser_never_raises(text: str) -> None:
    assert isinstance(parse_turn(text, num_observations=3), (Zoom, Answer, Malformed))


@given(
    st.text(alphabet=st.sampled_from(list("<>{}[]()\"',:.-0123456789 nafiNIbox_2dsurcegtw/")), max_size=120)
)
def test_parser_never_raises_on_tag_soup(text: str) -> None:
    wrapped = f"<grounding>{text}</grounding>"
    action = parse_turn(wrapped, num_observations=3)
    assert isinstance(action, (Zoom, Answer, Malformed))
    if isinstance(action, Zoom):
        assert all(0.0 <= v <= 1.0 for v in action.bbox)


def test_profiles_travel_to_worker_processes() -> None:
    """Export and viewer workers receive the profile pickled: each profile, and its reading for teachers, as is."""
    import pickle

    from minio3_data.profiles import PROFILES

    for profile in PROFILES.values():
        for variant in (profile, profile.for_teachers()):
            assert pickle.loads(pickle.dumps(variant)) == variant


def test_an_unknown_profile_is_one_line_naming_the_choices() -> None:
    from minio3_data.errors import BadInputError

    from minio3_data.profiles import PROFILES

    names = ", ".join(PROFILES)  # every discovered profile, the default first
    assert names.startswith("released, ")
    with pytest.raises(BadInputError, match=rf"^run.json: protocol 'v2': use one of {re.escape(names)}$"):
        get_profile("v2", "run.json: protocol")


@pytest.mark.parametrize(("stage", "command"), [
    ("synth", ["synth-coldstart", "--dataset", "DATA", "--out", "OUT"]),
    ("export", ["export-llamafactory", "--run", "DATA", "--out", "OUT"]),
    ("exemplars", ["exemplars", "check", "--out", "OUT"]),
])  # fmt: skip
def test_a_peer_convention_is_refused_outside_eval_in_one_line(stage: str, command: list[str], tmp_path: Path) -> None:
    """A peer's convention is for evaluating its checkpoints: a stage that would write data in it (or roll a
    policy out in it) refuses it at once, naming the stages it is for, before reading anything."""
    from typer.testing import CliRunner

    from cli import app

    args = [str(tmp_path / a) if a in ("DATA", "OUT") else a for a in command]
    res = CliRunner().invoke(app, [*args, "--protocol", "deepeyes"])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == (
        f"error: --protocol 'deepeyes': this convention is for eval only, not {stage} (docs/conventions.md says "
        f"why); {stage} speaks released, minio3, minio3-1000"
    )
    assert not (tmp_path / "OUT").exists()
