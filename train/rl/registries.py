"""Look a plug-in name up in verl's own registry for its kind, as verl itself will at run time.

verl imports plug-ins quietly: a module that fails to import is logged at DEBUG and the run only fails much
later (or, for an estimator, at the first advantage computation on a GPU cluster). The dry run and the tests
resolve every name here instead, through the same lookups verl's trainer and workers use.
"""

from __future__ import annotations

from collections.abc import Callable

from minio3_data.errors import BadInputError


def _adv_estimator(name: str) -> object:
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    return get_adv_estimator_fn(name)


def _policy_loss(name: str) -> object:
    from verl.trainer.ppo.core_algos import get_policy_loss_fn

    return get_policy_loss_fn(name)


def _tool_parser(name: str) -> object:
    from verl.experimental.agent_loop.tool_parser import ToolParser

    # get_tool_parser(name, tokenizer) would build one, which needs a tokenizer; its registry is a dict
    if name not in ToolParser._registry:
        raise ValueError(f"Unknown tool parser: {name}")
    return ToolParser._registry[name]


def _agent_loop(name: str) -> object:
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    if name not in _agent_loop_registry:
        raise ValueError(f"Agent loop {name} not registered")
    return _agent_loop_registry[name]


def _trainer(name: str) -> object:
    from verl.trainer.ppo.v1 import get_trainer_cls

    return get_trainer_cls(name)


def _reward_manager(name: str) -> object:
    from verl.experimental.reward_loop.reward_manager.registry import get_reward_manager_cls

    return get_reward_manager_cls(name)


RESOLVERS: dict[str, Callable[[str], object]] = {
    "adv_estimator": _adv_estimator,
    "policy_loss": _policy_loss,
    "tool_parser": _tool_parser,
    "agent_loop": _agent_loop,
    "reward_manager": _reward_manager,
    "trainer": _trainer,
}


def resolve(kind: str, name: str) -> object:
    """What verl's registry for `kind` holds under `name`; a one-line BadInputError when it holds nothing."""
    if kind not in RESOLVERS:
        raise BadInputError(f"unknown plug-in kind {kind!r}; known: {', '.join(RESOLVERS)}")
    try:
        return RESOLVERS[kind](name)
    except (ValueError, KeyError, AssertionError) as e:
        raise BadInputError(
            f"{kind} {name!r} is not registered with verl ({str(e).splitlines()[0][:160]}); "
            "is minio3 installed with its rl extra (pip install -e '.[rl]')?"
        ) from None


__all__ = ["RESOLVERS", "resolve"]
