"""The zoom tool's call arguments and what a finished rollout's assistant turns say, in the protocol's terms.

verl hands a tool call from the parser to the tool as a JSON object, so the profile's parsed action crosses
that boundary in one of two shapes, defined here once: a zoom (`{"bbox_2d": [...], "source": "..."}`, the
canonical grounding arguments) or a refused grounding (`{"error": "<message the model is shown>"}`).
No verl import here: the benchmark and the reward use it without the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minio3_data import released
from minio3_data.profiles import ProtocolProfile
from minio3_data.protocol import Action, Answer, Malformed, Zoom

ZOOM_TOOL = "zoom"  # the one tool name the parser emits and the agent loop executes
ERROR_KEY = "error"
GROUNDING_OPEN = "<grounding>"


def to_arguments(action: Zoom | Malformed) -> dict[str, Any]:
    """The tool-call arguments of a zoom or of a refused grounding."""
    if isinstance(action, Zoom):
        return {"bbox_2d": list(action.bbox), "source": action.source}
    return {ERROR_KEY: action.reason}


def from_arguments(arguments: dict[str, Any]) -> Zoom | Malformed:
    """The action the parser encoded with `to_arguments` (anything else is a refused grounding)."""
    if ERROR_KEY in arguments:
        return Malformed(str(arguments[ERROR_KEY]))
    bbox, source = arguments.get("bbox_2d"), arguments.get("source")
    if not isinstance(bbox, list) or len(bbox) != 4 or not isinstance(source, str):
        return Malformed(f"unreadable zoom arguments {arguments!r}")
    return Zoom((float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])), source)


def needs_tool(action: Action) -> bool:
    """Whether a parsed turn continues the trajectory through the tool: a zoom, or a refused action that the
    profile answers with an error turn. An answer and a void turn end the trajectory."""
    return isinstance(action, (Zoom, Malformed))


def tries_to_zoom(action: Action, text: str) -> bool:
    """Whether a turn asks for a zoom, well-formed or not: the release's test for over-turn at the last turn
    and at the image cap is "the turn holds a <grounding>". A minio3-profile turn with no action at all is
    refused (an error turn), but it asked for nothing, so it is not an over-turn."""
    return isinstance(action, Zoom) or (isinstance(action, Malformed) and GROUNDING_OPEN in text)


def first_answer(turns: Sequence[str], profile: ProtocolProfile) -> str | None:
    """The first `<answer>` across a trajectory's assistant turns, each cut where generation would have ended it.

    `released`: the release's reward extraction (general_qa_tool, extract_answer_tags="strict"): the turns
    joined with a space, the first `<answer>(.*?)</answer>` span anywhere, even in a turn that zoomed or
    ended void. `minio3`: the first turn the profile reads as an answer (tags quoted inside a thought skipped).
    """
    trimmed = [profile.trim_turn(text) for text in turns]
    if profile.name == "released":
        m = released.FIRST_ANSWER_RE.search(" ".join(trimmed))
        return m.group(1).strip() if m else None
    for text in trimmed:
        action = profile.parse_turn(text)
        if isinstance(action, Answer):
            return action.text
    return None
