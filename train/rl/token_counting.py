"""The rollout's token rendering without the pixel work it throws away.

verl renders every new turn through the processor to get its token ids (`VLContinuousTokenMixin.
render_tokens_with_mm`: chat template, then `processor(text, images)`), keeps only `input_ids`, and computes
the pixel values the trainer needs later, once per trajectory, from all its images (`AgentLoopWorker.
_compute_multi_modal_inputs`). The image processor's resize, normalisation and patching in between cost about
150 ms for a 2-megapixel crop on one CPU core, on every zoom, inside the rollout worker that serves the other
trajectories — ten times what cutting the crop costs.

`counting_processor(processor)` is a shallow copy of a Qwen2/2.5-VL or Qwen3-VL processor (its class extended by a mixin)
whose image step only counts each image's tokens: the patch count from the image processor's own `get_number_of_image_patches` (the method
vLLM uses to size the same placeholders) divided by merge_size², written as that many image tokens, which is
what Qwen's `replace_image_token` writes. The text path (placeholder expansion, the tokenizer call) is
transformers' own, so the ids are the processor's; tests/test_rl_tool.py checks them against the full
processor over many image sizes. Anything else (videos, processor kwargs such as a size override, images that
are not PIL) takes the processor's full path.
"""

from __future__ import annotations

import copy
from typing import Any

from PIL import Image
from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen3VLProcessor
from transformers.image_utils import make_flat_list_of_images

# The processors whose image tokens are grid_t * grid_h * grid_w / merge_size² pads (replace_image_token), one per
# family of minio3_data.families
COUNTABLE_PROCESSORS = (Qwen2VLProcessor, Qwen2_5_VLProcessor, Qwen3VLProcessor)
# Size overrides (data.mm_processor_kwargs) take the full path: transformers 5.10's image processor ignores a
# lone `max_pixels` that get_number_of_image_patches applies, so only the processor's own sizes are counted.
COUNTABLE_KWARGS = frozenset({"return_tensors"})


class _CountingMixin:
    """Laid over the processor's own class (see counting_processor): the image step counts, and the output
    stays in Python lists: verl reads only `input_ids` (normalize_token_ids takes lists), and a tensor there
    makes transformers' token-count check iterate it element by element (~8 ms per 2,500 image tokens)."""

    image_processor: Any
    image_token: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*args, **{**kwargs, "return_tensors": None})  # type: ignore[misc]

    def _process_images(self, images: Any, **kwargs: Any) -> tuple[dict[str, Any], list[str]]:
        """`ProcessorMixin._process_images` for the token ids only: no processed images, the same replacements."""
        flat = make_flat_list_of_images(images)
        if set(kwargs) - COUNTABLE_KWARGS or not all(isinstance(im, Image.Image) for im in flat):
            return super()._process_images(images, **kwargs)  # type: ignore[misc]
        patches = self.image_processor.get_number_of_image_patches
        merge = self.image_processor.merge_size**2
        return {}, [self.image_token * (patches(im.height, im.width, {}) // merge) for im in flat]


def counting_processor(processor: Any) -> Any:
    """A copy of `processor` for token rendering (see the module docstring), or `processor` itself when it is
    not a Qwen2/2.5-VL or Qwen3-VL processor whose image processor resizes."""
    image_processor = getattr(processor, "image_processor", None)
    if (
        not isinstance(processor, COUNTABLE_PROCESSORS)
        or not hasattr(image_processor, "get_number_of_image_patches")
        or not getattr(image_processor, "do_resize", True)
    ):
        return processor
    cls = type(processor)
    counting = copy.copy(processor)  # shares tokenizer, image processor and chat template with the original
    counting.__class__ = _COUNTING_CLASSES.setdefault(cls, type(f"Counting{cls.__name__}", (_CountingMixin, cls), {}))
    return counting


_COUNTING_CLASSES: dict[type, type] = {}
