"""Compose a run's config with verl's own Hydra config and checks, and resolve every plug-in it names — on CPU,
in seconds, before any GPU is asked for (rl_engines.md §1(f)).

verl's `validate_config` and its config dataclasses catch batch sizes that do not divide, unknown
loss_agg_modes and misspelled keys, but not a value of the wrong type (`trainer.total_epochs=abc`), a loss or
estimator name that is not registered, nor a plug-in that failed to import (logged at DEBUG only): those
surface as a crash on the cluster. So every value is type-checked against verl's schema first
(config_types.py), every name is looked up in verl's own registries, as its trainer and workers will look it
up, and verl's trainer is constructed once, as `main_ppo` starts it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from train.rl.config import CONFIG_NAME
from train.rl.registries import resolve

ENTRY_POINT_GROUP = "verl.plugins"
PLUGINS_MODULE = "train.rl.plugins"
MESSAGE_CHARS = 300
VLLM_MAX_LORA_RANK = 512  # the largest of vLLM's MaxLoRARanks (verl's own list where vLLM is not importable)


def short(e: BaseException) -> str:
    """A verl/Hydra/OmegaConf error as one line: its message lines (and its cause's) joined, trimmed."""
    parts: list[str] = []
    link: BaseException | None = e
    while link is not None and len(parts) < 4:
        parts += [
            line.strip() for line in str(link).splitlines() if line.strip() and line.strip() not in parts
        ]
        link = link.__cause__ or link.__context__
    text = " | ".join(parts) or e.__class__.__name__
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def _compose(config_dir: str, name: str, overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name=name, overrides=overrides)


def compose_config(run_dir: Path, overrides: list[str]) -> Any:
    """verl's ppo_trainer + the run's primary config + the user's overrides, composed by Hydra and resolved."""
    from omegaconf import OmegaConf

    try:
        cfg = _compose(str(run_dir), CONFIG_NAME, overrides)
        OmegaConf.resolve(cfg)
    except Exception as e:  # Hydra's override parser and composition, OmegaConf's interpolation
        raise BadInputError(f"verl config: {short(e)}") from None
    return cfg


@functools.cache
def verl_defaults() -> dict[str, Any]:
    """verl's own ppo_trainer config as it ships (resolved; mandatory values left as '???'): every key's
    default, the other half of verl's schema next to its config dataclasses."""
    import verl
    from omegaconf import OmegaConf

    cfg = _compose(str(Path(verl.__file__).parent / "trainer" / "config"), "ppo_trainer", [])
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]


def overridden_keys(overrides: list[str]) -> set[str]:
    """The dotted keys Hydra overrides name (`key=v`, `+key=v`, `++key=v`, `~key`)."""
    return {o.split("=", 1)[0].lstrip("+~") for o in overrides}


def check_value_types(cfg: Any, overrides: list[str]) -> None:
    """Every value against verl's schema (config_types.py) and minio3's own keys' types, naming the key; the
    keys the user overrode are reported first."""
    from omegaconf import OmegaConf

    from train.rl.config import minio3_key_types
    from train.rl.config_types import check_types

    tree = OmegaConf.to_container(cfg, resolve=True)
    check_types(tree, verl_defaults(), minio3_key_types(), first=overridden_keys(overrides))  # type: ignore[arg-type]


def validate(cfg: Any) -> None:
    """verl's own checks: validate_config (batch divisibility, micro-batch settings, the actor's dataclass) and
    the rollout and algorithm dataclasses (multi-turn and sampling settings)."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    from train.rl.objective import GROUP_SIZE_KEY

    try:
        checked = _lora_rank_checked_here(cfg)
        # it prints a banner on success and warns that GRPO runs without a critic, which is the point
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            validate_config(checked, need_reference_policy(checked), need_critic(checked))
        for section in (cfg.actor_rollout_ref.rollout, _without(cfg.algorithm, GROUP_SIZE_KEY)):
            omega_conf_to_dataclass(section)
    except BadInputError:
        raise
    except Exception as e:  # AssertionError, ValueError, hydra's InstantiationException
        raise BadInputError(f"verl config: {short(e)}") from None


def _lora_rank_checked_here(cfg: Any) -> Any:
    """The config for verl's validate_config. For a LoRA run on vLLM it imports verl's vLLM rollout to look the
    rank up in vLLM's allowed ranks, which fails where vLLM is not installed (a CPU machine, the dry run): there
    the rank is checked here against vLLM's limit, and verl checks a copy without it."""
    import copy
    import importlib.util

    model = cfg.actor_rollout_ref.model
    rank = int(model.get("lora", {}).get("rank", 0) or 0) or int(model.get("lora_rank", 0) or 0)
    if rank <= 0 or cfg.actor_rollout_ref.rollout.name != "vllm" or importlib.util.find_spec("vllm") is not None:
        return cfg
    if rank > VLLM_MAX_LORA_RANK:
        raise BadInputError(
            f"actor_rollout_ref.model.lora_rank={rank}: vLLM serves LoRA ranks up to {VLLM_MAX_LORA_RANK}"
        )
    checked = copy.deepcopy(cfg)
    checked.actor_rollout_ref.model.lora_rank = 0
    if "lora" in checked.actor_rollout_ref.model:
        checked.actor_rollout_ref.model.lora.rank = 0
    return checked


