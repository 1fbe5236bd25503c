"""The zoom tool's call arguments, and what a turn asks for, in the protocol profile's terms.

verl hands a tool call from the parser to the tool as a JSON object. Ours carries the turn's text
(`{"turn": "..."}`), which the tool reads again with the trajectory's profile: whatever the profile keeps of a
zoom (in `released`, any literal the model wrote, computed with as the release does) reaches the tool whole,
with no encoding of our own in between. No verl import here: the benchmark uses it without the engine.
"""

from __future__ import annotations

from typing import Any

from minio3_data.protocol import Action, Malformed, Zoom

ZOOM_TOOL = "zoom"  # the one tool name the parser emits and the agent loop executes
TURN_KEY = "turn"
GROUNDING_OPEN = "<grounding>"


def to_arguments(text: str) -> dict[str, str]:
    """The tool-call arguments for a turn that needs the tool."""
    return {TURN_KEY: text}


def from_arguments(arguments: dict[str, Any]) -> str:
    """The turn the parser put in the arguments ("" when there is none: the profile refuses it as no action)."""
    text = arguments.get(TURN_KEY)
    return text if isinstance(text, str) else ""


def needs_tool(action: Action) -> bool:
    """Whether a parsed turn continues the trajectory through the tool: a zoom, or a refused action that the
    profile answers with an error turn. An answer and a void turn end the trajectory."""
    return isinstance(action, (Zoom, Malformed))


def tries_to_zoom(action: Action, text: str) -> bool:
    """Whether a turn asks for a zoom, well-formed or not: the release's test for over-turn at the last turn
    and at the image cap is "the turn holds a <grounding>". A minio3-profile turn with no action at all is
    refused (an error turn), but it asked for nothing, so it is not an over-turn."""
    return isinstance(action, Zoom) or (isinstance(action, Malformed) and GROUNDING_OPEN in text)
