"""A ground-truth-guided teacher for offline runs, demos and tests (never training data).

It knows the item's `target_bbox` and answer, plans an exemplar-shaped search (depth-first, trial-and-error
or goal maintenance) and then plays it turn by turn through the real protocol and ZoomEnv. A configurable
error rate gives wrong final answers and malformed turns, so the correctness filter and error turns get
exercised. Every record it produces says `teacher=scripted:...`. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import BadInputError
from ..exemplars import SEARCH_PATTERNS
from ..profiles import DEFAULT, ProtocolProfile
from ..protocol import OPTION_LETTERS, Answer, Zoom, render_turn, source_name
from ..records import ProbeItem, Usage
from ..zoom import to_relative
from .base import GenerationConfig, ImageRef, Message, Reply
from .spending import SpendingCap

PlanBox = tuple[float, float, float, float]  # a planned zoom region: xyxy original pixels, unrounded


@dataclass
class Step:
    think: str
    box: PlanBox | None = None  # zoom target in original pixels; None for the answer
    source: int = 0  # observation index to zoom from (its planned box is the frame)
    answer: str | None = None
    malformed: bool = False


def _clip(box: PlanBox, w: int, h: int) -> PlanBox:
    x0, y0, x1, y1 = box
    return (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))


def _window(center: tuple[float, float], size: tuple[float, float], w: int, h: int) -> PlanBox:
    """A size-(sw, sh) window around `center`, shifted (not shrunk) to stay inside the image."""
    sw, sh = min(size[0], w), min(size[1], h)
    x0 = min(max(0.0, center[0] - sw / 2), w - sw)
    y0 = min(max(0.0, center[1] - sh / 2), h - sh)
    return (x0, y0, x0 + sw, y0 + sh)


def _pad(box: PlanBox, factor: float, min_side: float, w: int, h: int) -> PlanBox:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    sw = max(min_side, (box[2] - box[0]) * factor)
    sh = max(min_side, (box[3] - box[1]) * factor)
    return _window((cx, cy), (sw, sh), w, h)


def _overlaps(a: PlanBox, b: PlanBox) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _where(box: PlanBox, w: int, h: int) -> str:
    cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
    row = "upper" if cy < 1 / 3 else "lower" if cy > 2 / 3 else "middle"
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "center"
    return "center" if (row, col) == ("middle", "center") else f"{row} {col}".replace("middle ", "")


def _wrong_answer(item: ProbeItem, rng: random.Random) -> str:
    if item.options:
        letters = [OPTION_LETTERS[i] for i in range(len(item.options)) if OPTION_LETTERS[i] != item.answer.strip()]
        return rng.choice(letters) if letters else item.answer + "?"
    try:
        return str(int(item.answer.strip()) + rng.choice((-1, 1)))
    except ValueError:
        return rng.choice(["unclear", "none", "red", "7", "square"]) if item.answer.strip() else "none"


class ScriptedTeacher:
    """Factory: `bind(item, seed)` gives the per-attempt teacher that plays one planned search."""

    def __init__(self, error_rate: float = 0.15, malformed_rate: float = 0.05, profile: ProtocolProfile = DEFAULT) -> None:
        self.profile = profile  # whose words (its coordinate frame) the zooms are written in
        self.error_rate = error_rate
        self.malformed_rate = malformed_rate
        self.name = "scripted:guided"
        self.budget = SpendingCap()  # free: never capped

    def prepare_image(self, ref: ImageRef) -> None:
        """Images go nowhere: the plan knows the target."""

    def bind(self, item: ProbeItem, seed: int) -> ScriptedAttempt:
        if item.target_bbox is None:
            raise BadInputError(
                f"item {item.id}: the scripted teacher needs target_bbox; build the dataset with "
                "--source synthetic or coco, or use an API teacher"
            )
        return ScriptedAttempt(self, item, random.Random(seed))

    async def generate(self, messages: list[Message], config: GenerationConfig) -> Reply:
        raise RuntimeError("ScriptedTeacher must be bound to an item with bind(item, seed)")

    async def aclose(self) -> None:
        return None


class ScriptedAttempt:
    """One attempt: a fixed plan, replayed one assistant turn per `generate` call."""

    def __init__(self, parent: ScriptedTeacher, item: ProbeItem, rng: random.Random) -> None:
        self.item = item
        self.rng = rng
        self.pattern = rng.choice(SEARCH_PATTERNS)
        self.name = f"scripted:{self.pattern}"
        self.wrong = rng.random() < parent.error_rate
        self.profile = parent.profile
        self.plan = self._plan()
        if rng.random() < parent.malformed_rate:
            at = rng.randrange(len(self.plan))
            self.plan.insert(at, Step("Let me zoom in on that area.", malformed=True))
        self.frames: dict[int, PlanBox] = {0: (0.0, 0.0, float(item.width), float(item.height))}
        self.next_step = 0
        self.pending_box: PlanBox | None = None  # the last zoom, until we know if it became an observation

    def _plan(self) -> list[Step]:
        it, rng = self.item, self.rng
        w, h = it.width, it.height
        t: PlanBox = tuple(it.target_bbox)  # type: ignore[assignment]
        tw, th = t[2] - t[0], t[3] - t[1]
        centre = ((t[0] + t[2]) / 2, (t[1] + t[3]) / 2)
        region_size = (max(tw * 6, w * rng.uniform(0.2, 0.35)), max(th * 6, h * rng.uniform(0.2, 0.35)))
        jitter = (rng.uniform(-0.25, 0.25) * region_size[0], rng.uniform(-0.25, 0.25) * region_size[1])
        region = _window((centre[0] + jitter[0], centre[1] + jitter[1]), region_size, w, h)
        if not (region[0] <= t[0] and region[1] <= t[1] and region[2] >= t[2] and region[3] >= t[3]):
            region = _window(centre, region_size, w, h)
        close = _pad(t, rng.uniform(1.6, 2.6), 56, w, h)
        where = _where(t, w, h)
        answer = _wrong_answer(it, rng) if self.wrong else it.answer
        q = it.question.rstrip("?.")
        finish = Step(
            rng.choice(
                [
                    f"Now the detail is clear at this zoom level, so I can answer: {q}.",
                    "The zoomed view shows the object clearly; I checked it against the question before answering.",
                    "This close-up settles it. The object matches the description in the question.",
                ]
            ),
            answer=answer,
        )
        if self.pattern == "depth_first":
            return [
                Step(
                    f"The question asks: {q}. The objects are tiny in the full view. The {where} part of the "
                    "image looks the most promising, so I will zoom into that region first.",
                    region,
                    0,
                ),
                Step(
                    "This region contains several small objects. The one that may match is still too small to "
                    "read, so I zoom further inside this observation.",
                    close,
                    1,
                ),
                finish,
            ]
        decoy = self._decoy(region_size, t, w, h)
        if self.pattern == "trial_and_error":
            return [
                Step(
                    f"I need to find the object the question refers to ({q}). I will start by checking the "
                    f"{_where(decoy, w, h)} area.",
                    decoy,
                    0,
                ),
                Step(
                    "The target is not in this region: nothing here matches the description. I will go back to "
                    f"the original image and try the {where} area instead.",
                    region,
                    0,
                ),
                Step("Something that could be the target is visible here. Let me zoom in closer to confirm.", close, 2),
                finish,
            ]
        return [
            Step(
                f"Keeping the question in mind ({q}), I first zoom into the {where} area where similar objects "
                "cluster.",
                region,
                0,
            ),
            Step(
                "There are look-alike objects here. Before answering I want to inspect the candidate in the "
                "middle more closely.",
                _pad(decoy, 1.0, 56, w, h) if _overlaps(decoy, region) else close,
                0,
            ),
            Step(
                "I have to make sure this is the exact object described, not one of the look-alikes. "
                "I will zoom onto the candidate that fits the description to verify.",
                close,
                0,
            ),
            finish,
        ]

    def _decoy(self, size: tuple[float, float], target: PlanBox, w: int, h: int) -> PlanBox:
        """A region of the same size that does not contain the target (best of a few random tries)."""
        best = _window((self.rng.uniform(0, w), self.rng.uniform(0, h)), size, w, h)
        for _ in range(20):
            if not _overlaps(best, target):
                break
            best = _window((self.rng.uniform(0, w), self.rng.uniform(0, h)), size, w, h)
        return best

    def _observe(self, messages: list[Message]) -> None:
        """Learn from the last user turn whether the previous zoom produced an observation."""
        if self.pending_box is None or not messages:
            return
        if "ERROR" not in messages[-1].text[:80]:
            self.frames[len(self.frames)] = self.pending_box
        self.pending_box = None

    async def generate(self, messages: list[Message], config: GenerationConfig) -> Reply:
        self._observe(messages)
        if self.next_step >= len(self.plan):
            step = self.plan[-1]
        else:
            step = self.plan[self.next_step]
            self.next_step += 1
        if step.malformed:
            text = f'<think>{step.think}</think>\n<grounding>{{"bbox_2d": [0.2, 0.3, 0.6], "source": "original_image"}}'
        elif step.answer is not None:
            text = render_turn(step.think, Answer(step.answer))
        else:
            src = min(step.source, len(self.frames) - 1)
            frame = self.frames[src]
            rel = to_relative(step.box, frame)
            self.pending_box = _clip(step.box, self.item.width, self.item.height)
            zoom = Zoom(rel, source_name(src))
            text = self.profile.in_words(render_turn(step.think, zoom), zoom)
            text = text[: -len("</grounding>")]  # as an API would return it: the stop string cut off
        usage = Usage(prompt_tokens=0, completion_tokens=len(text) // 4, requests=1)
        return Reply(text=text, usage=usage, finish_reason="stop")

    async def aclose(self) -> None:
        return None
