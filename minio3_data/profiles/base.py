"""The ProtocolProfile: every rule in which the conventions of a model and its zoom tool differ, as one object.

A profile is resolved once, where its name comes in (a CLI option, or the `protocol` field of a record: run.json,
export.json, a parquet row, the verl config), and passed down as this object. Code outside this package asks
the object and never compares its name. A profile owns:
  - its texts: the system prompt, the observation turn and its numbering, the error turn;
  - how a turn is read: where it ends (`trim_turn`), what it asks for (`parse_turn`), how strictly
    (`for_teachers`: the reading synthesis applies to a teacher), and what of it is stored (`stored_turn`);
  - the zoom tool's rules: which image a zoom names (`source_index`), the integer box it names there or why it
    is refused (`box_on_source`), and how images are shown (`display`: sizes, resampling, pixel bounds);
  - its stop strings, and the first answer of a trajectory as its reward reads it (`first_answer`);
  - how a peer's release runs its loop where it differs from Mini-o3's (all defaulted to Mini-o3's): the first
    user turn (`question_turn`), which image a crop is cut from (`crops_first_view`), whether a refused
    action ends the trajectory (`refusal_ends`), whether a turn without an action is dropped and generated
    again (`void_retries`), and the release's own judge (`peer_judge`, for `minio3 eval --judge-rule peer`).
Only zoom.py composes boxes across crops; only display.py resizes pixels.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from ..display import DisplayRule, PixelBox
from ..peer_judge import PeerJudgeRule
from ..protocol import IMAGE_PLACEHOLDER, STOP_STRINGS, Action, Answer, Zoom, canonical_turn, question_text
from .frame import RELATIVE, Frame


@dataclass(frozen=True)
class ReleaseLimits:
    """The generation limits a profile's release was evaluated with: `minio3 eval`'s defaults in that profile.
    The Mini-o3 release's: 8,192 new tokens per turn in a 32,768-token context, and a turn is not started with
    less than 2,000 tokens of room left."""

    turn_tokens: int = 8192
    context_tokens: int = 32768
    context_reserve: int = 2000


# the stages a profile can be spoken in: eval samples a policy; synth writes data in it for a student; export
# renders that data; rl rolls the policy out in verl; exemplars renders the exemplars in it
ALL_STAGES = frozenset({"eval", "exemplars", "synth", "export", "rl"})
EVAL_ONLY = frozenset({"eval"})  # a peer's convention: we evaluate its checkpoints; its data and RL are its own


@dataclass(frozen=True)
class ProtocolProfile(ABC):
    """One protocol. A profile module subclasses it, fills the fields and defines `PROFILE`."""

    name: str  # what records store
    summary: str  # one line for --help
    system_prompt: str
    observation_template: str  # {action}, {observation}, {image}
    error_template: str  # {message}
    display: DisplayRule
    stop_strings: tuple[str, ...] = STOP_STRINGS
    limits: ReleaseLimits = ReleaseLimits()
    frame: Frame = RELATIVE  # how its boxes are written; the parsed action is always canonical (frame.py)
    crops_first_view: bool = False  # crops are cut from the displayed first view (box_px in its pixels)
    refusal_ends: bool = False  # a malformed turn or refused zoom ends the trajectory instead of an error turn
    void_retries: bool = False  # a turn without an action is left out of the context and generated again
    peer_judge: PeerJudgeRule | None = None  # the release's own answer scoring, where it has one
    stages: frozenset[str] = ALL_STAGES  # the stages that speak it (a peer's convention: eval only)

    def question_turn(self, question: str, options: Sequence[str]) -> str:
        """The first user turn's text, IMAGE_PLACEHOLDER where the first view goes."""
        return f"{IMAGE_PLACEHOLDER}\n{question_text(question, list(options))}"

    def observation_number(self, action_index: int, crop_index: int) -> int:
        """The number the observation turn shows for the crop made by zoom `action_index`: the crop's own."""
        return crop_index

    def observation_parts(
        self, action_index: int, crop_index: int, size: tuple[int, int] = (0, 0)
    ) -> tuple[str, str]:
        """Text before and after the observation image in the user turn that follows zoom `action_index`; a
        template may name the crop's displayed `size` as {width} and {height} (Pixel-Reasoner does)."""
        before, after = self.observation_template.split("{image}")
        shown = self.observation_number(action_index, crop_index)
        return before.format(action=action_index, observation=shown, width=size[0], height=size[1]), after

    def observation_text(
        self, action_index: int, crop_index: int, placeholder: str = IMAGE_PLACEHOLDER, size: tuple[int, int] = (0, 0)
    ) -> str:
        before, after = self.observation_parts(action_index, crop_index, size)
        return before + placeholder + after

    def error_text(self, message: str) -> str:
        """The user turn that answers a refused action."""
        return self.error_template.format(message=message)

    @abstractmethod
    def trim_turn(self, text: str) -> str:
        """The turn as generation would have ended it: stop string restored, text after the action dropped."""

    @abstractmethod
    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        """Zoom | Answer | Malformed | Void. Never raises, never evaluates code. `num_observations` (crops so
        far) lets the parser refuse a source that does not exist yet."""

    def source_index(self, source: str, num_observations: int) -> int | str:
        """The crop index an existing `source` names (0: the original), or the message the model is shown."""
        try:
            return self.existing_source(source, num_observations)
        except ValueError as e:
            return str(e)

    def existing_source(self, source: str, num_observations: int | None) -> int:
        """source_index, raising ValueError with the message; `num_observations` None checks the name only."""
        index = self.resolve_source(source)
        if num_observations is not None and index > num_observations:
            raise ValueError(self.missing_source(source, num_observations))
        return index

    @abstractmethod
    def resolve_source(self, source: str) -> int:
        """The observation a `source` names (0: the original); ValueError with the message for a bad name."""

    @abstractmethod
    def missing_source(self, source: str, num_observations: int) -> str:
        """The message for a `source` that does not exist yet."""

    @abstractmethod
    def box_on_source(self, bbox: tuple, size: tuple[int, int]) -> PixelBox | str:
        """The integer box a zoom's `bbox` (as `parse_turn` read it) names on a source of `size` pixels, or the
        message that tells the model why it is refused."""

    def for_teachers(self) -> ProtocolProfile:
        """The profile as synthesis reads a teacher; the same profile unless it documents a tolerant reading."""
        return self

    def stored_turn(self, text: str, action: Zoom | Answer) -> str:
        """What a trajectory stores of an accepted turn: the canonical rendering, so a student learns only the
        form its rollout reads."""
        return canonical_turn(text, action)

    def in_words(self, text: str, action: Zoom | Answer) -> str:
        """A turn written elsewhere with the canonical relative box (an exemplar, the scripted teacher) as a model
        speaking this profile writes it: the same text, unless the profile writes boxes in another frame."""
        return text

    def first_answer(self, turns: Sequence[str]) -> str | None:
        """The first answer across a trajectory's assistant turns, each cut where generation would end it."""
        for text in turns:
            action = self.parse_turn(self.trim_turn(text))
            if isinstance(action, Answer):
                return action.text
        return None
