"""One attempt: the teacher thinks and zooms turn by turn on one item until it answers or hits a limit.

The loop never touches pixels itself: ZoomEnv executes the zoom (in a worker thread, so hundreds of
attempts share one event loop), the protocol parses and renders, and the reply cache makes every paid
teacher turn replayable after a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError, Minio3Error
from minio3_data.families import DEFAULT as DEFAULT_FAMILY
from minio3_data.families import ModelFamily
from minio3_data.fsutil import safe_relpath
from minio3_data.images import OriginalCache, image_size
from minio3_data.judge import Judge
from minio3_data.profiles import ProtocolProfile
from minio3_data.protocol import Answer, Malformed, Void, Zoom
from minio3_data.records import ProbeItem, Trajectory, Turn, Usage, Verdict, field_values
from minio3_data.render import conversation, to_teacher_messages
from minio3_data.row_rules import row_problems
from minio3_data.store import RunStore
from minio3_data.teachers import TeacherFailure
from minio3_data.teachers.base import GenerationConfig, ImageRef, Message, Reply, Speaker, Teacher
from minio3_data.teachers.limits import estimate_prompt_tokens
from minio3_data.zoom import Observation, ZoomEnv, ZoomError

from .ablation import Shown
from .prompt import ExemplarPrompts, hash_messages, hash_text
from .seeding import attempt_seed

Prepare = Callable[[ImageRef], None]


@dataclass
class AttemptState:
    """What an attempt has done and paid so far; the runner records it even when the attempt fails."""

    paid_turns: int = 0  # leading turns whose usage an earlier failed line of this attempt already counts
    exemplar_ids: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    seed: int = 0


def _to_ref(obs: Observation, prepare: Prepare) -> ImageRef:
    """Encode once and build the teacher's wire form (in a worker thread); only bytes stay alive, never
    the decoded display image."""
    ref = ImageRef(obs.jpeg(), "image/jpeg", *obs.size)
    prepare(ref)
    return ref


def _execute(
    env: ZoomEnv, zoom: Zoom, prepare: Prepare, shown: Shown | None
) -> tuple[Observation | ZoomError, ImageRef | None]:
    """The zoom's crop (or why it was refused) and the image the policy is shown of it: the crop, or what an
    ablation shows instead."""
    result = env.step(zoom)
    if not isinstance(result, Observation):
        return result, None
    return result, _to_ref(shown(result) if shown else result, prepare)


class FirstViews:
    """The encoded first view of each item, shared by its concurrent samples and dropped after the last."""

    def __init__(self) -> None:
        self._refs: dict[str, tuple[asyncio.Task[ImageRef], int]] = {}

    async def acquire(self, item_id: str, env: ZoomEnv, prepare: Prepare) -> ImageRef:
        task, users = self._refs.get(item_id, (None, 0))
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(_to_ref, env.first_view(), prepare))
        self._refs[item_id] = (task, users + 1)
        return await task

    def release(self, item_id: str) -> None:
        task, users = self._refs[item_id]
        if users <= 1:
            del self._refs[item_id]
        else:
            self._refs[item_id] = (task, users - 1)


@dataclass
class AttemptContext:
    """Everything attempts share within a run."""

    dataset_dir: Path
    teacher: Teacher
    judge: Judge
    prompts: ExemplarPrompts
    profile: ProtocolProfile
    cache: OriginalCache
    store: RunStore
    replies: dict[str, dict[str, Any]]  # reply cache loaded at resume
    seed: int
    max_turns: int
    max_images: int
    context_tokens: int
    context_reserve: int  # the room a request leaves in the context for the next turn
    gen: GenerationConfig
    cache_replies: bool = True
    family: ModelFamily = DEFAULT_FAMILY  # the student's: images in the context budget count as its processor counts them
    cache_hits: int = 0
    first_views: FirstViews = field(default_factory=FirstViews)
    sources: dict[str, tuple[Path, tuple[int, int]]] = field(default_factory=dict)  # item id -> image path, size
    shown: Shown | None = None  # an ablation: what the policy is shown instead of each crop


def _own_messages(
    ctx: AttemptContext, item: ProbeItem, turns: list[Turn], extras: list[dict[str, Any]], refs: list[ImageRef]
) -> list[Message]:
    """The attempt's own conversation in the run's protocol; assistant turns carry their provider state
    (Gemini thought signatures)."""
    chat = conversation(item.question, item.options, turns, protocol=ctx.profile)
    messages = to_teacher_messages(chat[1:], refs)
    for message, extra in zip((m for m in messages if m.role == "assistant"), extras):
        message.extra = extra
    return messages


def turn_generation(gen: GenerationConfig, room: int) -> GenerationConfig:
    """A turn's generation settings: its new tokens cut to the `room` the context has left (our estimate is an
    upper bound, so a server checking prompt + max_tokens against its max model length never refuses it)."""
    return gen if gen.max_tokens <= room else replace(gen, max_tokens=room)


def _reply_key(
    attempt_id: str, turn: int, teacher: str, seed: int, gen: GenerationConfig, messages: list[Message]
) -> str:
    """Identifies a request by all it asks: every message (system prompt and exemplars included, images by
    hash) and how (the teacher and its model, the generation settings, the attempt's seed); a reply is
    replayed only for the very request it answered."""
    h = hashlib.sha1()
    hash_text(h, json.dumps([teacher, seed, field_values(gen)], sort_keys=True))
    hash_messages(h, messages)
    return f"{attempt_id}@{turn}:{h.hexdigest()[:16]}"


async def _generate(
    ctx: AttemptContext, teacher: Speaker, key: str | None, messages: list[Message], gen: GenerationConfig,
    counted: bool,
) -> Reply:
    """Ask the teacher, or replay its already-paid reply for free; `key` is None when replies are not cached.
    A replayed reply brings its usage unless it is `counted` already (by an earlier failed line of the
    attempt), so every paid request is counted once in the run's stats, even across kills."""
    if key is None:
        return await teacher.generate(messages, gen)
    if key in ctx.replies:
        r = ctx.replies[key]
        ctx.cache_hits += 1
        return Reply(r["text"], Usage() if counted else Usage(**r["usage"]), r["finish_reason"], r.get("extra") or {})
    reply = await teacher.generate(messages, gen)
    rec = {"key": key, "text": reply.text, "usage": field_values(reply.usage), "finish_reason": reply.finish_reason,
           "extra": reply.extra}
    ctx.store.add_reply(rec)
    ctx.replies[key] = rec
    return reply


def _environment(ctx: AttemptContext, item: ProbeItem) -> ZoomEnv:
    """A fresh ZoomEnv on the item's image; its path is checked and its header read once per item, and the
    row checked against it (a row whose size or box does not fit its image fails the attempt, naming why)."""
    source = ctx.sources.get(item.id)
    if source is None:
        path = safe_relpath(ctx.dataset_dir, item.image, f"item {item.id}: image")
        size = image_size(path)
        problems = row_problems(item, size)
        if problems:
            raise BadInputError(f"item {item.id}: {'; '.join(problems)}")
        source = ctx.sources[item.id] = (path, size)
    return ZoomEnv(source[0], cache=ctx.cache, protocol=ctx.profile, size=source[1])


async def run_attempt(ctx: AttemptContext, item: ProbeItem, sample_index: int, state: AttemptState) -> Trajectory:
    """Play one attempt to its end, keeping what it did in `state`. Teacher/budget exceptions propagate;
    the runner records them, with `state`, as a failed attempt."""
    env = _environment(ctx, item)
    try:
        first = await ctx.first_views.acquire(item.id, env, ctx.teacher.prepare_image)
        return await _play(ctx, item, sample_index, env, first, state)
    finally:
        ctx.first_views.release(item.id)


async def _play(
    ctx: AttemptContext, item: ProbeItem, sample_index: int, env: ZoomEnv, first: ImageRef, state: AttemptState
) -> Trajectory:
    seed = state.seed = attempt_seed(ctx.seed, item.id, sample_index)
    rng = random.Random(seed)
    exemplar_ids, prefix = ctx.prompts.sample(rng)
    state.exemplar_ids = exemplar_ids
    teacher = ctx.teacher.bind(item, seed)
    attempt_id = f"{item.id}#{sample_index}"
    refs = [first]
    prefix_tokens = estimate_prompt_tokens(prefix, ctx.family)
    turns, usage = state.turns, state.usage
    extras: list[dict[str, Any]] = []
    status = "over_turn"
    for t in range(ctx.max_turns):
        own = _own_messages(ctx, item, turns, extras, refs)
        room = ctx.context_tokens - prefix_tokens - estimate_prompt_tokens(own, ctx.family)
        if room < ctx.context_reserve:
            status = "over_turn"  # context budget, as the released rollout does
            break
        gen = turn_generation(ctx.gen, room)
        request = prefix + own
        key = _reply_key(attempt_id, t, teacher.name, seed, gen, request) if ctx.cache_replies else None
        try:
            reply = await _generate(ctx, teacher, key, request, gen, counted=t < state.paid_turns)
        except TeacherFailure as e:
            usage.requests += e.requests  # sent, maybe paid, and failed: still counted
            raise
        usage.add(reply.usage)
        extras.append(reply.extra)
        text = ctx.profile.trim_turn(reply.text)
        action = ctx.profile.parse_turn(text, num_observations=len(refs) - 1)
        if isinstance(action, Void):
            turns.append(Turn(text, "void"))
            if ctx.profile.void_retries:  # generated again; the turn counts against the budget
                status = "over_turn"
                continue
            status = "void"  # the released rollout ends here
            break
        if isinstance(action, Malformed):
            turns.append(Turn(text, "malformed", error=action.reason))
            status = "malformed"
            if ctx.profile.refusal_ends:
                break
            continue
        text = ctx.profile.stored_turn(text, action)  # what the student learns: the form its rollout reads
        if isinstance(action, Answer):
            turns.append(Turn(text, "answer", answer=action.text))
            status = "answered"
            break
        assert isinstance(action, Zoom)
        turn = Turn(text, "zoom", bbox=action.numbers(), source=action.source)
        turns.append(turn)
        if t == ctx.max_turns - 1 or len(refs) >= ctx.max_images:
            status = "over_turn"  # a zoom on the last allowed turn or past the image cap is never executed
            break
        result, ref = await asyncio.to_thread(_execute, env, action, ctx.teacher.prepare_image, ctx.shown)
        if isinstance(result, Observation) and ref is not None:
            turn.box_px = list(result.box)
            turn.observation = result.index
            refs.append(ref)
        else:
            turn.error = result.message
            if ctx.profile.refusal_ends:
                status = "malformed"
                break
        status = "over_turn"
    final = next((tn.answer for tn in turns if tn.action == "answer"), None)
    verdict = Verdict("unjudged", "no answer")
    if status == "answered" and final is not None:
        verdict = await ctx.judge.judge(item.question, final, item.answer, item.options)
    return _record(
        item, sample_index, teacher.name, exemplar_ids=exemplar_ids, turns=turns, final_answer=final,
        verdict=verdict, status=status, num_turns=len(turns), usage=usage, seed=seed,
    )


def _record(item: ProbeItem, sample_index: int, teacher_name: str, **outcome: Any) -> Trajectory:
    """A Trajectory: what the item says about itself plus what the attempt made of it."""
    return Trajectory(
        id=f"{item.id}#{sample_index}",
        item_id=item.id,
        sample_index=sample_index,
        teacher=teacher_name,
        question=item.question,
        options=list(item.options),
        ground_truth=item.answer,
        image=item.image,
        width=item.width,
        height=item.height,
        difficulty=item.difficulty,
        **outcome,
    )


def failed_attempt(
    item: ProbeItem, sample_index: int, teacher_name: str, state: AttemptState, error: Minio3Error | str
) -> Trajectory:
    """The record of an attempt that could not finish (endpoint down, budget, bad image), with the turns it
    took and the usage it paid; retried on resume, where its paid turns replay from the reply cache."""
    return _record(
        item, sample_index, teacher_name, exemplar_ids=state.exemplar_ids, turns=state.turns, final_answer=None,
        verdict=Verdict("unjudged", "failed"), status="failed", num_turns=len(state.turns), usage=state.usage,
        seed=state.seed, error=str(error),
    )
