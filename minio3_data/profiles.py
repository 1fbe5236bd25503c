"""Protocol profiles: the exact language a run speaks to its model, named and recorded with the data.

  - `released` (the default everywhere): the released Mini-o3 rollout byte for byte where it reaches a
    model: its system prompt, observation and error turns (typos included), observation numbering by
    turn, first-view and crop pixel rules, which grounding of a turn runs, and a turn without an action
    ending the trajectory. Data and evaluations made with it are drop-in for the released checkpoints.
  - `minio3`: our cleaned-up version: clearer prompts, observations numbered by crop (no drift after an
    error turn), a turn without an action answered with an error turn, out-of-range coordinates refused,
    display sizes rounded up, and a first view never over the pixel cap.
docs/protocol.md lists every difference and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import protocol, released
from .display import MAX_ASPECT
from .errors import BadInputError
from .protocol import IMAGE_PLACEHOLDER, Action, Answer, Malformed, Void, Zoom

PROFILE_NAMES = ("released", "minio3")
DEFAULT_PROFILE = "released"


@dataclass(frozen=True)
class ProtocolProfile:
    """One protocol: its texts, how a turn is read, and how the zoom tool answers. This base class is the
    `minio3` profile; `ReleasedProfile` overrides what the release does differently."""

    name: str
    system_prompt: str
    observation_template: str  # {action}, {observation}, {image}
    error_template: str  # {message}

    @property
    def resize(self) -> str:
        """The display-size rule set (display.RESIZE_MODES) of this profile."""
        return self.name

    def observation_number(self, action_index: int, crop_index: int) -> int:
        """The number the observation turn shows for the crop made by zoom `action_index`."""
        return crop_index

    def observation_parts(self, action_index: int, crop_index: int) -> tuple[str, str]:
        """Text before and after the observation image in the user turn that follows zoom `action_index`."""
        before, after = self.observation_template.split("{image}")
        shown = self.observation_number(action_index, crop_index)
        return before.format(action=action_index, observation=shown), after

    def observation_text(self, action_index: int, crop_index: int, placeholder: str = IMAGE_PLACEHOLDER) -> str:
        before, after = self.observation_parts(action_index, crop_index)
        return before + placeholder + after

    def error_text(self, message: str) -> str:
        return self.error_template.format(message=message.rstrip("."))

    def trim_turn(self, text: str) -> str:
        """The turn as generation would have ended it: stop string restored, text after the action dropped."""
        return protocol.trim_turn(text)

    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        """Zoom | Answer | Malformed | Void. Never raises, never evaluates code. `num_observations` (crops
        so far) lets the parser reject a source that does not exist yet."""
        return protocol.parse_turn(text, num_observations)

    def source_index(self, source: str, num_observations: int) -> int | str:
        """The crop index an existing `source` names, or the message the model is shown."""
        try:
            index = protocol.source_index(source)
        except ValueError as e:
            return str(e)
        if index > num_observations:
            return f"{source} does not exist yet; there are {num_observations} observation(s)"
        return index

    def box_error(self, bbox: tuple[float, ...], box: list[int], size: tuple[int, int]) -> str | None:
        """Why a zoom is refused, or None: `bbox` as written, `box` its clamped int box on a `size` source."""
        if not all(math.isfinite(v) for v in bbox):
            return "bbox_2d holds a non-finite number; use four numbers between 0 and 1"
        cw, ch = box[2] - box[0], box[3] - box[1]
        if cw < 1 or ch < 1:
            return (
                f"the box {list(bbox)} is {max(cw, 0)}x{max(ch, 0)} pixels on the {size[0]}x{size[1]} source; x1 "
                "must be greater than x0 and y1 greater than y0, with (x0, y0) the top-left corner"
            )
        if max(cw / ch, ch / cw) >= MAX_ASPECT:
            return (
                f"the box {list(bbox)} is {cw}x{ch} pixels, an aspect ratio of {max(cw / ch, ch / cw):.0f}; "
                f"it must stay below {MAX_ASPECT}, so make the region less elongated"
            )
        return None


class ReleasedProfile(ProtocolProfile):
    """The released rollout's behaviour (see released.py for the files and lines it follows)."""

    def observation_number(self, action_index: int, crop_index: int) -> int:
        """By turn, t + 1: after an error turn it no longer equals the crop `observation_k` resolves to."""
        return action_index + 1

    def error_text(self, message: str) -> str:
        """The message's own final period stays (a message ending in "." gives "..": the release's bytes)."""
        return self.error_template.format(message=message)

    def trim_turn(self, text: str) -> str:
        """A turn with a grounding ends at its first `</grounding>` (vLLM's stop string), whatever came
        before; any other turn at its first `</answer>` (our teachers' stop string)."""
        text = protocol.restore_stop(text)
        tag = "</grounding>" if "<grounding>" in text else "</answer>"
        end = text.find(tag)
        return text[: end + len(tag)] if end >= 0 else text

    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        """A turn with a grounding is a zoom by its last grounding; else an answer when it ends with
        `</answer>`; else void (the trajectory ends)."""
        text = protocol.restore_stop(text)
        groundings = released.GROUNDING_RE.findall(text)
        if not groundings:
            answer = released.FIRST_ANSWER_RE.search(text)
            if answer is not None and released.ANSWER_AT_END_RE.match(text):
                return Answer(answer.group(1).strip())
            return Void("no <grounding> and no final <answer>: the turn ends the trajectory")
        try:
            return _released_zoom(protocol.load_args(groundings[-1]), num_observations)
        except ValueError as e:
            return Malformed(str(e))

    def source_index(self, source: str, num_observations: int) -> int | str:
        try:
            index = released.source_index(source)
        except ValueError as e:
            return str(e)
        return released.NO_SUCH_SOURCE.format(source=source) if index > num_observations else index

    def box_error(self, bbox: tuple[float, ...], box: list[int], size: tuple[int, int]) -> str | None:
        for v in bbox:
            if (message := released.int_error(v)) is not None:
                return message
        cw, ch = box[2] - box[0], box[3] - box[1]
        if cw < 1:
            return released.BAD_WIDTH.format(box=box)
        if ch < 1:
            return released.BAD_HEIGHT.format(box=box)
        return released.BAD_ASPECT if max(cw / ch, ch / cw) >= MAX_ASPECT else None


