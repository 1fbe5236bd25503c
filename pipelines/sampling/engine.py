"""`sample`: play every attempt of a run its run dir does not hold yet, and ask the judge again about every answer
it did not decide (`rejudge`), on one event loop.

A pool of `--concurrency` workers pulls (item, sample) pairs; every finished attempt is appended to attempts.jsonl
at once, and whatever the caller builds from the run (a kept set, scores) is rebuilt from the whole log, so a
resumed run ends exactly where an uninterrupted one would. The caller holds the run dir's claim (`claim_output`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from minio3_data import __version__
from minio3_data.errors import BadInputError, Minio3Error, StorageError
from minio3_data.exclusions import exclusion_summary, write_exclusions
from minio3_data.images import OriginalCache
from minio3_data.judge import Judge, make_judge, peer_judge
from minio3_data.records import ProbeItem, Trajectory, Usage
from minio3_data.store import RunState, RunStore, write_run_json
from minio3_data.teachers import BudgetExhausted, GuardedTeacher, Teacher, TeacherUnavailable, make_teacher
from minio3_data.teachers.base import GenerationConfig
from minio3_data.teachers.scripted import ScriptedTeacher

from .ablation import ablation
from .attempt import AttemptContext, AttemptState, failed_attempt, run_attempt
from .config import SynthConfig
from .items import run_items
from .outcome import SamplingOutcome
from .progress import Progress
from .prompt import ExemplarPrompts
from .rejudge import rejudge, undecided
from .run_dir import check_run_json
from .usage import judge_reply

MEDIA_DIR = "media"  # --image-transport file: every image sent, once, by content hash


@dataclass(frozen=True)
class Stage:
    """Who samples: the stage its exclusions name, its progress bar's label and count, its report file."""

    name: str
    bar: str
    counted: str
    report: str


SYNTHESIS = Stage("synth-coldstart", "synth", "kept", "stats.json")


@dataclass
class Sampled:
    """What one sampling pass left in its run dir: the items, every attempt (the last line per item and
    sample, in key order), and how this invocation went. Synthesis curates it; evaluation scores it."""

    items: list[ProbeItem]
    attempts: list[Trajectory]
    state: RunState
    outcome: SamplingOutcome
    continued: int = 0  # finished attempts this invocation played on (`reopen`)

    def report(self) -> dict:
        """The facts about the pass that stats.json (and an evaluation's results.json) record."""
        return {"stopped": self.outcome.stopped, "replayed_turns": self.outcome.cache_hits,
                "damaged_lines": [dataclasses.asdict(d) for d in self.state.damaged],
                "excluded": exclusion_summary(self.outcome.skipped)}


def _pending(state: RunState, key: tuple[str, int]) -> bool:
    """An attempt to play, or a finished one whose answer the judge is asked about again."""
    return not state.done(key) or undecided(state.attempts[key])


def _make_teacher(cfg: SynthConfig, notify: Callable[[str], None]) -> Teacher:
    if cfg.teacher == "scripted":
        return ScriptedTeacher(error_rate=cfg.error_rate, profile=cfg.protocol)
    image_dir = Path(cfg.out) / MEDIA_DIR if cfg.image_transport == "file" else None
    return make_teacher(cfg.teacher, cfg.client, notify=notify, image_dir=image_dir)


def _make_judge(cfg: SynthConfig, teacher: Teacher, store: RunStore, replies: dict[str, dict]) -> Judge:
    """The judge goes to --judge-base-url, else to its provider's API (OpenAI's, Google's): never to the
    teacher's server unless named, where a judge model would be asked of a server that may not have it. It
    takes the teacher's key variable only on the teacher's endpoints and the teacher's prices only for the
    teacher's model there. It shares the teacher's spending cap (and, on the same endpoints, its rate limiter
    and breakers); each judgement's usage is logged (`judge_reply`) for stats to count and price."""
    if cfg.judge == "rule":
        return make_judge("rule")
    kind, _, model = cfg.judge.partition(":")
    teachers_server = kind == cfg.teacher and cfg.judge_base_urls == cfg.client.base_urls
    teachers_model = teachers_server and model == cfg.client.model

    def record(usage: Usage) -> None:
        line = judge_reply(usage, cfg.judge)
        store.add_reply(line)
        replies[line["key"]] = line

    return make_judge(
        cfg.judge,
        cfg.client,
        share_with=teacher if isinstance(teacher, GuardedTeacher) else None,
        on_usage=record,
        base_urls=cfg.judge_base_urls,
        api_key_env=cfg.judge_api_key_env or (cfg.client.api_key_env if teachers_server else None),
        price_input=cfg.client.price_input if teachers_model else None,
        price_output=cfg.client.price_output if teachers_model else None,
        notify=tqdm.write,
    )


