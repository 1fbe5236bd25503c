"""verl tool parsers for the `<grounding>` action, one registered name per protocol profile.

verl asks its parser whether a generated turn calls a tool. Ours reads the turn exactly as eval does, with
the profile's `trim_turn` and `parse_turn` (so the released profile's rules hold here too: any
`<grounding>` makes a tool call, its last grounding runs, a turn without an action ends the trajectory),
and answers with one `zoom` call carrying the turn for a zoom or for a refused grounding (the tool reads it
again and answers with the observation or the profile's error turn); an answer or a void turn has no call,
so verl ends the trajectory.

The registered name carries the protocol (`grounding_released`, `grounding_minio3`): set it as
`actor_rollout_ref.rollout.multi_turn.format`, and the agent loop takes its profile from its parser, so the
rollout speaks one protocol by construction.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from verl.experimental.agent_loop.tool_parser import FunctionCall, ToolParser

from minio3_data.profiles import ProtocolProfile, speaking

from .actions import ZOOM_TOOL, needs_tool, to_arguments

PARSER_PREFIX = "grounding_"


def parser_name(profile: ProtocolProfile) -> str:
    """The registered parser name for a protocol profile."""
    return PARSER_PREFIX + profile.name


class GroundingToolParser(ToolParser):
    """Reads a turn in the words of `profile` (set on each registered subclass)."""

    profile: ClassVar[ProtocolProfile]

    def decode(self, response_ids: list[int]) -> str:
        """The turn's text as the released rollout decodes it (special tokens such as <|im_end|> dropped)."""
        return self.tokenizer.decode(response_ids, skip_special_tokens=True)

    async def extract_tool_calls(self, responses_ids: list[int], tools: Any = None) -> tuple[str, list[FunctionCall]]:
        text = self.decode(responses_ids)
        turn = self.profile.trim_turn(text)
        if not needs_tool(self.profile.parse_turn(turn)):
            return text, []
        return text, [FunctionCall(name=ZOOM_TOOL, arguments=json.dumps(to_arguments(turn)))]  # type: ignore[arg-type]


def _register(profile: ProtocolProfile) -> type[GroundingToolParser]:
    cls = type(f"GroundingToolParser_{profile.name}", (GroundingToolParser,), {"profile": profile})
    return ToolParser.register(parser_name(profile))(cls)


PARSERS: dict[str, type[GroundingToolParser]] = {parser_name(p): _register(p) for p in speaking("rl").values()}
