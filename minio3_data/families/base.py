"""The ModelFamily: how a family of models turns pixels into tokens, and what its training stack calls it.

A protocol profile is the language a model speaks with its zoom tool; a family is its processor and its
templates. They are independent: any profile runs with any family. A family is resolved once (from a CLI
option, an export's `export.json`, a run's `run.json`, or a model dir's `config.json`) and passed down.
It owns:
  - the processor's pixel geometry: patch size x merge size = the factor each side is rounded to, one token
    per factor x factor pixels, plus the two vision markers around an image's tokens;
  - the processor's pixel bounds SFT and RL run with (`min_pixels`, `max_pixels`), chosen so that the processor
    only rounds each side to its grid: the protocol's display rule alone decides what the model sees;
  - LLaMA-Factory's template for each variant it is trained as (instruct, thinking) and its default model;
  - what its chat template adds when a conversation has no system message.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..display import Size, smart_resize
from ..errors import BadInputError

VISION_MARKERS = 2  # <|vision_start|> and <|vision_end|> around an image's tokens
MIN_TOKENS = 4  # the processors' stock floor in tokens (Qwen2.5-VL: 56 x 56 px = 4 x 28 x 28)


@dataclass(frozen=True)
class SftVariant:
    """One way a family is fine-tuned with LLaMA-Factory."""

    name: str  # instruct | thinking
    template: str  # LLaMA-Factory 0.9.5's template
    model: str  # the model the SFT YAML names by default (train-sft --model overrides it)


@dataclass(frozen=True)
class ModelFamily:
    """One model family. A family module fills the fields and defines `FAMILY`."""

    name: str  # what exports, runs and evals record
    summary: str  # one line for --help
    model_types: tuple[str, ...]  # config.json `model_type` values of this family
    architectures: tuple[str, ...]  # config.json `architectures` values, where model_type is missing
    patch_size: int
    merge_size: int
    max_pixels: int  # the stock processor's maximum: reached only where a profile shows the original whole (qwen3-agent)
    stock_min_pixels: int  # the stock processor's minimum, as its preprocessor_config.json says
    variants: tuple[SftVariant, ...]  # the first is the default
    default_system: str | None  # the system turn its template writes when a conversation has none
    slug: str  # in file names: sft_<slug>.yaml

    @property
    def factor(self) -> int:
        """Pixels per side of one image token."""
        return self.patch_size * self.merge_size

    @property
    def min_pixels(self) -> int:
        """The processor minimum SFT and RL run with: four tokens, as Qwen2.5-VL's stock 56 x 56. The protocols
        show no image under 28 px a side, which rounds to at least one token a side, and none under 40,000 px,
        so this minimum never enlarges an image: the processor only rounds each side to the factor."""
        return MIN_TOKENS * self.factor**2

    def processor_size(self, width: int, height: int) -> Size:
        """The size the family's image processor resizes an image to (transformers' smart_resize with this
        family's factor and bounds); ValueError for an aspect ratio over 200, which the processor refuses."""
        h, w = smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels, lift_zero_side=False)
        return w, h

    def image_tokens(self, width: int, height: int) -> int:
        """Tokens an image shown at width x height becomes: one per factor x factor pixels of its processed
        size, plus the vision markers."""
        w, h = self.processor_size(width, height)
        return (w // self.factor) * (h // self.factor) + VISION_MARKERS

    def variant(self, name: str | None = None) -> SftVariant:
        """The SFT variant called `name` (None: the default); a one-line error naming the choices otherwise."""
        if name is None:
            return self.variants[0]
        for v in self.variants:
            if v.name == name:
                return v
        choices = ", ".join(v.name for v in self.variants)
        raise BadInputError(f"--variant {name!r}: the {self.name} family is trained as {choices}")

    def yaml_name(self, variant: SftVariant) -> str:
        """The SFT YAML of `variant` in an export: the default variant's is sft_<slug>.yaml."""
        suffix = "" if variant == self.variants[0] else f"_{variant.name}"
        return f"sft_{self.slug}{suffix}.yaml"