def _with_rule(cfg: SynthConfig, judge: Judge) -> Judge:
    """The run's judge, or with --judge-rule peer the protocol's release scoring asking it (validate() refuses
    a peer rule for a protocol without one)."""
    rule = cfg.protocol.peer_judge
    return judge if cfg.judge_rule == "ours" or rule is None else peer_judge(rule, judge)


async def _run(
    cfg: SynthConfig, items: list[ProbeItem], prompts: ExemplarPrompts, store: RunStore, state: RunState,
    progress: Progress,
) -> tuple[str | None, int, str | None]:
    """Play every pending attempt and judge every undecided answer again; (why it stopped early, turns replayed
    from the cache, a crash or None). A failed write (a full disk) stops the run and is raised once the workers
    have stopped."""
    cache = OriginalCache()
    teacher = _make_teacher(cfg, notify=tqdm.write)
    ctx = AttemptContext(
        dataset_dir=Path(cfg.dataset),
        teacher=teacher,
        judge=_with_rule(cfg, _make_judge(cfg, teacher, store, state.replies)),
        prompts=prompts,
        profile=cfg.protocol,
        cache=cache,
        store=store,
        replies=state.replies,
        seed=cfg.seed,
        max_turns=cfg.max_turns,
        max_images=cfg.max_images,
        context_tokens=cfg.context_tokens,
        context_reserve=cfg.reserve,
        shown=ablation(cfg.ablate),
        family=cfg.model_family,
        gen=GenerationConfig(stop=list(cfg.protocol.stop_strings), max_tokens=cfg.max_tokens, temperature=cfg.temperature),
        cache_replies=cfg.teacher != "scripted",  # the scripted teacher is free and replays itself
    )
    # before anything else is written into the run dir (file transport's media/)
    write_run_json(cfg.out, cfg.identity(prompts.digest()), __version__)
    for ref in ctx.prompts.images():  # the shared exemplar images, once
        teacher.prepare_image(ref)
    progress.start()
    stop = asyncio.Event()
    reason: list[str] = []
    crashed: list[str] = []
    storage: list[StorageError] = []

    def halt(why: str) -> None:
        if not stop.is_set():
            reason.append(why)
            stop.set()

    work: Iterator[tuple[ProbeItem, int]] = (
        (it, s) for it in items for s in range(cfg.samples_per_item) if _pending(state, (it.id, s))
    )

    async def worker() -> None:
        for item, s in work:
            if stop.is_set():
                return
            try:
                await play(item, s)
            except StorageError as e:  # the disk, not the attempt: recording a failed attempt would fail too
                storage.append(e)
                halt(str(e))
                return

    async def play(item: ProbeItem, s: int) -> None:
        """One attempt, or one finished attempt's judgement again, recorded as it ends; a failed write
        propagates: it stops the run, not the attempt."""
        key = (item.id, s)
        earlier = state.attempts[key] if state.done(key) else None  # its answer is judged again, nothing else
        attempt = AttemptState(paid_turns=state.paid_turns(key))

        def gave_up(error: Minio3Error | str) -> Trajectory | None:
            """The record of a failed attempt; a failed re-judgement leaves its attempt as it was."""
            return None if earlier else failed_attempt(item, s, ctx.teacher.name, attempt, error)

        try:
            traj = await (rejudge(ctx.judge, item, earlier) if earlier else run_attempt(ctx, item, s, attempt))
        except StorageError:
            raise
        except (TeacherUnavailable, BudgetExhausted) as e:
            traj = gave_up(e)
            halt(str(e))
        except Minio3Error as e:  # a request that failed for good, a bad image: record, go on
            traj = gave_up(e)
        except Exception as e:  # a bug: keep what the attempt paid for, then stop the run naming the item
            traj = gave_up(f"{e.__class__.__name__}: {e}")
            crashed.append(f"item {item.id} (sample {s}): unexpected {e.__class__.__name__}: {e}")
            halt(crashed[-1])
        if traj is None:
            return
        if traj != earlier:
            store.add_attempt(traj)
            state.record(traj)
        progress.update(traj, paid=Usage() if earlier else traj.usage)
        if cfg.target is not None and progress.kept >= cfg.target:
            halt(f"target of {cfg.target} kept trajectories reached")

    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(worker()) for _ in range(max(1, cfg.concurrency))]
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, lambda: (halt("interrupted"), [t.cancel() for t in tasks]))
    try:
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        await ctx.teacher.aclose()
        await ctx.judge.aclose()
    if storage:
        raise storage[0]
    return (reason[0] if reason else None), ctx.cache_hits, (crashed[0] if crashed else None)


