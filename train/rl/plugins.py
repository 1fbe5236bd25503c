"""One import registers every minio3 plug-in with verl's registries.

verl imports this module in every process it starts (the driver, the actor workers that run the policy loss,
the agent-loop workers) through the `verl.plugins` entry point in pyproject.toml: `import verl` loads every
entry point of that group (verl/__init__.py, VERL_USE_EXTERNAL_PLUGINS=auto by default). It logs a plug-in
that fails to import only at DEBUG, so tests/test_rl_plugins.py and `minio3 train-rl --dry-run` resolve every
name listed in REGISTERED through verl's own registries (train/rl/registries.py).

To add a plug-in: import its module here and list each name it registers under its kind in REGISTERED
(kinds: registries.RESOLVERS). The agent-loop half (train/rl/tool.py, parser.py, agent_loop.py, reward.py,
chat_template.py) adds its imports and names below, and the config keys its plug-ins need in `rollout_config`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from train.rl import objective

# --- plug-in modules (each registers itself on import) ---------------------------------------------------
# The agent-loop half adds its modules here, e.g.:
# from train.rl import agent_loop, parser

REGISTERED: dict[str, tuple[str, ...]] = {
    "adv_estimator": (objective.ESTIMATOR,),
    "policy_loss": (objective.POLICY_LOSS,),
    # "tool_parser": (parser.NAME,),
    # "agent_loop": (agent_loop.NAME,),
}


def rollout_config(
    protocol: str, judge: str, *, judge_base_urls: Sequence[str] = (), judge_api_key_env: str | None = None
) -> dict[str, Any]:
    """Config values (dotted verl key -> value) the agent-loop plug-ins need, laid over the launcher's own
    (train/rl/config.py): the agent loop (`actor_rollout_ref.rollout.agent.default_agent_loop`, also each
    data row's `agent_name`), the tool parser (`...multi_turn.format`), the chat template
    (`actor_rollout_ref.model.custom_chat_template`), the reward function
    (`reward.custom_reward_function.*`, with the `judge` spec in its `reward_kwargs`), and any tool config.
    `protocol` is the profile every turn is rendered in."""
    return {}


__all__ = ["REGISTERED", "rollout_config"]