def _released_zoom(args: object, num_observations: int | None) -> Zoom:
    """The release's argument checks (function_tools.py l.30-49): a failed assert says nothing (its message
    is empty), a bad source names the pattern. Finite coordinates are clamped to [0, 1], which cuts the very
    box the release's int-truncate-then-clamp cuts; nan and inf stay, for the zoom tool to refuse."""
    if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
        args = args[0]
    if not isinstance(args, dict) or not isinstance(args.get("bbox_2d"), list) or len(args["bbox_2d"]) != 4:
        raise ValueError("")
    source = args.get("source", protocol.ORIGINAL)
    if not isinstance(source, str):
        raise ValueError("")
    coords = args["bbox_2d"]
    if not all(isinstance(v, (int, float)) for v in coords):
        raise ValueError(protocol._ARITY)
    index = released.source_index(source)
    if num_observations is not None and index > num_observations:
        raise ValueError(released.NO_SUCH_SOURCE.format(source=source))
    x0, y0, x1, y1 = (_clamped(v) for v in coords)
    return Zoom((x0, y0, x1, y1), protocol.source_name(index))


def _clamped(value: int | float) -> float:
    try:
        v = float(value)
    except OverflowError:  # an integer too large for a float: as far outside [0, 1] as infinity
        return 1.0 if value > 0 else 0.0
    return min(1.0, max(0.0, v)) if math.isfinite(v) else v


PROFILES: dict[str, ProtocolProfile] = {
    "released": ReleasedProfile(
        "released", released.SYSTEM_PROMPT, released.OBSERVATION_TEMPLATE, released.ERROR_TEMPLATE
    ),
    "minio3": ProtocolProfile(
        "minio3", protocol.SYSTEM_PROMPT, protocol.OBSERVATION_TEMPLATE, protocol.ERROR_TEMPLATE
    ),
}


def get_profile(name: str | ProtocolProfile = DEFAULT_PROFILE) -> ProtocolProfile:
    """The profile called `name`; a one-line error naming the choices for another name."""
    if isinstance(name, ProtocolProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise BadInputError(f"--protocol {name!r}: use {' or '.join(PROFILE_NAMES)}") from None


__all__ = ["DEFAULT_PROFILE", "PROFILES", "PROFILE_NAMES", "ProtocolProfile", "ReleasedProfile", "get_profile"]
