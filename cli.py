"""The `minio3` command: options in, one pipeline call, a summary out.

Every command turns a `Minio3Error` into one line on stderr (exit code 2) instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, NoReturn, Optional, TypedDict

import typer

from minio3_data import __version__
from minio3_data.errors import BadInputError, Minio3Error, describe_os_error
from minio3_data.families import get_family
from minio3_data.families import help_text as family_help
from minio3_data.memory import tune_malloc
from minio3_data.profiles import DEFAULT_PROFILE, get_profile, help_text
from minio3_data.teacher_options import TeacherOptions
from pipelines.eval.config import eval_config
from pipelines.export_llamafactory import export_llamafactory
from pipelines.parallel import MAX_DEFAULT_WORKERS
from pipelines.sampling.config import SynthConfig
from pipelines.sampling.outcome import SamplingOutcome
from train.rl.launch import RlOptions
from train.rl.presets import preset_help

app = typer.Typer(
    name="minio3",
    help="Mini-o3 as software: build VisualProbe-style data, synthesise cold-start trajectories, "
    "export to LLaMA-Factory, train and evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
exemplars_app = typer.Typer(help="Check and render exemplar sets.", no_args_is_help=True)
app.add_typer(exemplars_app, name="exemplars")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"minio3 {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """minio3: the Mini-o3 recipe (VisualProbe, cold-start synthesis, SFT, masked GRPO, Avg@k)."""
    tune_malloc()  # before any stage imports its heavy libraries (see minio3_data/memory.py)


PROTOCOL_HELP = f"{help_text()}; see docs/protocol.md"
ProtocolOption = Annotated[str, typer.Option(help=PROTOCOL_HELP)]
FAMILY_HELP = f"The model family the data is for (how its processor counts image tokens): {family_help()}; see docs/qwen3vl.md"
ModelFamilyOption = Annotated[str, typer.Option(help=FAMILY_HELP)]


def _refuse(message: str) -> NoReturn:
    """The one line every refusal is: `error: ...` on stderr, exit code 2, no traceback."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


NumberCheck = Callable[[typer.Context, typer.CallbackParam, Any], Any]