def _without(section: Any, key: str) -> Any:
    """A copy of a config section without minio3's `key` (verl's dataclass for it has no such field)."""
    from omegaconf import OmegaConf

    return OmegaConf.create({k: v for k, v in OmegaConf.to_container(section).items() if k != key})


def build_trainer(cfg: Any) -> None:
    """verl's trainer constructor on a copy of the config, as `main_ppo` runs it first thing: it builds the
    replay buffer and checks the group filter, the sampler and the mode's own settings (and, for minio3's
    trainers, the tool-use collapse alarm's settings), which nothing else checks before the cluster."""
    import copy

    from verl.trainer.ppo.v1 import get_trainer_cls

    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            get_trainer_cls(str(cfg.trainer.v1.trainer_mode))(copy.deepcopy(cfg))
    except BadInputError:
        raise
    except Exception as e:  # ValueError, AssertionError from verl's constructors
        raise BadInputError(f"verl trainer {cfg.trainer.v1.trainer_mode}: {short(e)}") from None


def _agent_loop_yaml(cfg: Any) -> dict[str, str]:
    """Agent loops declared in `agent.agent_loop_config_path` (name -> _target_), which verl's workers register
    when they start rather than at import."""
    from omegaconf import OmegaConf

    path = cfg.actor_rollout_ref.rollout.agent.get("agent_loop_config_path")
    if not path:
        return {}
    try:
        return {str(entry.name): str(entry._target_) for entry in OmegaConf.load(path)}
    except Exception as e:
        raise BadInputError(f"agent_loop_config_path {path}: {short(e)}") from None


def check_entry_point() -> None:
    """verl's processes import our plug-ins only through the entry point an install of minio3 declares."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.value == PLUGINS_MODULE]
    if not found:
        raise BadInputError(
            f"no {ENTRY_POINT_GROUP} entry point for {PLUGINS_MODULE}: verl's workers would not load minio3's "
            "plug-ins; reinstall minio3 (pip install -e '.[rl]')"
        )


def resolve_plugins(cfg: Any, registered: dict[str, tuple[str, ...]]) -> list[str]:
    """Look up every name the config uses, and every name in `registered`, in verl's registries; load the
    reward function and the tools as verl will. Returns "kind name" for each one resolved."""
    from hydra.utils import get_class

    rollout = cfg.actor_rollout_ref.rollout
    used = {
        ("adv_estimator", str(cfg.algorithm.adv_estimator)),
        ("policy_loss", str(cfg.actor_rollout_ref.actor.policy_loss.loss_mode)),
        ("tool_parser", str(rollout.multi_turn.format)),
        ("reward_manager", str(cfg.reward.reward_manager.name)),
        ("trainer", str(cfg.trainer.v1.trainer_mode)),
    }
    used |= {(kind, name) for kind, names in registered.items() for name in names}
    yaml_loops = _agent_loop_yaml(cfg)
    loop = str(rollout.agent.default_agent_loop)
    if loop not in yaml_loops:
        used.add(("agent_loop", loop))
    for kind, name in sorted(used):
        resolve(kind, name)
    resolved = [f"{kind} {name}" for kind, name in sorted(used)]
    for name, target in yaml_loops.items():
        try:
            get_class(target)
        except Exception as e:
            raise BadInputError(f"agent loop {name!r}: {target} does not import ({short(e)})") from None
        resolved.append(f"agent_loop {name}")
    resolved += _load_reward_and_tools(cfg)
    return resolved


def _load_reward_and_tools(cfg: Any) -> list[str]:
    from verl.trainer.ppo.reward import get_custom_reward_fn

    loaded = []
    fn = cfg.reward.custom_reward_function
    if fn.get("path"):
        try:
            get_custom_reward_fn(cfg)
        except Exception as e:
            raise BadInputError(f"reward function {fn.path}:{fn.name}: {short(e)}") from None
        loaded.append(f"reward_function {fn.path}:{fn.name}")
    tools = cfg.actor_rollout_ref.rollout.multi_turn.get("tool_config_path")
    if tools:
        from verl.tools.tool_registry import initialize_tools_from_config

        try:
            loaded += [f"tool {t.name}" for t in initialize_tools_from_config(tools)]
        except Exception as e:
            raise BadInputError(f"tool config {tools}: {short(e)}") from None
    return loaded


__all__ = [
    "build_trainer", "check_entry_point", "check_value_types", "compose_config", "overridden_keys", "resolve_plugins",
    "short", "validate", "verl_defaults",
]  # fmt: skip
