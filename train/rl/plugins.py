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
from pathlib import Path
from typing import Any

from minio3_data import families
from minio3_data.families import ModelFamily
from minio3_data.profiles import ProtocolProfile
from train.rl import agent_loop, chat_template, objective, parser, trainer

# --- plug-in modules (each registers itself on import) ---------------------------------------------------
# agent_loop registers the `minio3_zoom` loop and, through parser, one `<grounding>` tool parser per protocol
# profile; trainer registers verl's v1 trainers with minio3's step metrics (`minio3_<verl mode>`); the loop's
# zoom tool (train/rl/tool.py) is brought by the loop itself, and the reward function is loaded by
# verl from its file path (REWARD_FILE), so neither needs a registry.

REGISTERED: dict[str, tuple[str, ...]] = {
    "adv_estimator": (objective.ESTIMATOR,),
    "policy_loss": (objective.POLICY_LOSS,),
    "tool_parser": tuple(parser.PARSERS),
    "agent_loop": (agent_loop.AGENT_LOOP,),
    "trainer": trainer.TRAINERS,
}
REWARD_FILE = Path(__file__).with_name("reward.py")
REWARD_FUNCTION = "compute_score"


AGENT_LOOP_KEY = "actor_rollout_ref.rollout.agent.default_agent_loop"  # also each data row's `agent_name`


def rollout_config(
    protocol: ProtocolProfile, judge: str, *, judge_base_urls: Sequence[str] = (), judge_api_key_env: str | None = None,
    family: ModelFamily = families.DEFAULT,
) -> dict[str, Any]:
    """Config values (dotted verl key -> value) the plug-ins need, laid over the launcher's own
    (train/rl/config.py): the agent loop (`actor_rollout_ref.rollout.agent.default_agent_loop`, also each
    data row's `agent_name`), the trainer with step metrics (`trainer.v1.trainer_mode`), the tool parser
    (`...multi_turn.format`), the chat template
    (`actor_rollout_ref.model.custom_chat_template`, the one of the policy's model `family`), the reward function
    (`reward.custom_reward_function.*`, with the `judge` spec in its `reward_kwargs`), and any tool config.
    `protocol` is the profile every turn is rendered in (the parser's name carries it to the agent loop);
    `judge` is "rule" or "openai:MODEL" / "gemini:MODEL" on `judge_base_urls` with the key in
    `judge_api_key_env`. The zoom tool needs no tool config: the loop brings it."""
    reward_kwargs: dict[str, Any] = {"judge": judge}
    if judge_base_urls:
        reward_kwargs["judge_base_urls"] = list(judge_base_urls)
    if judge_api_key_env:
        reward_kwargs["judge_api_key_env"] = judge_api_key_env
    return {
        AGENT_LOOP_KEY: agent_loop.AGENT_LOOP,
        "actor_rollout_ref.rollout.multi_turn.enable": True,
        "trainer.v1.trainer_mode": trainer.TRAINER,
        "actor_rollout_ref.rollout.multi_turn.format": parser.parser_name(protocol),
        "actor_rollout_ref.model.custom_chat_template": chat_template.chat_template(family),
        "reward.custom_reward_function.path": str(REWARD_FILE),
        "reward.custom_reward_function.name": REWARD_FUNCTION,
        "reward.custom_reward_function.reward_kwargs": reward_kwargs,
    }


__all__ = ["AGENT_LOOP_KEY", "REGISTERED", "REWARD_FILE", "REWARD_FUNCTION", "rollout_config"]
