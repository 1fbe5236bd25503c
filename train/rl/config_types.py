"""Every value of a run's config checked against verl's own config schema, naming the key, before verl runs.

verl types its config twice, and enforces neither: the dataclasses its sections become (a section's
`_target_`, or a field annotated with a config class: `actor_rollout_ref.rollout` → RolloutConfig, its
`multi_turn` → MultiTurnConfig) annotate their fields, and `ppo_trainer.yaml` gives every key a default of
its type. Hydra reads `trainer.total_epochs=abc` as the string 'abc', the dataclasses never compare a value
with its annotation, and the run fails on the cluster — at start-up, at the first update, after the first
rollout — often with a message that names no key ("'>' not supported between 'str' and 'int'").

Here a value passes when it fits its key's annotation or the type of verl's default for the key (verl's own
YAML sometimes disagrees with the annotation, e.g. a null default for an `int` field; both are accepted).
A key with a null default and no annotation is typed by `UNANNOTATED` (read from where verl uses it); the
legacy top-level reward keys verl migrates (`reward_model.*`, `custom_reward_function.*`, `sandbox_fusion.*`)
take the type of the key they migrate to. The keys the user set are reported before keys that only follow
them by interpolation (`rollout.prompt_length: ${data.max_prompt_length}`), so an error names what was set.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Literal, Optional, Union

from minio3_data.errors import BadInputError

MISSING = "???"  # OmegaConf's mandatory value, as to_container(throw_on_missing=False) leaves it

# Keys whose verl default is null and whose section has no config class, typed from their use in verl 0.9.1.
UNANNOTATED: dict[str, Any] = {
    "data.tokenizer": Optional[str],
    "data.gen_batch_size": Optional[int],  # trainer_base._next_train_batch: a multiple of it is fetched
    "data.val_batch_size": Optional[int],
    "data.seed": Optional[int],
    "data.tool_config_path": Optional[str],
    "data.function_tool_path": Optional[str],
    "data.custom_cls.path": Optional[str],
    "data.custom_cls.name": Optional[str],
    "actor_rollout_ref.ref.log_prob_micro_batch_size": Optional[int],
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": Optional[int],
    "actor_rollout_ref.model.lora.dtype": Optional[str],
    "actor_rollout_ref.model.lora.adapter_path": Optional[str],
    "critic.model.lora.dtype": Optional[str],
    "critic.model.lora.adapter_path": Optional[str],
    "reward.custom_reward_function.path": Optional[str],
    "trainer.total_training_steps": Optional[int],  # trainer_base: compared with global_steps
    "trainer.rollout_data_dir": Optional[str],
    "trainer.validation_data_dir": Optional[str],
    "trainer.resume_from_path": Optional[str],
    "trainer.checkpoint_callback_class": Optional[str],
    "trainer.default_hdfs_dir": Optional[str],
    "trainer.max_actor_ckpt_to_keep": Optional[int],
    "trainer.max_critic_ckpt_to_keep": Optional[int],
    "trainer.v1.sampler.custom_sampler.path": Optional[str],
    "trainer.v1.sampler.custom_sampler.name": Optional[str],
    "global_profiler.steps": Optional[list[int]],  # trainer_base: `global_steps in ...steps`
    "global_profiler.global_tool_config.nsys.worker_nsight_options.capture-range-end": Optional[str],
    "ray_kwargs.ray_init.num_cpus": Optional[int],
    "ray_kwargs.ray_init.runtime_env.py_executable": Optional[str],
    "ray_kwargs.timeline_json_file": Optional[str],
}
# Keys verl accepts in a second form its default does not show (its code normalises them).
WIDER: dict[str, Any] = {
    "data.train_files": Union[str, list[str]],
    "data.val_files": Union[str, list[str]],
    "trainer.logger": Union[str, list[str]],  # utils/tracking.py: a string is one backend
}
# Legacy top-level keys and the key each migrates to (experimental/reward_loop/reward_loop.py,
# migrate_legacy_reward_impl), longest prefix first.
LEGACY: tuple[tuple[str, str], ...] = (
    ("reward_model.reward_loop_module_path", "reward.reward_manager.module.path"),
    ("reward_model.reward_loop_class_name", "reward.reward_manager.module.name"),
    ("reward_model.reward_loop_source", "reward.reward_manager.source"),
    ("reward_model.reward_manager", "reward.reward_manager.name"),
    ("reward_model.num_workers", "reward.num_workers"),
    ("reward_model.model.path", "reward.reward_model.model_path"),
    ("reward_model.model.", "actor_rollout_ref.model."),  # not migrated: typed as any model config's keys
    ("reward_model.rollout.", "reward.reward_model.rollout."),
    ("reward_model.", "reward.reward_model."),
    ("custom_reward_function.", "reward.custom_reward_function."),
    ("sandbox_fusion.", "reward.sandbox_fusion."),
)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _config_class(hint: Any) -> type | None:
    """The config dataclass a field annotation names (directly or as Optional[...]), else None."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint
    if typing.get_origin(hint) in (Union, types.UnionType):
        found = [c for a in typing.get_args(hint) if (c := _config_class(a)) is not None]
        return found[0] if len(found) == 1 else None
    return None


