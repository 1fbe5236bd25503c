"""`synth_coldstart`: run a teacher over a dataset split and keep the correct trajectories.

Concurrency is a pool of `--concurrency` workers on one event loop pulling (item, sample) pairs; every
finished attempt is appended to attempts.jsonl at once; the kept set, stats and plot are rebuilt from
the whole log at the end, so a resumed run ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from minio3_data import __version__
from minio3_data.errors import BadInputError, Minio3Error, StorageError
from minio3_data.exclusions import (
    EXCLUDED_NAME,
    Exclusion,
    exclusion_line,
    exclusion_summary,
    write_exclusions,
)
from minio3_data.images import OriginalCache
from minio3_data.judge import make_judge
from minio3_data.exemplars import shipped_dir
from minio3_data.outputs import Inputs, claim_output
from minio3_data.records import ProbeItem, Trajectory, Usage, read_items, write_trajectories
from minio3_data.row_rules import usable_items
from minio3_data.store import (
    ATTEMPTS,
    RUN_JSON,
    RunState,
    RunStore,
    identity_diff,
    run_identity,
    write_run_json,
)
from minio3_data.teachers import BudgetExhausted, GuardedTeacher, Teacher, TeacherUnavailable, make_teacher
from minio3_data.teachers.base import GenerationConfig
from minio3_data.teachers.scripted import ScriptedTeacher

from .attempt import AttemptContext, AttemptState, failed_attempt, run_attempt
from .config import SynthConfig
from .curate import curate
from .prompt import ExemplarPrompts
from .report import judge_reply, judge_usage, plot_stats, run_stats, unknown_usage, write_stats

__all__ = ["Sampled", "SynthConfig", "SynthSummary", "sample", "synth_coldstart"]

MEDIA_DIR = "media"  # --image-transport file: every image sent, once, by content hash


@dataclass
class SynthSummary:
    run_dir: Path
    attempted_now: int
    attempts: int
    kept: int
    acceptance: float
    cost_usd: float
    stopped: str | None  # why the run stopped early (target, budget, endpoint, interrupt), None when complete
    damaged: list[str] = field(default_factory=list)  # damaged log lines resume skipped or dropped, per log
    cache_hits: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # why this run's failed attempts failed: reason -> count
    crashed: str | None = None  # an unexpected error (a bug) that stopped the run, naming the item
    skipped: list[Exclusion] = field(default_factory=list)  # dataset rows and damaged log lines left out

    def failure_line(self) -> str | None:
        return failure_line(self.failures, self.attempted_now)

    def exclusion_line(self) -> str | None:
        return exclusion_line(self.skipped, self.run_dir / EXCLUDED_NAME)


def failure_line(failures: dict[str, int], attempted: int, where: str = "stats.json") -> str | None:
    """One line for the console when attempts of this run failed: how many, and the commonest reason."""
    failed = sum(failures.values())
    if not failed:
        return None
    reason, n = Counter(failures).most_common(1)[0]
    why = reason if n == failed else f"{reason} ({n} of them; every reason is in {where})"
    return f"{failed} of {attempted} attempts failed: {why}; rerun the same command to retry them"


def dataset_items(dataset: Path, split: str, stage: str) -> tuple[list[ProbeItem], list[Exclusion]]:
    """A split's usable rows, and an exclusion of `stage` for each row skipped because it breaks the row rules.

    A bad row is skipped and reported (console and excluded.jsonl), not a reason to refuse the dataset: one
    broken row of thousands in a dataset made elsewhere should not stop a paid run, and which rows are
    skipped depends only on the dataset and minio3's version, both in the run's identity, so a resume or
    a shard skips the same ones. A repeated id or a column of the wrong type still refuses the file."""
    return usable_items(read_items(Path(dataset) / f"{split}.parquet"), stage)


def _load_items(cfg: SynthConfig, stage: str) -> tuple[list[ProbeItem], list[Exclusion]]:
    items, skipped = dataset_items(cfg.dataset, cfg.split, stage)
    i, n = cfg.shard
    items = [it for k, it in enumerate(items) if k % n == i]
    return (items[: cfg.limit] if cfg.limit is not None else items), skipped


def _check_run_json(cfg: SynthConfig, prompts: ExemplarPrompts) -> None:
    """A run dir remembers the options that shape its data; resuming with different ones would mix runs.

    run.json is (re)written only after the teacher, judge and exemplars are set up, so a typo in an option
    never pins a run dir to it. Any other non-empty dir is refused: the run would write its outputs over the
    files there, and attempts whose run.json is gone cannot be checked against these options."""
    out = Path(cfg.out)
    if (out / RUN_JSON).exists():
        diff = identity_diff(run_identity(cfg.out), cfg.identity(prompts.digest()))
        if diff:
            raise BadInputError(
                f"{cfg.out}: this run dir was made with different {', '.join(diff)}; "
                "resume with the same options or pick another --out"
            )
    elif (out / ATTEMPTS).exists():
        raise BadInputError(
            f"{cfg.out}: holds {ATTEMPTS} but no {RUN_JSON}, so its attempts cannot be matched to these "
            f"options; restore {RUN_JSON} or pick another --out"
        )
    elif out.is_dir() and any(out.iterdir()):
        raise BadInputError(f"{cfg.out}: not empty and not a run dir (no {RUN_JSON}); pick a new or empty --out")


def _write_run_json(cfg: SynthConfig, prompts: ExemplarPrompts) -> None:
    write_run_json(cfg.out, cfg.identity(prompts.digest()), __version__)


def _make_teacher(cfg: SynthConfig, notify: Callable[[str], None]) -> Teacher:
    if cfg.teacher == "scripted":
        return ScriptedTeacher(error_rate=cfg.error_rate)
    image_dir = Path(cfg.out) / MEDIA_DIR if cfg.image_transport == "file" else None
    return make_teacher(cfg.teacher, cfg.client, notify=notify, image_dir=image_dir)


def _make_judge(cfg: SynthConfig, teacher: Teacher, store: RunStore, replies: dict[str, dict]):
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


class _Progress:
    """The progress bar: kept (or, for an evaluation, correct) / attempted / acceptance / tokens / cost, with
    tqdm's ETA.

    The bar appears only once the teacher, judge and exemplars are set up, so a setup error is one line."""

    def __init__(self, total: int, kept: int, enabled: bool, desc: str = "synth", counted: str = "kept") -> None:
        self.total, self.enabled, self.bar, self.desc, self.counted = total, enabled, None, desc, counted
        self.kept, self.done, self.finished, self.correct, self.tokens, self.cost = kept, 0, 0, 0, 0, 0.0
        self.failures: Counter[str] = Counter()

    def start(self) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc, unit="attempt", disable=not self.enabled,
                        dynamic_ncols=True)

    def update(self, t: Trajectory) -> None:
        self.done += 1
        self.finished += t.status != "failed"
        if t.status == "failed":
            self.failures[failure_reason(t.error or "")] += 1
        ok = t.correct
        self.correct += ok
        self.kept += ok
        self.tokens += t.usage.total_tokens
        self.cost += t.usage.cost_usd
        acc = self.correct / self.finished if self.finished else 0.0
        assert self.bar is not None
        postfix = f"{self.counted}={self.kept} acc={acc:.0%} tok={self.tokens:,} ${self.cost:.2f}"
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


async def _run(
    cfg: SynthConfig, items: list[ProbeItem], prompts: ExemplarPrompts, store: RunStore, state: RunState,
    progress: _Progress,
) -> tuple[str | None, int, str | None]:
    """Play every pending attempt; (why it stopped early, turns replayed from the cache, a crash or None).
    A failed write (a full disk) stops the run and is raised once the workers have stopped."""
    cache = OriginalCache()
    teacher = _make_teacher(cfg, notify=tqdm.write)
    ctx = AttemptContext(
        dataset_dir=Path(cfg.dataset),
        teacher=teacher,
        judge=_make_judge(cfg, teacher, store, state.replies),
        prompts=prompts,
        profile=cfg.protocol,
        cache=cache,
        store=store,
        replies=state.replies,
        seed=cfg.seed,
        max_turns=cfg.max_turns,
        max_images=cfg.max_images,
        context_tokens=cfg.context_tokens,
        family=cfg.model_family,
        gen=GenerationConfig(stop=list(cfg.protocol.stop_strings), max_tokens=cfg.max_tokens, temperature=cfg.temperature),
        cache_replies=cfg.teacher != "scripted",  # the scripted teacher is free and replays itself
    )
    _write_run_json(cfg, prompts)  # before anything else is written into the run dir (file transport's media/)
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
        (it, s) for it in items for s in range(cfg.samples_per_item) if not state.done((it.id, s))
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
        """One attempt, recorded as it ends; a failed write propagates: it stops the run, not the attempt."""
        attempt = AttemptState(paid_turns=state.paid_turns((item.id, s)))
        try:
            traj = await run_attempt(ctx, item, s, attempt)
        except StorageError:
            raise
        except (TeacherUnavailable, BudgetExhausted) as e:
            traj = failed_attempt(item, s, ctx.teacher.name, attempt, e)
            halt(str(e))
        except Minio3Error as e:  # a request that failed for good, a bad image: record, go on
            traj = failed_attempt(item, s, ctx.teacher.name, attempt, e)
        except Exception as e:  # a bug: keep what the attempt paid for, then stop the run naming the item
            traj = failed_attempt(item, s, ctx.teacher.name, attempt, f"{e.__class__.__name__}: {e}")
            crashed.append(f"item {item.id} (sample {s}): unexpected {e.__class__.__name__}: {e}")
            halt(crashed[-1])
        store.add_attempt(traj)
        state.record(traj)
        progress.update(traj)
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


def failure_reason(error: str) -> str:
    """A failed attempt's error without what varies between attempts that failed alike (retry counts)."""
    return re.sub(r" \(gave up after \d+ tr(?:y|ies)\)", "", error)


