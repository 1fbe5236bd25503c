"""`minio3_zoom`: verl's ToolAgentLoop speaking our protocol, with over-turn masking (the paper's core idea).

What it adds to verl's loop, and nothing else (verl's real generate / parse / tool / merge code runs as is):

  - **One geometry.** The first view is ZoomEnv's (the profile's first-view rule, LANCZOS from the full-
    resolution original), not qwen-vl-utils' resize of the prompt image; the trajectory's ZoomSession then
    serves every crop (`tool.py`), so the model sees in RL the pixels sizes synthesis and export produce.
  - **One language.** Its parser, named by `multi_turn.format` (`grounding_released` | `grounding_minio3`),
    fixes the protocol profile; a row made for another protocol is refused.
  - **Budgets per sample.** `extra_info["max_turns"]` (train 6, validation 12 by default) and
    `extra_info["max_images"]`, the image cap (12 as released, the first view included; the loop's
    `max_images` argument where a row has none).
  - **Over-turn.** A trajectory stopped by a limit while it still wanted to act is masked out of the loss
    (its `response_mask` zeroed) and keeps its reward 0 in the group statistics. verl returns TERMINATED
    *before* parsing when a limit fires (`tool_agent_loop.py` l.290-295), so a limit is recognised by
    TERMINATED with no assistant message appended, and the last turn is re-read here:
      - `turns`: the turn budget is spent and the last turn asks for a zoom (valid or not);
      - `images`: the turn asks for a zoom and the image cap is reached (the zoom is not executed);
      - `context`: the response budget is reached by a turn that asks for a zoom, did not finish (no
        end-of-turn token) or overshot it (one generation may run past it; verl then cuts the stored
        response), or the tool turn would not fit (verl then drops it, l.394-395).
    An answer (or a void turn) that finishes within its budget, even exactly at a limit, is not an
    over-turn. Unlike the release, which calls a length-cut answer "void" and trains on it, a cut answer here
    is an over-turn: the issue and the paper count running out of context as over-turn.
  - **No pixel work for token counts.** verl renders each new turn through the processor only for its ids;
    the loop's builder counts image tokens from image sizes instead (`token_counting.py`).
  - **Extra fields** (in `AgentLoopOutput.extra_fields`, seen by the reward as `extra_info`): `overturn`,
    `overturn_reason`, `assistant_turns`, `zooms`, `zoom_errors`, `answer` (the first `<answer>` across
    turns, as the profile reads it), `protocol`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, Literal

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, register
from verl.experimental.agent_loop.tool_agent_loop import AgentData, AgentState, ToolAgentLoop

from minio3_data.profiles import get_profile

from .actions import ZOOM_TOOL, tries_to_zoom
from .budgets import MAX_IMAGES
from .parser import PARSERS, GroundingToolParser
from .token_counting import counting_processor
from .tool import SESSION_ATTR, ZoomTool
from .zoom_session import ZoomSession

AGENT_LOOP = "minio3_zoom"
TURN_BUDGET_KEY = "max_turns"  # extra_info: this sample's turn budget (assistant turns)
IMAGE_CAP_KEY = "max_images"  # extra_info: this sample's image cap (first view included)
PROTOCOL_KEY = "protocol"  # extra_info: the protocol the row's prompt was rendered in

StopReason = Literal["turns", "images", "context"]


def original_path(messages: list[dict[str, Any]]) -> str:
    """The file path of the prompt's one image (the full-resolution original), from verl's raw prompt."""
    parts = [
        part
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image"
    ]
    if len(parts) != 1:
        raise ValueError(f"the {AGENT_LOOP} agent loop needs exactly one image in the prompt, got {len(parts)}")
    image = parts[0].get("image")
    if not isinstance(image, (str, os.PathLike)):
        raise TypeError(
            f"the {AGENT_LOOP} agent loop needs the original's file path as the prompt image (crops are cut from "
            f"the full-resolution file), got {type(image).__name__}"
        )
    return os.fspath(image)


@register(AGENT_LOOP)
class ZoomAgentLoop(ToolAgentLoop):
    """One trajectory (verl builds one loop per trajectory), zooming with ZoomEnv until it answers or over-turns."""

    def __init__(self, *args: Any, max_images: int = MAX_IMAGES, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.tool_parser, GroundingToolParser):
            raise TypeError(
                f"the {AGENT_LOOP} agent loop reads <grounding> turns: set actor_rollout_ref.rollout.multi_turn.format "
                f"to one of {', '.join(PARSERS)} (got {self.tool_parser_name!r})"
            )
        if max_images < 1:
            raise ValueError(f"max_images must be at least 1 (the first view), got {max_images}")
        self.profile = self.tool_parser.profile
        self.max_images = max_images
        # The observation and error turns are protocol text the model must see whole (verl cuts tool text at
        # multi_turn.max_tool_response_length, 256 characters by default; the released observation has ~430).
        self.max_tool_response_length = sys.maxsize
        if ZOOM_TOOL not in self.tools:  # no tool config given: the loop brings its own tool
            tool = ZoomTool()
            self.tools = {**self.tools, ZOOM_TOOL: tool}
            self.tool_schemas = [*self.tool_schemas, tool.tool_schema.model_dump(exclude_unset=True, exclude_none=True)]
        # verl renders each new turn through the processor for its token ids only; count image tokens from
        # sizes there instead of processing pixels (~150 ms per 2-megapixel crop): token_counting.py
        if self.processor is not None and getattr(self.continuous_token_builder, "processor", None) is self.processor:
            self.continuous_token_builder.processor = counting_processor(self.processor)
        self.session: ZoomSession | None = None
        self.stop: StopReason | None = None
        self.turn_texts: list[str] = []

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        extra_info = kwargs.get("extra_info") or {}
        protocol = extra_info.get(PROTOCOL_KEY)
        if protocol is not None and get_profile(protocol, "this row's protocol") != self.profile:
            raise ValueError(
                f"this row's prompt was rendered in protocol {protocol!r}, but the rollout speaks "
                f"{self.profile.name!r} (multi_turn.format={self.tool_parser_name}); rebuild the data or switch"
            )
        if extra_info.get(TURN_BUDGET_KEY) is not None:
            self.max_assistant_turns = int(extra_info[TURN_BUDGET_KEY])
        if extra_info.get(IMAGE_CAP_KEY) is not None:
            self.max_images = int(extra_info[IMAGE_CAP_KEY])
        self.session, self.stop, self.turn_texts = None, None, []
        output = await super().run(sampling_params, **kwargs)
        return self._finish(output)

    async def process_multi_modal_info(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The first view from the trajectory's ZoomSession instead of the dataset class's vision step."""
        self.session = ZoomSession(original_path(messages), self.profile)
        return {"images": [await asyncio.to_thread(self.session.first_view)]}

    async def _handle_pending_state(self, agent_data: AgentData, sampling_params: dict[str, Any]) -> AgentState:
        setattr(agent_data, SESSION_ATTR, self.session)  # where ZoomTool finds this trajectory's state
        return await super()._handle_pending_state(agent_data, sampling_params)

    async def _handle_generating_state(
        self, agent_data: AgentData, sampling_params: dict[str, Any], ignore_termination: bool = False
    ) -> AgentState:
        messages_before = len(agent_data.messages)
        state = await super()._handle_generating_state(agent_data, sampling_params, ignore_termination)
        text = self.tool_parser.decode(agent_data.response_ids)
        self.turn_texts.append(text)
        wants_zoom = tries_to_zoom(self.profile.parse_turn(self.profile.trim_turn(text)), text)
        if state == AgentState.TERMINATED and len(agent_data.messages) == messages_before:
            self.stop = self._limit_reason(agent_data, wants_zoom)
        elif state == AgentState.PROCESSING_TOOLS and wants_zoom and len(agent_data.image_data or []) >= self.max_images:
            self.stop = "images"
            return AgentState.TERMINATED
        return state

    async def _handle_processing_tools_state(self, agent_data: AgentData) -> AgentState:
        state = await super()._handle_processing_tools_state(agent_data)
        if state == AgentState.TERMINATED:  # the only way out here: the tool turn would not fit
            self.stop = "context"
        return state

    def _limit_reason(self, agent_data: AgentData, wants_zoom: bool) -> StopReason | None:
        """Why a limit that fired before parsing makes this trajectory an over-turn, or None if it does not."""
        finished = bool(agent_data.response_ids) and agent_data.response_ids[-1] == self.tokenizer.eos_token_id
        overshoot = len(agent_data.response_mask) - self.response_length  # > 0: verl cuts the stored response
        if overshoot >= 0 and (wants_zoom or not finished or overshoot > 0):
            return "context"
        return "turns" if wants_zoom else None

    def _finish(self, output: AgentLoopOutput) -> AgentLoopOutput:
        """Zero an over-turn trajectory's mask and record what the reward and the metrics need."""
        assert self.session is not None
        if self.stop is not None:
            output.response_mask = [0] * len(output.response_mask)
        output.extra_fields.update(
            {
                "overturn": self.stop is not None,
                "overturn_reason": self.stop or "",
                "assistant_turns": len(self.turn_texts),
                "zooms": self.session.crops,
                "zoom_errors": self.session.errors,
                "answer": self.profile.first_answer(self.turn_texts),
                "protocol": self.profile.name,
            }
        )
        return output

