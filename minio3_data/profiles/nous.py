"""Qwen-Agent's Nous function-calling format, shared by the peers that speak it (`qwen3-agent`, `pixel-reasoner`).

Source: Qwen-Agent `NousFnCallPrompt` (reference/peer_conventions.md sections 3.2 and 5). The tools are described
in the system prompt by FN_CALL_TEMPLATE, one JSON object per line; the model calls one with
`<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`; Qwen-Agent reads the call with json5 and
writes it back into the history re-serialised by `json.dumps` (`history_turn`), not as the model's bytes.
Without json5 as a dependency we read the call as JSON, then as Python literals (single quotes,
trailing commas); what only json5 accepts (unquoted keys, comments, hexadecimal) is refused with our message.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence

FN_CALL_TEMPLATE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tool_descs}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within <tool_call></tool_call> "
    'XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
NOT_A_CALL = 'the tool call must be one JSON object {"name": ..., "arguments": {...}}'


def tools_prompt(tool_descs: Sequence[str], system: str = "") -> str:
    """The system message Qwen-Agent sends: `system`, a blank line, then the tools (the tools alone without one)."""
    tools = FN_CALL_TEMPLATE.replace("{tool_descs}", "\n".join(tool_descs))
    return f"{system}\n\n{tools}" if system else tools


def _read(raw: str) -> object:
    """JSON, else Python literals; ValueError when neither reads."""
    raw = raw.strip()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        try:
            return ast.literal_eval(raw)  # literals only: never evaluates code
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            raise ValueError(f"cannot read the tool call as JSON; {NOT_A_CALL}") from None


def load_call(raw: str) -> tuple[str, dict]:
    """The (name, arguments) of a call's inner text; ValueError with the message the model is shown."""
    call = _read(raw)
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ValueError(NOT_A_CALL)
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):  # Qwen-Agent's tools read string arguments as JSON too
        arguments = _read(arguments)
    if not isinstance(arguments, dict):
        raise ValueError(f"the arguments of {call['name']} must be a JSON object")
    return call["name"], arguments


def history_turn(thought: str, name: str, arguments: dict) -> str:
    """An assistant turn as Qwen-Agent writes it back into the history: the text before the call, a newline
    where that text does not end with one, and the call re-serialised by `json.dumps`."""
    call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    block = f"{CALL_OPEN}\n{call}\n{CALL_CLOSE}"
    if not thought.strip():
        return block
    return thought + ("" if thought.endswith("\n") else "\n") + block


def image_index(index: int, num_observations: int | None) -> int:
    """An index into the conversation's images as a Python list reads it: a negative one counts from the end
    (when the number of images is known); ValueError with Python's message below the first image."""
    if index < 0 and num_observations is not None:
        index += num_observations + 1
    if index < 0:
        raise ValueError("list index out of range")
    return index