def _number_rule(rule: str, holds: Callable[[float], bool]) -> NumberCheck:
    """An option callback refusing, as one line naming the option, a number that is not finite or breaks
    `rule` (a NaN temperature would pin a run dir that can never be resumed; a negative --limit drops items)."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is not None and not ctx.resilient_parsing and not (math.isfinite(value) and holds(value)):
            _refuse(f"{param.opts[0]} {value}: {rule}")
        return value

    return check


# the domains of numeric options, declared once; an option its pipeline checks with a message of its own
# (--k, --max-turns, --cutoff-len, ...) is left to that check, and seeds take any integer
POSITIVE = _number_rule("must be a finite number above 0", lambda v: v > 0)
NON_NEGATIVE = _number_rule("must be a finite number, 0 or more", lambda v: v >= 0)
SHARE = _number_rule("must be a share from 0 to 1", lambda v: 0 <= v <= 1)


def defaults(source: Callable[..., Any]) -> SimpleNamespace:
    """The defaults of a dataclass's fields (or a function's parameters) by name, so that an option's default is
    the one its pipeline declares."""
    if dataclasses.is_dataclass(source):
        found = {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
                 for f in dataclasses.fields(source)}  # fmt: skip
    else:
        found = {p.name: p.default for p in inspect.signature(source).parameters.values()}
    return SimpleNamespace(**{name: value for name, value in found.items() if value is not dataclasses.MISSING
                              and value is not inspect.Parameter.empty})  # fmt: skip


TEACHER = defaults(TeacherOptions)
SYNTH = defaults(SynthConfig)
EVAL = defaults(eval_config)
RL = defaults(RlOptions)
EXPORT = defaults(export_llamafactory)


@dataclasses.dataclass(frozen=True)
class OptionGroup:
    """Options several commands share, declared once: each option's annotation (its help, its check) and
    default; a command taking the group gets the one value `build` makes of them."""

    options: dict[str, tuple[Any, Any]]
    build: Callable[..., Any]


def with_groups(**groups: OptionGroup) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the options of `groups` in place of its parameter of the same name, which receives what
    the group builds of them. Typer reads a command's options from its signature, so the signature is rewritten."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn, eval_str=True)
        params = []
        for p in signature.parameters.values():
            shared = groups[p.name].options.items() if p.name in groups else ()
            params += [inspect.Parameter(n, p.KEYWORD_ONLY, annotation=a, default=d) for n, (a, d) in shared]
            params += [] if p.name in groups else [p.replace(kind=p.KEYWORD_ONLY)]

        @functools.wraps(fn)
        def command(**values: Any) -> Any:
            for name, group in groups.items():
                values[name] = group.build(**{option: values.pop(option) for option in group.options})
            return fn(**values)

        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


# single options of the commands that sample a model (synth-coldstart, eval), declared once
TeacherKindOption = Annotated[str, typer.Option(
    help="The API of the model sampled: scripted (offline, ground-truth guided) | openai (OpenAI, vLLM, SGLang, "
         "...) | gemini")]
SplitOption = Annotated[str, typer.Option(help="Dataset split to read.")]
TemperatureOption = Annotated[float, typer.Option(help="Sampling temperature.", callback=NON_NEGATIVE)]
ConcurrencyOption = Annotated[int, typer.Option(help="Attempts (trajectories) in flight.", callback=POSITIVE)]
RunSeedOption = Annotated[int, typer.Option(
    help="Run seed: every attempt's seed derives from it (and eval's bootstrap).")]
LimitOption = Annotated[Optional[int], typer.Option(
    help="Use only the first N items of the split.", callback=NON_NEGATIVE)]
ImageTransportOption = Annotated[str, typer.Option(
    help="inline (base64) | file (file:// URLs under OUT/media, for a server sharing the filesystem)")]
MixOption = Annotated[Optional[str], typer.Option(help="Target pattern mix, e.g. backtrack=0.3,depth_first=0.4.")]


TEACHER_OPTIONS = OptionGroup(
    {
        "model": (Annotated[Optional[str], typer.Option(
            help="Model name, as the server serves it (the teacher's; for eval, the policy's).")], TEACHER.model),
        "base_url": (Annotated[Optional[list[str]], typer.Option(
            help="Endpoint; repeat to share load across servers.")], None),
        "api_key_env": (Annotated[Optional[str], typer.Option(
            help="Name of the env var holding the API key (NONE: a local server that wants no key).")],
            TEACHER.api_key_env),
        "timeout": (Annotated[float, typer.Option(
            help="Deadline per request in seconds: connecting, sending and every byte of the reply.",
            callback=POSITIVE)], TEACHER.timeout),
        "rpm": (Annotated[Optional[int], typer.Option(help="Requests per minute limit.", callback=POSITIVE)],
                TEACHER.rpm),
        "tpm": (Annotated[Optional[int], typer.Option(help="Tokens per minute limit.", callback=POSITIVE)],
                TEACHER.tpm),
        "max_retries": (Annotated[int, typer.Option(
            help="Retries per request on 408/429/5xx/timeouts.", callback=NON_NEGATIVE)], TEACHER.max_retries),
        "backoff_max": (Annotated[float, typer.Option(
            help="Longest wait before a retry, in seconds; a server asking to wait longer (Retry-After) fails that "
                 "request at once.", callback=POSITIVE)], TEACHER.backoff_max),
        "stop_at": (Annotated[str, typer.Option(
            help="server (send stop strings) | client (cut turns here, for servers that fail on `stop`)")],
            TEACHER.stop_at),
        "thinking_budget": (Annotated[Optional[int], typer.Option(help="Gemini thinking budget in tokens.")],
                            TEACHER.thinking_budget),
        "price_input": (Annotated[Optional[float], typer.Option(
            help="USD per 1M input tokens (overrides the table).", callback=NON_NEGATIVE)], TEACHER.price_input),
        "price_output": (Annotated[Optional[float], typer.Option(
            help="USD per 1M output tokens (overrides the table).", callback=NON_NEGATIVE)], TEACHER.price_output),
        "max_cost": (Annotated[Optional[float], typer.Option(
            help="Stop before spending more than USD (an LLM judge's requests included).", callback=NON_NEGATIVE)],
            TEACHER.max_cost),
        "max_requests": (Annotated[Optional[int], typer.Option(
            help="Stop before more requests (an LLM judge's included).", callback=NON_NEGATIVE)],
            TEACHER.max_requests),
    },
    lambda base_url, **options: TeacherOptions(base_urls=base_url or [], **options),
)


class JudgeChoice(TypedDict):
    """The judge options of SynthConfig and RlOptions, by their field names."""

    judge: str
    judge_base_urls: list[str]
    judge_api_key_env: str | None


JUDGE_OPTIONS = OptionGroup(
    {
        "judge": (Annotated[str, typer.Option(
            help="rule | openai:MODEL | gemini:MODEL (an LLM judge, for open-ended answers)")], SYNTH.judge),
        "judge_base_url": (Annotated[Optional[list[str]], typer.Option(
            help="LLM judge endpoint; repeat to share load (default: the judge's provider API, never the "
                 "teacher's or the policy's server).")], None),
        "judge_api_key_env": (Annotated[Optional[str], typer.Option(help="Env var with the LLM judge's API key.")],
                              SYNTH.judge_api_key_env),
    },
    lambda judge, judge_base_url, judge_api_key_env: JudgeChoice(
        judge=judge, judge_base_urls=judge_base_url or [], judge_api_key_env=judge_api_key_env),
)


MaxPerItemOption = Annotated[
    Optional[int], typer.Option(help="Keep at most N trajectories per item.", callback=NON_NEGATIVE)
]
WorkersOption = Annotated[Optional[int], typer.Option(
    help=f"Worker processes (default: the CPUs this process may use, at most {MAX_DEFAULT_WORKERS}).",
    callback=POSITIVE)]
OverwriteOption = Annotated[bool, typer.Option(help="Replace a non-empty --out.")]


SYMLINK_LOOP = "Symlink loop from "  # pathlib's RuntimeError text, before the path's repr


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a Minio3Error, an OSError or a symlink loop (naming its file) as one line and exit 2; Ctrl-C exits
    130 without a traceback. Anything else is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Minio3Error as e:
            _refuse(str(e))
        except OSError as e:
            _refuse(describe_os_error(e))
        except RuntimeError as e:  # how Path.resolve() of Python < 3.13 reports a symlink loop (not an OSError)
            if not str(e).startswith(SYMLINK_LOOP):
                raise
            _refuse(f"{str(e).removeprefix(SYMLINK_LOOP)}: a symlink loop; point the path at a real file or dir")
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


# --- build-visualprobe ----------------------------------------------------------------------------------


def _parse_long_side(value: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in value.split(":"))
    except ValueError:
        raise BadInputError(f"--long-side {value!r}: use LOW:HIGH in pixels, e.g. 2048:8192") from None
    return lo, hi


@app.command("build-visualprobe")
@user_errors
def build_visualprobe_cmd(
    out: Annotated[Path, typer.Option(help="Dataset dir to create (must be empty unless --overwrite).")],
    source: Annotated[
        str, typer.Option(help="synthetic | coco | official (VisualProbe) | vstar | hrbench | mmerw | o3bench | "
                               "vtcbench")
    ] = "synthetic",
    train: Annotated[Optional[int], typer.Option(help="Train items (default 4000; official: all).")] = None,
    test: Annotated[
        Optional[int], typer.Option(help="Test items, split 141:268:106 by difficulty (default 500; official and "
                                         "benchmarks: all, else the first N).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same rows and image bytes.")] = 0,
    workers: WorkersOption = None,
    long_side: Annotated[str, typer.Option(help="Synthetic: long side range LOW:HIGH in px.")] = "2048:8192",
    images: Annotated[Optional[Path], typer.Option(
        help="COCO, mmerw, o3bench, vtcbench: root of the annotations' image paths."
    )] = None,
    annotations: Annotated[Optional[Path], typer.Option(
        help="COCO: detection JSON; hrbench: hr_bench_4k.tsv / hr_bench_8k.tsv; mmerw: MME-RealWorld JSON; "
        "o3bench: test/metadata.jsonl; vtcbench: VTC-Bench.tsv."
    )] = None,
    from_dir: Annotated[
        Optional[Path], typer.Option("--from", help="official: released layout dir (BASE_IMAGE_DIR); vstar: the "
                                                    "V* Bench folder.")
    ] = None,
    emit_mini_o3_json: Annotated[bool, typer.Option(help="Also write the released layout to --out.")] = False,
    overwrite: OverwriteOption = False,
    max_pixels: Annotated[Optional[int], typer.Option(
        help="coco/official: skip (and list) images above this many pixels (default 100,000,000; a 240 MP "
        "image costs 1.5 GB per worker to decode)."
    )] = None,
) -> None:
    """Build a VisualProbe-style dataset dir (train/test parquet, images/, manifest.json) with target boxes.

    Example: minio3 build-visualprobe --source synthetic --out data/vp --train 4000 --test 500 --workers 8

    Add --emit-mini-o3-json to also write VisualProbe_train/train.json and
    VisualProbe_{Easy,Medium,Hard}/val.json (point BASE_IMAGE_DIR at --out). From boxes: --source coco
    --images coco/val2017 --annotations coco/annotations/instances_val2017.json. From the release:
    --source official --from $BASE_IMAGE_DIR. Benchmarks for `minio3 eval`: --source vstar --from vstar_bench,
    --source hrbench --annotations hr_bench_8k.tsv, --source mmerw --annotations MME-RealWorld.json --images
    MME-RealWorld/, --source o3bench --annotations O3-Bench/test/metadata.jsonl --images O3-Bench/test,
    --source vtcbench --annotations VTC-Bench/VTC-Bench.tsv --images VTC-Bench/.
    """
    from pipelines.build_visualprobe import build_visualprobe

    summary = build_visualprobe(
        source, out, train=train, test=test, seed=seed, workers=workers,
        long_side=_parse_long_side(long_side), images=images, annotations=annotations, from_dir=from_dir,
        emit_mini_o3=emit_mini_o3_json, overwrite=overwrite, max_pixels=max_pixels,
    )
    for split, n in summary.counts.items():
        mix = ", ".join(f"{d} {k}" for d, k in summary.by_difficulty[split].items())
        typer.echo(f"{split}: {n} items ({mix})")
    excluded = summary.exclusion_line()
    if excluded:
        typer.echo(excluded, err=True)
    extra = f"; released layout: {', '.join(summary.mini_o3_json)}" if summary.mini_o3_json else ""
    typer.echo(f"wrote {summary.out} in {summary.seconds:.1f}s{extra}")


# --- exemplars ------------------------------------------------------------------------------------------


@exemplars_app.command("check")
@user_errors
def exemplars_check_cmd(
    directory: Annotated[Optional[Path], typer.Argument(help="Exemplar dir (default: the six shipped).")] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="HTML page to write (default: DIR/check.html, or ./exemplars_check.html).")
    ] = None,
    protocol: ProtocolOption = DEFAULT_PROFILE,
) -> None:
    """Replay every exemplar through ZoomEnv, check boxes, target and answer, and draw them on an HTML page.

    Exits 1 and names the exemplar, turn and problem when something is wrong.

    Example: minio3 exemplars check my_exemplars/ --out /tmp/exemplars.html
    """
    from pipelines.exemplars_check import check_exemplars

    result = check_exemplars(directory, out, get_profile(protocol, stage="exemplars"))
    for problem in result.problems:
        typer.secho(problem, err=True, fg=typer.colors.RED)
    typer.echo(f"{result.exemplars} exemplar(s), {len(result.problems)} problem(s); page: {result.html}")
    if result.problems:
        raise typer.Exit(1)


# --- synth-coldstart ------------------------------------------------------------------------------------


def _parse_shard(value: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in value.split("/"))
        if not 0 <= i < n:
            raise ValueError
    except ValueError:
        raise BadInputError(f"--shard {value!r}: use i/N with 0 <= i < N, e.g. 0/4") from None
    return i, n


def _parse_mix(value: str | None) -> dict[str, float]:
    if not value:
        return {}
    try:
        mix = {k.strip(): float(v) for k, v in (part.split("=") for part in value.split(","))}
        if not all(math.isfinite(w) and w >= 0 for w in mix.values()) or not sum(mix.values()) > 0:
            raise ValueError
    except ValueError:
        raise BadInputError(
            f"--mix {value!r}: use pattern=weight pairs, weights 0 or more and not all 0, e.g. "
            "backtrack=0.3,depth_first=0.4"
        ) from None
    return mix


@app.command("synth-coldstart")
@user_errors
@with_groups(client=TEACHER_OPTIONS, judge=JUDGE_OPTIONS)
def synth_coldstart_cmd(
    dataset: Annotated[Path, typer.Option(help="Dataset dir from build-visualprobe.")],
    out: Annotated[Path, typer.Option(help="Run dir; rerun with the same --out to resume.")],
    teacher: TeacherKindOption = SYNTH.teacher,
    protocol: ProtocolOption = SYNTH.protocol.name,
    model_family: ModelFamilyOption = SYNTH.model_family.name,
    split: SplitOption = SYNTH.split,
    *,
    client: TeacherOptions,
    exemplars: Annotated[Optional[Path], typer.Option(
        help="Exemplar dir (default: the six shipped).")] = SYNTH.exemplars,
    exemplars_in_context: Annotated[int, typer.Option(
        help="Exemplars sampled into each attempt's prompt.", callback=NON_NEGATIVE)] = SYNTH.exemplars_in_context,
    exemplar_sampling: Annotated[str, typer.Option(
        help="patterns (one per search pattern first) | random | fixed")] = SYNTH.exemplar_sampling,
    target: Annotated[Optional[int], typer.Option(
        help="Stop once this many trajectories are kept.", callback=NON_NEGATIVE)] = SYNTH.target,
    samples_per_item: Annotated[int, typer.Option(help="Attempts per question (K).")] = SYNTH.samples_per_item,
    max_turns: Annotated[int, typer.Option(help="Assistant turns per attempt.")] = SYNTH.max_turns,
    max_images: Annotated[int, typer.Option(help="Images per attempt (first view + crops).")] = SYNTH.max_images,
    context_tokens: Annotated[int, typer.Option(
        help="Estimated request budget in tokens.")] = SYNTH.context_tokens,
    max_tokens: Annotated[int, typer.Option(help="Max tokens per assistant turn.")] = SYNTH.max_tokens,
    temperature: TemperatureOption = SYNTH.temperature,
    concurrency: ConcurrencyOption = SYNTH.concurrency,
    judge: JudgeChoice,
    seed: RunSeedOption = SYNTH.seed,
    limit: LimitOption = SYNTH.limit,
    shard: Annotated[str, typer.Option(help="i/N: take every N-th item starting at i.")] = "0/1",
    max_per_item: MaxPerItemOption = SYNTH.max_per_item,
    mix: MixOption = None,
    image_transport: ImageTransportOption = SYNTH.image_transport,
    error_rate: Annotated[float, typer.Option(
        help="Scripted teacher: share of wrong answers.", callback=SHARE)] = SYNTH.error_rate,
) -> None:
    """Synthesise cold-start trajectories with a teacher VLM and keep the correct ones.

    Example: minio3 synth-coldstart --dataset data/vp --out runs/gemini --teacher gemini
    --model gemini-2.5-pro --api-key-env GEMINI_API_KEY --target 6000 --concurrency 64 --rpm 1000

    Exits 0 when every attempt finished; 1 when attempts failed (the line says how many and why) or the
    run stopped early; rerunning the same command retries and continues, replaying paid turns for free.
    """
    from pipelines.synth_coldstart import synth_coldstart

    summary = synth_coldstart(
        SynthConfig(
            dataset=dataset, out=out, split=split, teacher=teacher, protocol=get_profile(protocol, stage="synth"), client=client,
            model_family=get_family(model_family), exemplars=exemplars, exemplars_in_context=exemplars_in_context,
            exemplar_sampling=exemplar_sampling, target=target, samples_per_item=samples_per_item,
            max_turns=max_turns, max_images=max_images, context_tokens=context_tokens, max_tokens=max_tokens,
            temperature=temperature, concurrency=concurrency, seed=seed, limit=limit, shard=_parse_shard(shard),
            max_per_item=max_per_item, mix=_parse_mix(mix), image_transport=image_transport, error_rate=error_rate,
            **judge,
        )
    )
    _run_started(summary.sampling)
    typer.echo(
        f"{summary.sampling.run_dir}: kept {summary.kept} of {summary.attempts} attempts "
        f"(acceptance {summary.acceptance:.0%}, ${summary.cost_usd:.2f}, {summary.sampling.cache_hits} turns "
        "replayed); trajectories.parquet, stats.json, stats.png"
    )
    _run_ended(summary.sampling)


def _run_started(outcome: SamplingOutcome) -> None:
    """What a sampling run (synth-coldstart, eval) found in its run dir and dataset: damaged log lines, skipped
    rows."""
    for line in outcome.damaged:
        typer.echo(f"resume: {line}")
    excluded = outcome.exclusion_line()
    if excluded:
        typer.secho(excluded, err=True, fg=typer.colors.YELLOW)


def _run_ended(outcome: SamplingOutcome, incomplete: int = 1) -> None:
    """A sampling run's last lines and exit code: 1 when a bug stopped it, `incomplete` when attempts failed or
    it stopped early (130 when interrupted; rerunning continues), 0 when every attempt finished."""
    failures = outcome.failure_line()
    if failures and not outcome.stopped:  # a stopped run names its one reason below
        typer.secho(failures, err=True, fg=typer.colors.RED)
    if outcome.crashed:
        typer.secho(f"error: {outcome.crashed}; this is a bug in minio3, please report it", err=True,
                    fg=typer.colors.RED)
        raise typer.Exit(1)
    if outcome.stopped and not outcome.stopped.startswith("target"):
        typer.secho(f"stopped: {outcome.stopped}; rerun the same command to continue", err=True,
                    fg=typer.colors.YELLOW)
        raise typer.Exit(130 if outcome.stopped == "interrupted" else incomplete)
    if failures:
        raise typer.Exit(incomplete)


@app.command("merge-runs")
@user_errors
def merge_runs_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run dirs of one synthesis (e.g. its --shard i/N parts).")],
    out: Annotated[Path, typer.Option(help="Merged run dir to create.")],
    target: Annotated[Optional[int], typer.Option(help="Keep at most this many trajectories.", callback=NON_NEGATIVE)] = None,
    max_per_item: MaxPerItemOption = None,
    mix: MixOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Merge the run dirs of one synthesis (shards, machines) into one run dir, curated again.

    Example: minio3 merge-runs runs/shard0 runs/shard1 runs/shard2 runs/shard3 --out runs/all --target 6000
    """
    from pipelines.synth_coldstart.merge import merge_runs

    s = merge_runs(runs, out, target=target, max_per_item=max_per_item, mix=_parse_mix(mix), overwrite=overwrite)
    for line in s.damaged:
        typer.echo(f"merge: {line}")
    excluded = s.exclusion_line()
    if excluded:
        typer.echo(excluded, err=True)
    typer.echo(f"{s.out}: {s.attempts} attempts from {s.runs} runs ({s.duplicates} duplicates dropped), "
               f"kept {s.kept}; export it with: minio3 export-llamafactory --run {s.out} --out sft/")


