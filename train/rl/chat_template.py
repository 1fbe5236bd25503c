"""Our chat template for the RL rollout, one per model family: the turns LLaMA-Factory's template of the family
(`qwen2_vl`, `qwen3_vl_nothink`, `qwen3_vl`) writes in SFT from our export.

Set it as `actor_rollout_ref.model.custom_chat_template` (verl copies it onto the processor and the
tokenizer). Why not the model's own: Qwen2.5-VL's renders verl's `tool` role literally (`<|im_start|>tool`),
Qwen3-VL's wraps it in `<|im_start|>user\n<tool_response>...`, while SFT saw observation and error turns as
plain user turns (our export writes them as `human` turns); and verl puts a tool's images *before* its text,
while our observation turn carries the image in the middle of its sentence. So:

  - role `tool` is rendered as `<|im_start|>user\\n`, like `user`;
  - in a user or tool message that carries images, `<image>` in its text becomes the vision span
    `<|vision_start|><|image_pad|><|vision_end|>` at that place and the image parts then add nothing (one
    span per image, in order, as the processor expects); a message without a placeholder gets a span for
    each image part where it stands, as Qwen's template does (the question turn, whose image part precedes
    its text); a message without images keeps a literal `<image>` (an error turn quoting the model's text
    must not ask the processor for an image it does not have);
  - assistant turns are their text (tool calls, which our parser derives from that text, are not re-rendered);
  - no system message: the family's default system turn, as LLaMA-Factory's template writes it (Qwen2.5-VL:
    "You are a helpful assistant."; Qwen3-VL: none).
"""

from __future__ import annotations

from minio3_data import families
from minio3_data.families import ModelFamily

IMAGE_SPAN = "<|vision_start|><|image_pad|><|vision_end|>"
VIDEO_SPAN = "<|vision_start|><|video_pad|><|vision_end|>"

_RENDER = (
    "{%- macro render(content, expand) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- else -%}"
    "{%- set ns = namespace(images=false, placed=false) -%}"
    "{%- for part in content -%}"
    "{%- if part['type'] in ('image', 'image_url') or 'image' in part or 'image_url' in part -%}"
    "{%- set ns.images = true -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- for part in content -%}"
    "{%- if expand and ns.images and part['type'] == 'text' and '<image>' in part['text'] -%}"
    "{%- set ns.placed = true -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- for part in content -%}"
    "{%- if part['type'] == 'text' -%}"
    "{{- part['text'].replace('<image>', '" + IMAGE_SPAN + "') if ns.placed else part['text'] -}}"
    "{%- elif part['type'] in ('image', 'image_url') or 'image' in part or 'image_url' in part -%}"
    "{%- if not ns.placed -%}" + IMAGE_SPAN + "{%- endif -%}"
    "{%- elif part['type'] == 'video' or 'video' in part -%}" + VIDEO_SPAN + ""
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- endmacro -%}"
)
_TURNS = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' + render(message['content'], false) + '<|im_end|>\\n' -}}"
    "{%- elif message['role'] == 'system' -%}"
    "{{- '<|im_start|>system\\n' + render(message['content'], false) + '<|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>user\\n' + render(message['content'], true) + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def chat_template(family: ModelFamily) -> str:
    """The rollout's chat template for a model of `family`."""
    default = (
        "{%- if not messages or messages[0]['role'] != 'system' -%}"
        "{{- '<|im_start|>system\\n" + family.default_system + "<|im_end|>\\n' -}}"
        "{%- endif -%}"
    ) if family.default_system else ""
    return _RENDER + default + _TURNS


CHAT_TEMPLATE = chat_template(families.DEFAULT)  # Qwen2.5-VL's
