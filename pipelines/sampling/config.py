"""Options of one sampling run (a synthesis, or an evaluation's pass); the ones that shape the data must match
when a run is resumed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minio3_data import __version__
from minio3_data.errors import BadInputError
from minio3_data.exemplars import BUILTIN, set_identity
from minio3_data.families import DEFAULT as DEFAULT_FAMILY
from minio3_data.families import ModelFamily
from minio3_data.profiles import DEFAULT, ProtocolProfile
from minio3_data.teacher_options import TeacherOptions

from .ablation import ablation

TEACHERS = ("scripted", "openai", "gemini")
JUDGE_RULES = ("ours", "peer")  # our judge, or the protocol's release scoring (minio3_data/peer_judge.py)

# Everything that shapes what an (item, sample) attempt produces: a resumed or merged run must match on
# all of it. "prompts" is the digest of the rendered system prompt and exemplars (texts and image hashes),
# "minio3" the version whose code renders, parses and judges. Left out on purpose: options that only pick,
# order or curate attempts (target, limit, shard, mix, max_per_item, concurrency), how requests travel
# (endpoints, image_transport, retries, limits), and stop_at: the server or the client cuts a turn at its
# first action, and either way the stored turn is the same text.
IDENTITY_FIELDS = ("dataset", "split", "teacher", "model", "exemplars", "samples_per_item", "max_turns",
                   "max_images", "context_tokens", "max_tokens", "temperature", "thinking_budget",
                   "exemplars_in_context", "exemplar_sampling", "seed", "judge", "error_rate", "protocol",
                   "model_family", "prompts", "minio3", "context_reserve", "ablate")
# identity fields added after runs were first made: a run.json without one was made with what it means now,
# so those runs still resume
ADDED_LATER: dict[str, object] = {"model_family": DEFAULT_FAMILY.name, "context_reserve": None, "ablate": None}


@dataclass
class SynthConfig:
    dataset: Path
    out: Path
    split: str = "train"
    teacher: str = "scripted"  # scripted | openai | gemini
    protocol: ProtocolProfile = DEFAULT  # the protocol profile the teacher is spoken to in; run.json records its name
    client: TeacherOptions = field(default_factory=TeacherOptions)  # how to reach an API teacher (and a judge)
    exemplars: Path | None = None  # None: the six shipped exemplars
    exemplars_in_context: int = 2
    exemplar_sampling: str = "patterns"  # patterns | random | fixed
    target: int | None = 6000
    samples_per_item: int = 2
    max_turns: int = 12
    max_images: int = 12  # the trajectory's own images (first view + crops), like the released image cap
    context_tokens: int = 32768  # estimated budget of the whole request, exemplars included
    model_family: ModelFamily = DEFAULT_FAMILY  # the student's: how its processor counts image tokens in that budget
    max_tokens: int = 2048  # per assistant turn
    # the room a request must leave in the context for the next turn; None: max_tokens (a turn never runs out of
    # room). Smaller, a turn's max_tokens is cut to the room left, as the release's in-process engine cuts it
    context_reserve: int | None = None
    ablate: str | None = None  # what the policy is shown instead of each crop (ablation.py); None: the crop
    temperature: float = 1.0
    concurrency: int = 32
    judge: str = "rule"
    judge_rule: str = "ours"  # ours | peer: the protocol's release scoring (its rules, then its prompt to `judge`)
    judge_base_urls: list[str] = field(default_factory=list)
    judge_api_key_env: str | None = None
    seed: int = 0
    limit: int | None = None
    shard: tuple[int, int] = (0, 1)  # (i, N): this process takes items with index % N == i
    max_per_item: int | None = None
    mix: dict[str, float] = field(default_factory=dict)  # target pattern mix for curation
    image_transport: str = "inline"  # inline (base64 in every request) | file (file:// URLs under RUN_DIR/media)
    error_rate: float = 0.15  # scripted teacher only
    progress: bool = True

    def validate(self) -> None:
        """One-line errors for options that cannot work, before anything is started or written."""
        for name in ("samples_per_item", "max_turns", "max_images", "concurrency", "context_tokens", "max_tokens"):
            if getattr(self, name) < 1:
                raise BadInputError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")
        if self.image_transport not in ("inline", "file"):
            raise BadInputError(f"--image-transport {self.image_transport!r}: use inline or file")
        if self.teacher not in TEACHERS:
            raise BadInputError(f"--teacher {self.teacher!r}: use one of {', '.join(TEACHERS)}")
        if not 1 <= self.reserve < self.context_tokens:
            raise BadInputError(
                f"--context-reserve {self.reserve}: must be at least 1 and under --context-tokens {self.context_tokens}"
            )
        if self.judge_rule not in JUDGE_RULES:
            raise BadInputError(f"--judge-rule {self.judge_rule!r}: use one of {', '.join(JUDGE_RULES)}")
        if self.judge_rule == "peer" and self.protocol.peer_judge is None:
            raise BadInputError(
                f"--judge-rule peer: the {self.protocol.name} protocol has no judge of its own; use --judge-rule ours"
            )
        ablation(self.ablate)

    @property
    def reserve(self) -> int:
        """The room a request leaves in the context for the next turn."""
        return self.max_tokens if self.context_reserve is None else self.context_reserve

    def identity(self, prompts: str) -> dict[str, Any]:
        """The data-shaping options as plain JSON (paths absolute, no secrets), with `prompts`, the digest of
        the rendered exemplar prompts (`ExemplarPrompts.digest`)."""
        d = asdict(self)
        d["protocol"] = self.protocol.name
        d["model_family"] = self.model_family.name
        d["model"] = self.client.model
        d["thinking_budget"] = self.client.thinking_budget
        d["error_rate"] = self.error_rate if self.teacher == "scripted" else None  # the scripted teacher's only
        if self.judge_rule != "ours":  # the judge's identity names the rule; ours keeps earlier runs' identity
            d["judge"] = f"{self.judge} ({self.judge_rule})"
        d["prompts"] = prompts
        d["minio3"] = __version__
        d["dataset"] = str(Path(self.dataset).resolve())
        d["exemplars"] = set_identity(self.exemplars) if self.exemplars else BUILTIN
        return {k: d[k] for k in IDENTITY_FIELDS}