# --- eval -----------------------------------------------------------------------------------------------


@app.command("eval")
@user_errors
@with_groups(client=TEACHER_OPTIONS, judge=JUDGE_OPTIONS)
def eval_cmd(
    dataset: Annotated[Path, typer.Option(help="Dataset dir (build-visualprobe: VisualProbe, V*, HR-Bench, ...).")],
    out: Annotated[Path, typer.Option(help="Run dir; rerun with the same --out to resume, or to rescore at other "
                                           "budgets with the same largest one.")],
    teacher: TeacherKindOption = SYNTH.teacher,
    *,
    client: TeacherOptions,
    split: SplitOption = EVAL.split,
    k: Annotated[int, typer.Option("--k", help="Samples per question: Avg@k.")] = EVAL.k,
    max_turns: Annotated[str, typer.Option(help="Turn budgets, comma-separated; one sampling pass at the largest "
                                                "scores them all.")] = ",".join(map(str, EVAL.budgets)),
    judge: JudgeChoice,
    judge_rule: Annotated[str, typer.Option(
        help="ours | peer: score with our judge, or with the protocol's release rules and prompt (asking "
             "--judge's model), to match the peer's paper; docs/conventions.md")] = SYNTH.judge_rule,
    temperature: TemperatureOption = SYNTH.temperature,
    protocol: ProtocolOption = SYNTH.protocol.name,
    model_family: ModelFamilyOption = SYNTH.model_family.name,
    max_tokens: Annotated[Optional[int], typer.Option(
        help="Max new tokens per assistant turn (default: the protocol's release value, 8192).")] = None,
    context_tokens: Annotated[Optional[int], typer.Option(
        help="Context budget in tokens, the server's max model len (default: the protocol's, 32768).")] = None,
    context_reserve: Annotated[Optional[int], typer.Option(
        help="Room a turn needs left in the context, else the trajectory is over-turn (default: the "
             "protocol's, 2000); a turn's max tokens are cut to the room left.")] = None,
    ablate: Annotated[Optional[str], typer.Option(
        help="crop-black: show every observation black at its displayed size (does the model use what it "
             "sees? compare with the plain eval)")] = SYNTH.ablate,
    concurrency: ConcurrencyOption = 64,
    image_transport: ImageTransportOption = SYNTH.image_transport,
    seed: RunSeedOption = SYNTH.seed,
    limit: LimitOption = SYNTH.limit,
) -> None:
    """Avg@k at growing turn budgets: k samples per question at the largest budget score every budget.

    Example: minio3 eval --dataset data/visualprobe --out evals/mini-o3 --teacher openai
    --model Mini-o3/Mini-o3-7B-v1 --base-url http://localhost:8000/v1 --api-key-env NONE --judge openai:gpt-4o
    --judge-api-key-env OPENAI_API_KEY (the judge is OpenAI's gpt-4o: without --judge-base-url a judge asks its
    provider's API, never the policy's server)

    Writes results.md (the table), results.json, accuracy.png, scores.parquet and trajectories.parquet;
    docs/eval.md reproduces the paper's table. Rerun with a larger largest budget to extend the pass. Exits 0
    when complete, 3 when incomplete (samples failed, never ran or are unjudged: the report says so in its
    first line; rerunning plays the missing ones), 2 on bad input, 1 on a bug, 130 when interrupted.
    """
    from pipelines.eval import INCOMPLETE_EXIT, evaluate, parse_budgets

    summary = evaluate(eval_config(
        dataset, out, budgets=parse_budgets(max_turns), k=k, split=split, teacher=teacher,
        protocol=get_profile(protocol, stage="eval"), model_family=get_family(model_family), client=client,
        temperature=temperature, max_tokens=max_tokens, context_tokens=context_tokens,
        context_reserve=context_reserve, ablate=ablate, concurrency=concurrency, image_transport=image_transport,
        seed=seed, limit=limit, judge_rule=judge_rule, **judge,
    ))  # fmt: skip
    banner = summary.banner()
    if banner:
        typer.secho(banner, err=True, fg=typer.colors.RED)
    _run_started(summary.sampling)
    for line in summary.lines():
        typer.echo(line)
    _run_ended(summary.sampling, incomplete=INCOMPLETE_EXIT)
    if banner:
        raise typer.Exit(INCOMPLETE_EXIT)