def sample(
    cfg: SynthConfig, stage: Stage = SYNTHESIS, *, may_grow: Collection[str] = (),
    reopen: Callable[[Trajectory], bool] | None = None,
) -> Sampled:
    """Play every attempt of `cfg` its run dir does not hold yet (resuming it), without curating; what was left
    out (dataset rows, damaged log lines) is listed as `stage`'s in the run dir's excluded.jsonl.

    Options in `may_grow` may be larger than the run dir's (`check_run_json`), and finished attempts that `reopen`
    accepts are played on from their turns (replayed for free from the reply cache), as a larger turn budget
    continues the trajectories still running at the smaller one."""
    cfg.validate()
    items, skipped = run_items(cfg, stage.name)
    if not items:
        first = skipped[0] if skipped else None
        why = f"every row is skipped, e.g. {first.id}: {first.detail}" if first else "check --limit/--shard"
        raise BadInputError(f"{cfg.dataset}/{cfg.split}.parquet: no items to synthesise from ({why})")
    # rendered before the run dir is checked, its identity holds their digest; their decoded originals are
    # not needed again, so they go to a cache of their own that is dropped after rendering
    prompts = ExemplarPrompts(
        cfg.exemplars, cfg.exemplars_in_context, OriginalCache(), cfg.exemplar_sampling, cfg.protocol
    )
    check_run_json(cfg, prompts.digest(), may_grow)
    store = RunStore(cfg.out)
    state = store.load(samples=cfg.samples_per_item)
    known = {it.id for it in items}
    if reopen is not None:
        state.reopen(key for key, t in state.attempts.items() if key[0] in known and reopen(t))
    continued = len(state.reopened)
    already = sum(1 for (iid, _), t in state.attempts.items() if iid in known and t.correct)
    todo = sum(1 for it in items for s in range(cfg.samples_per_item) if _pending(state, (it.id, s)))
    progress = Progress(todo, already, cfg.progress, stage.bar, stage.counted)
    stopped, hits, crashed = None, 0, None
    try:
        if todo and (cfg.target is None or already < cfg.target):
            stopped, hits, crashed = asyncio.run(_run(cfg, items, prompts, store, state, progress))
    finally:
        progress.close()
        store.close()
    attempts = [t for (iid, _), t in sorted(state.attempts.items()) if iid in known]
    skipped += [e for damage in state.damaged for e in damage.exclusions(stage.name)]
    write_exclusions(cfg.out, skipped)
    outcome = SamplingOutcome(
        run_dir=Path(cfg.out), report=stage.report, attempted_now=progress.done, stopped=stopped, crashed=crashed,
        cache_hits=hits, failures=dict(progress.failures), skipped=skipped,
        damaged=[d.describe() for d in state.damaged],
    )  # fmt: skip
    return Sampled(items, attempts, state, outcome, continued - len(state.reopened))