def failure_reasons(attempts: list[Trajectory]) -> dict[str, int]:
    """How many failed attempts failed for each reason (stats.json's and results.json's `failure_reasons`)."""
    return dict(Counter(failure_reason(t.error or "") for t in attempts if t.status == "failed"))


def finalize(
    cfg: SynthConfig, items: list[ProbeItem], attempts: list[Trajectory], superseded: Usage, extra: dict
) -> dict:
    """Rebuild the kept set, stats.json and stats.png from every attempt in the log (and what the earlier,
    failed lines of retried attempts paid)."""
    out = Path(cfg.out)
    order = {it.id: k for k, it in enumerate(items)}
    result = curate(attempts, order, max_per_item=cfg.max_per_item, mix=cfg.mix or None, target=cfg.target)
    write_trajectories(out / "trajectories.parquet", result.kept)
    stats = run_stats(attempts, result.kept, result.candidates, superseded,
                      {"failure_reasons": failure_reasons(attempts), **extra})  # fmt: skip
    write_stats(out, stats)
    plot_stats(out, stats)
    return stats


def read_inputs(cfg: SynthConfig) -> Inputs:
    """The dirs a synthesis (or an evaluation) reads besides its run dir: the dataset, and the exemplars it
    puts in context (--exemplars, or the shipped six)."""
    exemplars = (cfg.exemplars or shipped_dir()) if cfg.exemplars_in_context > 0 else None
    return [("--dataset", cfg.dataset), ("--exemplars", exemplars)]