# --- compare --------------------------------------------------------------------------------------------


@app.command("compare")
@user_errors
def compare_cmd(
    evals: Annotated[list[Path], typer.Argument(
        metavar="EVAL_DIR", help="Eval dirs of one benchmark; the first is the baseline.")],
    out: Annotated[Path, typer.Option(help="Dir to write compare.md, compare.json and compare.png to.")],
    intersection: Annotated[bool, typer.Option(
        help="Compare the questions every eval has when their question sets differ (refused otherwise).")] = False,
    bootstrap: Annotated[Optional[int], typer.Option(
        help="Resamples of the shared questions per paired interval (default 2000, as eval's).", callback=POSITIVE)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the resampling: same seed, same intervals.")] = 0,
    overwrite: OverwriteOption = False,
) -> None:
    """Compare evals of the same questions: Avg@k per budget, difficulty and data source, and each eval's
    difference from the first with a 95% paired bootstrap interval; a turn-scaling plot of them all.

    Example: minio3 compare evals/sft evals/rl --out compare/sft-vs-rl

    Writes compare.md, compare.json and compare.png; see them with minio3 view compare/sft-vs-rl --out site/cmp
    (docs/eval.md, "Compare").
    """
    from pipelines.compare import compare

    summary = compare(evals, out, intersection=intersection, resamples=bootstrap, seed=seed, overwrite=overwrite)
    for line in summary.lines():
        typer.echo(line)


# --- export-llamafactory / train-sft --------------------------------------------------------------------


@app.command("export-llamafactory")
@user_errors
def export_llamafactory_cmd(
    out: Annotated[Path, typer.Option(help="Export dir (data, images, dataset_info.json, SFT YAML).")],
    run: Annotated[Optional[Path], typer.Option(help="A synth-coldstart run dir.")] = None,
    official: Annotated[
        Optional[Path], typer.Option(help="The released Mini-o3-Coldstart parquet, or the folder of its shards.")
    ] = None,
    format: Annotated[str, typer.Option(help="json (+ image files) | parquet (embedded images).")] = "json",
    cutoff_len: Annotated[int, typer.Option(help="LLaMA-Factory cutoff_len; longer rows are excluded.")] = EXPORT.cutoff_len,
    image_max_pixels: Annotated[int, typer.Option(help="LLaMA-Factory image_max_pixels.")] = EXPORT.image_max_pixels,
    image_min_pixels: Annotated[int, typer.Option(help="LLaMA-Factory image_min_pixels.")] = EXPORT.image_min_pixels,
    workers: WorkersOption = None,
    protocol: Annotated[
        Optional[str], typer.Option(help=f"{PROTOCOL_HELP}. Default: the run's own; --official rows are released")
    ] = None,
    model_family: Annotated[
        Optional[str], typer.Option(help=f"{FAMILY_HELP}. Default: the run's own; qwen2.5-vl for --official")
    ] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Write trajectories as LLaMA-Factory ShareGPT data, validated so that no row is dropped or cut.

    Example: minio3 export-llamafactory --run runs/gemini --out sft/minio3
    (or --official Mini-o3-Coldstart-Dataset/data), then: minio3 train-sft --export sft/minio3 --model ...
    """
    from pipelines.export_llamafactory import export_official, export_run

    if (run is None) == (official is None):
        raise typer.BadParameter("give exactly one of --run RUN_DIR or --official PARQUET_OR_DIR")
    options = dict(
        fmt=format, cutoff_len=cutoff_len, image_max_pixels=image_max_pixels,
        image_min_pixels=image_min_pixels, workers=workers, overwrite=overwrite,
    )  # fmt: skip
    profile = get_profile(protocol, stage="export") if protocol is not None else None
    family = get_family(model_family) if model_family is not None else None
    if run is not None:
        summary = export_run(run, out, protocol=profile, family=family, **options)
    else:
        summary = export_official(official, out, protocol=profile, family=family, **options)
    typer.echo(summary.text())


@app.command("train-sft")
@user_errors
def train_sft_cmd(
    export: Annotated[Path, typer.Option(help="Export dir written by export-llamafactory.")],
    model: Annotated[str, typer.Option(help="Base model: local path or hub id (e.g. Qwen/Qwen2.5-VL-7B-Instruct).")],
    llamafactory_cli: Annotated[
        Optional[Path], typer.Option(help="llamafactory-cli of LLaMA-Factory's own venv (default: on PATH).")
    ] = None,
    nproc: Annotated[Optional[int], typer.Option(help="Processes per node (torchrun via LLaMA-Factory).")] = None,
    variant: Annotated[Optional[str], typer.Option(
        help="instruct | thinking (qwen3-vl): the SFT YAML of that variant. Default: the family's first, instruct")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the command and the config, run nothing.")] = False,
    extra: Annotated[
        Optional[list[str]], typer.Argument(help="LLaMA-Factory overrides after --, as key=value.")
    ] = None,
) -> None:
    """Full SFT with LLaMA-Factory on an export; exits with LLaMA-Factory's exit code.

    Example: minio3 train-sft --export sft/minio3 --model Qwen/Qwen2.5-VL-7B-Instruct --nproc 8
    -- output_dir=saves/minio3-sft num_train_epochs=2 save_strategy=epoch
    """
    from train.sft import run_sft, sft_launch

    launch = sft_launch(export, model, llamafactory_cli, nproc, extra or [], check_cli=not dry_run, variant=variant)
    if dry_run:
        typer.echo(launch.dry_run())
        return
    if launch.view is not None:
        typer.echo(launch.view.note(), err=True)
    typer.echo(f"running: {launch.command()}", err=True)
    raise typer.Exit(run_sft(launch))


# --- train-rl -------------------------------------------------------------------------------------------


@app.command("train-rl")
@user_errors
@with_groups(judge=JUDGE_OPTIONS)
def train_rl_cmd(
    dataset: Annotated[Path, typer.Option(help="Dataset dir from build-visualprobe (train.parquet, test.parquet).")],
    model: Annotated[Path, typer.Option(help="Local model dir to start from (e.g. the SFT checkpoint).")],
    out: Annotated[Path, typer.Option(help="Run dir: data, config, command, checkpoints; rerun to resume.")],
    nnodes: Annotated[Optional[int], typer.Option(
        help="Nodes (more than 1: start a Ray cluster first, see docs/rl.md). Default: the preset's, else 1."
    )] = None,
    gpus_per_node: Annotated[Optional[int], typer.Option(help="GPUs per node. Default: the preset's, else 8.")] = None,
    max_turns: Annotated[int, typer.Option(help="Assistant turns per training trajectory.")] = RL.max_turns,
    val_max_turns: Annotated[int, typer.Option(
        help="Assistant turns per validation trajectory.")] = RL.val_max_turns,
    rollout_n: Annotated[Optional[int], typer.Option(
        help="Trajectories per question (the GRPO group, G). Default: the preset's, else 16."
    )] = None,
    preset: Annotated[Optional[str], typer.Option(
        help=f"Single-node recipe: {preset_help()}; the dry run prints its per-GPU memory estimate."
    )] = None,
    on_collapse: Annotated[str, typer.Option(
        help="When the policy stops zooming (tool-use collapse alarm, docs/rl.md): warn | stop (checkpoint, exit non-zero)."
    )] = RL.on_collapse,
    *,
    judge: JudgeChoice,
    loss_agg: Annotated[str, typer.Option(
        help="paper (1/ΣM over completed trajectories) | released (1/G) | token-mean (verl's); see docs/rl.md"
    )] = RL.loss_agg,
    protocol: ProtocolOption = RL.protocol.name,
    dry_run: Annotated[bool, typer.Option(help="Write and check everything with verl (no GPU), run nothing.")] = False,
    extra: Annotated[Optional[list[str]], typer.Argument(help="verl (Hydra) overrides after --, as key=value.")] = None,
) -> None:
    """Masked GRPO on verl (Ray + FSDP + vLLM): over-turn trajectories are masked out of the loss, not punished.

    Example: minio3 train-rl --dataset data/vp --model saves/minio3-sft --out runs/rl --gpus-per-node 8
    -- trainer.total_epochs=10

    Writes OUT/data, OUT/minio3_rl.yaml, OUT/config.yaml and OUT/command.sh, then runs verl and exits with
    its exit code.
    """
    import time

    started = time.monotonic()  # the dry run's time includes importing verl, as a user waits for it
    from train.rl.launch import RlLaunch, train_rl

    def ready(launch: RlLaunch) -> None:
        typer.echo(f"data: {launch.rows['train']} train / {launch.rows['val']} validation questions in {launch.out}/data")
        for note in filter(None, [launch.skipped, *launch.notes]):
            typer.secho(note, err=True, fg=typer.colors.YELLOW)
        typer.echo(f"checked with verl in {time.monotonic() - started:.1f}s: {', '.join(launch.checked)}")
        typer.echo(f"config: {launch.out}/config.yaml; command: {launch.out}/command.sh")
        for line in [*launch.memory, *launch.multinode_steps()]:
            typer.echo(line)
        if not dry_run:
            typer.echo(f"running: {launch.command()}", err=True)

    options = RlOptions(
        dataset=dataset, model=model, out=out, nnodes=nnodes, gpus_per_node=gpus_per_node, max_turns=max_turns,
        val_max_turns=val_max_turns, rollout_n=rollout_n, loss_agg=loss_agg, protocol=get_profile(protocol, stage="rl"),
        preset=preset, on_collapse=on_collapse, overrides=extra or [], **judge,
    )  # fmt: skip
    _, code = train_rl(options, dry_run=dry_run, on_ready=ready)
    if code is not None:
        raise typer.Exit(code)


# --- view -----------------------------------------------------------------------------------------------


@app.command("view")
@user_errors
def view_cmd(
    source: Annotated[Path, typer.Argument(help="A run, eval, dataset, export or compare dir.")],
    out: Annotated[Path, typer.Option(help="Site dir to write (open OUT/index.html in a browser).")],
    limit: Annotated[Optional[int], typer.Option(help="Make pages for the first N entries only.")] = None,
    filter: Annotated[Optional[str], typer.Option(
        "--filter", help="Entries to include, e.g. status=answered,verdict=wrong|unjudged,turns>=4 "
        "(FIELD=V1|V2, !=, >=, <=, >, <; the index's filter box takes the same). Fields: runs and evals "
        "id, item, status, verdict, pattern, difficulty, source, turns, teacher, kept, cost; datasets id, "
        "split, difficulty, source, kind, glance; exports id, turns, zooms, images."
    )] = None,
    workers: WorkersOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Write a static site (no server, no network) to look at every trajectory, dataset item or exported row:
    zoom boxes numbered by turn on the original, each observation as the model saw it, verdicts and costs.

    Example: minio3 view runs/gemini --out site/gemini --filter status=answered,verdict=wrong
    """
    from pipelines.view import build_site

    summary = build_site(source, out, limit=limit, filter_expr=filter, workers=workers, overwrite=overwrite)
    typer.echo(summary.text())


# --- quickstart -----------------------------------------------------------------------------------------


@app.command("quickstart")
@user_errors
def quickstart_cmd(
    out: Annotated[Path, typer.Option(help="Where the dataset, run and SFT export go.")] = Path("quickstart"),
    train: Annotated[int, typer.Option(help="Synthetic training questions.", callback=POSITIVE)] = 24,
    test: Annotated[int, typer.Option(help="Synthetic test questions.")] = 6,
    samples_per_item: Annotated[int, typer.Option(help="Attempts per question.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for scenes and synthesis.")] = 0,
    overwrite: OverwriteOption = False,
) -> None:
    """Run the whole pipeline offline on the embedded default: synthetic scenes, scripted teacher, export.

    Example: minio3 quickstart --out quickstart
    """
    from pipelines.quickstart import quickstart

    s = quickstart(out, train=train, test=test, samples_per_item=samples_per_item, seed=seed, overwrite=overwrite)
    typer.echo(f"dataset   {s.dataset.out}: {s.dataset.counts} (manifest.json has the difficulty rule)")
    typer.echo(
        f"synthesis {s.run.sampling.run_dir}: kept {s.run.kept} of {s.run.attempts} attempts "
        f"(acceptance {s.run.acceptance:.0%}); trajectories.parquet, stats.json, stats.png"
    )
    typer.echo(
        f"export    {s.export.out}: {s.export.rows_written} rows, {s.export.images} images; "
        f"train with: minio3 train-sft --export {s.export.out} --model Qwen/Qwen2.5-VL-7B-Instruct"
    )
    typer.echo("exemplars minio3 exemplars check  (writes an HTML page of the six shipped exemplars)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
