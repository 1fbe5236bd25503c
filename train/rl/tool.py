"""The zoom action as a verl `BaseTool`, executed by verl's own `ToolAgentLoop._call_tool`.

Why a BaseTool rather than code inside the loop: verl's real tool path (create/execute/release, the `tool`
message with the image, the continuous-token merge, the image appended to `agent_data.image_data`) then runs
unchanged, so a verl upgrade that changes it fails our tests instead of silently diverging.
Per-trajectory state cannot live in a verl 0.9.1 tool (it creates and releases an instance per call), so it
lives in the trajectory's ZoomSession, which the agent loop attaches to `agent_data`; the original is decoded
once per process (the shared OriginalCache), never per call. The crop runs in a worker thread so a rollout
worker's event loop keeps serving its other trajectories.
"""

from __future__ import annotations

import asyncio
from typing import Any

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from .actions import TURN_KEY, ZOOM_TOOL, from_arguments
from .zoom_session import ZoomSession

SESSION_ATTR = "minio3_zoom"  # the AgentData attribute holding the trajectory's ZoomSession

SCHEMA = OpenAIFunctionToolSchema.model_validate(
    {
        "type": "function",
        "function": {
            "name": ZOOM_TOOL,
            "description": "Zoom into a region of the original image or of an earlier observation "
            "(written by the model as <grounding>{...}</grounding>, not as a tool call).",
            "parameters": {
                "type": "object",
                "properties": {
                    TURN_KEY: {"type": "string", "description": "the assistant turn with its <grounding>, read "
                               "by the trajectory's protocol profile"},
                },
                "required": [TURN_KEY],
            },
        },
    }
)


def session_of(agent_data: Any) -> ZoomSession:
    """The trajectory's ZoomSession, attached by the minio3 agent loop."""
    session = getattr(agent_data, SESSION_ATTR, None)
    if session is None:
        raise RuntimeError("the zoom tool runs only inside the minio3_zoom agent loop (no ZoomSession on agent_data)")
    return session


class ZoomTool(BaseTool):
    """`zoom`: crop the trajectory's original (or an observation of it) and answer with the profile's turn."""

    def __init__(self, config: dict[str, Any] | None = None, tool_schema: OpenAIFunctionToolSchema | None = None):
        # BaseTool.__init__ prints the schema; nothing in it needs printing for every rollout worker.
        self.config = config or {}
        self.tool_schema = tool_schema or SCHEMA
        self.name = self.tool_schema.function.name

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs: Any) -> tuple[ToolResponse, float, dict]:
        agent_data = kwargs["agent_data"]
        session = session_of(agent_data)
        action_index = agent_data.assistant_turns - 1
        result = await asyncio.to_thread(session.step, action_index, from_arguments(parameters))
        if result.image is None:
            return ToolResponse(text=result.text), 0.0, {"zoomed": False}
        return ToolResponse(image=[result.image], text=result.text), 0.0, {"zoomed": True}


def tool_config() -> dict[str, Any]:
    """The `multi_turn.tool_config_path` YAML content that declares the zoom tool to verl."""
    return {"tools": [{"class_name": f"{ZoomTool.__module__}.{ZoomTool.__qualname__}", "config": {"type": "native"}}]}