def synth_coldstart(cfg: SynthConfig) -> SynthSummary:
    """Run or resume the synthesis of `cfg`; the run dir is locked for the whole run (one writer). Teachers are
    read as the profile reads teachers (`ProtocolProfile.for_teachers`); evaluation reads its policy strictly."""
    with claim_output(cfg.out, read_inputs(cfg), resumes=True):
        return _synth_coldstart(dataclasses.replace(cfg, protocol=cfg.protocol.for_teachers()))


@dataclass
class Sampled:
    """What one sampling pass left in its run dir: the items, every attempt (the last line per item and
    sample, in key order), and how this invocation went. Synthesis curates it; evaluation scores it."""

    items: list[ProbeItem]
    skipped: list[Exclusion]  # dataset rows that break the row rules, damaged log lines
    attempts: list[Trajectory]
    state: RunState
    attempted_now: int
    failures: dict[str, int]  # why this invocation's failed attempts failed: reason -> count
    stopped: str | None
    cache_hits: int
    crashed: str | None

    def report(self) -> dict:
        """The facts about the pass that stats.json (and an evaluation's results.json) record; the LLM judge's
        usage and the replies whose usage was junk come from the whole reply log, every invocation's."""
        replies = self.state.replies.values()
        return {"stopped": self.stopped, "damaged_lines": [dataclasses.asdict(d) for d in self.state.damaged],
                "replayed_turns": self.cache_hits, "excluded": exclusion_summary(self.skipped),
                "judge_usage": judge_usage(replies), "usage_unknown": unknown_usage(replies)}