def _target_class(node: Mapping[str, Any]) -> type | None:
    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        return None
    from hydra.utils import get_class

    try:
        cls = get_class(target)
    except Exception:  # an unimportable _target_ fails verl's own instantiation, checked after this
        return None
    return cls if dataclasses.is_dataclass(cls) else None


def annotations(tree: Mapping[str, Any], path: str = "", cls: type | None = None) -> dict[str, Any]:
    """Dotted key -> the annotation of its field in the config dataclass of its section."""
    cls = _target_class(tree) or cls
    hints = typing.get_type_hints(cls) if cls is not None else {}
    found: dict[str, Any] = {}
    for key, value in tree.items():
        hint = hints.get(str(key))
        if hint is not None and key != "_target_":
            found[_join(path, key)] = hint
        if isinstance(value, Mapping):
            found.update(annotations(value, _join(path, key), _config_class(hint)))
    return found


def nodes(tree: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every key, sections included, depth first."""
    for key, value in tree.items():
        yield _join(path, key), value
        if isinstance(value, Mapping):
            yield from nodes(value, _join(path, key))


def fits(value: Any, hint: Any) -> bool:
    """Whether `value` (plain YAML data: None, bool, int, float, str, list, dict) fits annotation `hint`."""
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if origin is Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, set, frozenset, Collection) or hint in (list, tuple):
        item = args[0] if args and (origin is not tuple or len(args) == 2 and args[1] is Ellipsis) else Any
        return isinstance(value, list) and all(fits(v, item) for v in value)
    if origin in (dict, Mapping) or hint is dict or _config_class(hint) is not None:
        return isinstance(value, dict)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return value in {m.value for m in hint} or value in hint.__members__
    return True  # an annotation with no YAML form to compare (a callable, a class): verl's own checks decide


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if hint is type(None):
        return "null"
    if origin is not None and args:
        return f"{origin.__name__}[{', '.join(_describe(a) for a in args)}]"
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def default_type(value: Any) -> Any:
    """The type a default value gives its key (None: no type)."""
    if value is None or value == MISSING:
        return None
    return type(value) if not isinstance(value, dict) else dict


def expected_types(defaults: Mapping[str, Any], tree: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted key -> the annotation its value must fit: its dataclass field's, or else its type in verl's
    `defaults` (the stock ppo_trainer, resolved), widened where verl's annotation and default disagree;
    `extra` types keys verl does not know (minio3's own). Keys typed by nothing are left out."""
    stock = dict(nodes(defaults))
    hints = {**annotations(defaults), **annotations(tree), **UNANNOTATED, **WIDER, **extra}
    expected: dict[str, Any] = {}
    for key in {*stock, *hints}:
        alias = next((new + key[len(old) :] for old, new in LEGACY if key.startswith(old)), None)
        hint = hints.get(key, hints.get(alias)) if alias else hints.get(key)
        default = default_type(stock.get(key))
        if default is None and hint is None and alias:
            default = default_type(stock.get(alias))
        options = [h for h in (hint, default) if h is not None]
        if options and key in stock and stock[key] is None:
            options.append(type(None))  # verl's own default
        if options:
            expected[key] = options[0] if len(options) == 1 else Union[tuple(options)]  # type: ignore[valid-type]
    return expected


def type_errors(tree: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """One line per key whose value does not fit its expected type, in config order."""
    errors = []
    for key, value in nodes(tree):
        hint = expected.get(key)
        if hint is not None and value != MISSING and not fits(value, hint):
            shown = "an empty value" if value == "" else f"{value!r} ({type(value).__name__})"
            wants_text = isinstance(value, (int, float)) and fits(str(value), hint)
            quote = f" (a string? quote it: {key}=\"'{value}'\")" if wants_text else ""
            errors.append(f"{key}: expected {_describe(hint)}, got {shown}{quote}")
    return errors


def check_types(
    tree: Mapping[str, Any], defaults: Mapping[str, Any], extra: Mapping[str, Any], first: Collection[str] = ()
) -> None:
    """A one-line BadInputError for the first value that fits no type verl gives its key; keys in `first`
    (the ones the user set, not derived by interpolation) are reported before the others."""
    errors = type_errors(tree, expected_types(defaults, tree, extra))
    if errors:
        errors.sort(key=lambda line: line.split(":", 1)[0] not in first)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadInputError(f"verl config: {errors[0]}{more}")


__all__ = ["annotations", "check_types", "expected_types", "fits", "nodes", "type_errors"]