def sample(cfg: SynthConfig, desc: str = "synth", counted: str = "kept", stage: str = "synth-coldstart") -> Sampled:
    """Play every attempt of `cfg` its run dir does not hold yet (resuming it), without curating; what was left
    out (dataset rows, damaged log lines) is listed as `stage`'s in the run dir's excluded.jsonl.

    The caller holds the run dir's claim (`claim_output`). `desc` and `counted` label the progress bar."""
    cfg.validate()
    items, skipped = _load_items(cfg, stage)
    if not items:
        first = skipped[0] if skipped else None
        why = f"every row is skipped, e.g. {first.id}: {first.detail}" if first else "check --limit/--shard"
        raise BadInputError(f"{cfg.dataset}/{cfg.split}.parquet: no items to synthesise from ({why})")
    # rendered before the run dir is checked, its identity holds their digest; their decoded originals are
    # not needed again, so they go to a cache of their own that is dropped after rendering
    prompts = ExemplarPrompts(
        cfg.exemplars, cfg.exemplars_in_context, OriginalCache(), cfg.exemplar_sampling, cfg.protocol
    )
    _check_run_json(cfg, prompts)
    store = RunStore(cfg.out)
    state = store.load(samples=cfg.samples_per_item)
    known = {it.id for it in items}
    already = sum(1 for (iid, _), t in state.attempts.items() if iid in known and t.correct)
    todo = sum(1 for it in items for s in range(cfg.samples_per_item) if not state.done((it.id, s)))
    progress = _Progress(todo, already, cfg.progress, desc, counted)
    stopped, hits, crashed = None, 0, None
    try:
        if todo and (cfg.target is None or already < cfg.target):
            stopped, hits, crashed = asyncio.run(_run(cfg, items, prompts, store, state, progress))
    finally:
        progress.close()
        store.close()
    attempts = [t for (iid, _), t in sorted(state.attempts.items()) if iid in known]
    skipped += [e for damage in state.damaged for e in damage.exclusions(stage)]
    write_exclusions(cfg.out, skipped)
    return Sampled(items, skipped, attempts, state, progress.done, dict(progress.failures), stopped, hits, crashed)


def _synth_coldstart(cfg: SynthConfig) -> SynthSummary:
    s = sample(cfg)
    stats = finalize(cfg, s.items, s.attempts, s.state.superseded, s.report())
    return SynthSummary(
        run_dir=Path(cfg.out),
        attempted_now=s.attempted_now,
        attempts=stats["attempts"],
        kept=stats["kept"],
        acceptance=stats["acceptance"],
        cost_usd=stats["usage"]["cost_usd"],
        stopped=s.stopped,
        damaged=[d.describe() for d in s.state.damaged],
        cache_hits=s.cache_hits,
        failures=s.failures,
        crashed=s.crashed,
        skipped=s.skipped,
    )
