"""What the RL tests put in place of a GPU: a tiny offline Qwen2.5-VL or Qwen3-VL (tokenizer, processor, config,
no weights), a scripted stand-in for verl's LLM server, and verl's own AgentLoopWorker, RLHFDataset and reward
worker, composed from verl's own config with our plug-ins' settings (train/rl/plugins.rollout_config).

Everything else is verl's real code. The two stand-ins are the narrowest rl_engines.md §1(h) names:
  - the LLM server: `generate(...)` returns a `TokenOutput` of scripted token ids (no vLLM);
  - the processor factory: transformers' `Qwen2_5_VLProcessor` (and `Qwen3VLProcessor`) refuses a missing video
    processor, and its video processor needs torchvision, which has no CPU build here, so verl's `hf_processor`
    would return None (with only a warning). The stand-in is the same processor class (by the model dir's
    model_type) without the video slot, with verl's `get_rope_index` binding. Used on CPU only; real runs load the checkpoint's processor.
Import this module only after `needs_verl.require_verl()`.
"""

from __future__ import annotations

import asyncio
import copy
import os
import types
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import verl
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image
import tiny_qwen3vl
import tiny_qwen25vl
from transformers import AutoConfig, AutoTokenizer, Qwen2_5_VLProcessor, Qwen3VLProcessor
from transformers.models.qwen2_5_vl import Qwen2_5_VLModel
from transformers.models.qwen3_vl import Qwen3VLModel
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.processing_utils import ProcessorMixin
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
from verl.protocol import DataProto
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn
from verl.workers.rollout.replica import TokenOutput

from minio3_data.families import get_family
from minio3_data.profiles import get_profile
from train.rl.plugins import rollout_config


class ImageOnlyQwen25VLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor without the video slot (see the module docstring): images and text as upstream."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **_: Any):
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        self.video_processor = None
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


class ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
    """Qwen3-VL's processor without the video slot (see the module docstring): images and text as upstream."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **_: Any):
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        self.vision_start_token, self.vision_end_token = "<|vision_start|>", "<|vision_end|>"
        self.vision_start_token_id = tokenizer.convert_tokens_to_ids(self.vision_start_token)
        self.vision_end_token_id = tokenizer.convert_tokens_to_ids(self.vision_end_token)
        self.video_processor = None
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


# config.json model_type -> the image-only processor and the model class whose rope index verl binds
PROCESSORS = {"qwen2_5_vl": (ImageOnlyQwen25VLProcessor, Qwen2_5_VLModel), "qwen3_vl": (ImageOnlyQwen3VLProcessor, Qwen3VLModel)}
TINY = {"qwen2.5-vl": tiny_qwen25vl, "qwen3-vl": tiny_qwen3vl}  # model family -> its tiny builder


def load_processor(path: str | os.PathLike, **_: Any) -> Any:
    """Stand-in for verl's `hf_processor`: the checkpoint's tokenizer and image processor, rope index bound as
    verl binds it."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = AutoConfig.from_pretrained(path)
    cls, model_cls = PROCESSORS[config.model_type]
    processor = cls(Qwen2VLImageProcessorPil.from_pretrained(path), tokenizer, tokenizer.chat_template)
    processor.config = config
    processor.get_rope_index = types.MethodType(model_cls.get_rope_index, processor)
    processor.get_vision_position_ids = types.MethodType(model_cls.get_vision_position_ids, processor)
    return processor


def write_tiny_model(out: Path, family: str = "qwen2.5-vl", pixels: dict[str, int] | None = None) -> Path:
    """Tokenizer, image processor (`pixels`: its bounds, default the tiny ones) and config of the tiny model of
    `family` (no weights: the rollout never runs it)."""
    tiny = TINY[family]
    tokenizer = tiny.build_tokenizer()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    tiny.image_processor(pixels or tiny.IMAGE_PIXELS, pil=True).save_pretrained(out)
    tiny.model_config(tokenizer).save_pretrained(out)
    return out


def compose_config(model: Path, *, protocol: str = "released", response_length: int = 4096, judge: str = "rule",
                   reward_kwargs: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
                   family: str = "qwen2.5-vl") -> Any:  # fmt: skip
    """verl's own `ppo_trainer` config (Hydra compose, resolved) with our plug-ins' settings laid over it."""
    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        cfg = compose(
            config_name="ppo_trainer",
            overrides=[
                f"actor_rollout_ref.model.path={model}",
                "actor_rollout_ref.rollout.name=vllm",
                "actor_rollout_ref.rollout.prompt_length=8192",
                f"actor_rollout_ref.rollout.response_length={response_length}",
                "data.filter_overlong_prompts=false",
                *overrides,
            ],
        )
    for key, value in rollout_config(get_profile(protocol), judge, family=get_family(family)).items():
        OmegaConf.update(cfg, key, value, force_add=True)
    if reward_kwargs:
        OmegaConf.update(cfg, "reward.custom_reward_function.reward_kwargs", dict(reward_kwargs), merge=True)
    OmegaConf.resolve(cfg)
    return cfg


@dataclass(frozen=True)
class Unfinished:
    """A turn cut before its end-of-turn token (generation stopped by a length limit)."""

    text: str


Reply = str | Unfinished
Policy = Callable[[str, int], Reply]  # (the prompt's question, assistant turn index) -> that turn


@dataclass
class Request:
    question: str
    turn: int
    images: list[Image.Image]


class ScriptedServer:
    """verl's LLM server, scripted: turn t of the trajectory whose prompt holds `question` is `policy(question,
    t)`, returned as the tiny tokenizer's ids plus the end-of-turn token (as a model fine-tuned on our SFT data
    ends its turns), or without it for an `Unfinished` turn. Records each request's images. (A plain class:
    hydra, which builds the agent loop, would turn a dataclass argument into a config.)"""

    def __init__(self, policy: Policy, questions: list[str], tokenizer: Any = None) -> None:
        self.policy = policy
        self.questions = questions
        self.tokenizer = tokenizer
        self.requests: list[Request] = []

    def turn_ids(self, reply: Reply) -> list[int]:
        text = reply.text if isinstance(reply, Unfinished) else reply
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return ids if isinstance(reply, Unfinished) else [*ids, self.tokenizer.convert_tokens_to_ids("<|im_end|>")]

    async def generate(self, *, prompt_ids: list[int], image_data: list[Any] | None = None, **_: Any) -> TokenOutput:
        text = self.tokenizer.decode(prompt_ids)
        question = next(q for q in self.questions if q in text)
        turn = text.count("<|im_start|>assistant") - 1
        self.requests.append(Request(question, turn, list(image_data or [])))
        ids = self.turn_ids(self.policy(question, turn))
        # the weight version that made the turn, as verl's LLMServerClient records it (llm_server.py): the
        # policy before the first update
        version = {"global_steps": 0, "min_global_steps": 0, "max_global_steps": 0}
        return TokenOutput(token_ids=ids, log_probs=None, stop_reason="completed", num_preempted=0, extra_fields=version)

    def images(self, question: str) -> list[Image.Image]:
        """The images the last request of `question`'s trajectory carried."""
        return [r for r in self.requests if r.question == question][-1].images


class LocalRewardHandle:
    """verl's reward-loop worker, in process, behind the `handle.compute_score.remote(data)` call the agent-loop
    worker makes on the Ray actor (the streaming reward path a custom reward function takes). Built inside the
    running event loop on first use, as the actor's loop would be the one it keeps."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.worker: RewardLoopWorker | None = None
        self.compute_score = types.SimpleNamespace(remote=self._compute_score)

    async def _compute_score(self, data: DataProto) -> dict[str, Any]:
        if self.worker is None:
            self.worker = RewardLoopWorker(self.cfg)
        return await self.worker.compute_score(copy.deepcopy(data))  # Ray sends a copy: verl edits it in place


def make_worker(cfg: Any, server: ScriptedServer, monkeypatch: Any) -> AgentLoopWorker:
    """verl's AgentLoopWorker (the plain class, not the Ray actor) on the stand-in server and processor, with
    the reward computed by verl's reward-loop worker."""
    import verl.workers.config.model as model_config_module

    monkeypatch.setattr(model_config_module, "hf_processor", load_processor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        worker = AgentLoopWorker(cfg, llm_client=server, reward_loop_worker_handles=[LocalRewardHandle(cfg)])
    server.tokenizer = worker.tokenizer
    return worker


def dataset_rows(cfg: Any, worker: AgentLoopWorker, parquet: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a train/rl/data.py parquet as verl's RLHFDataset hands them to the rollout."""
    dataset = RLHFDataset(data_files=[str(parquet)], tokenizer=worker.tokenizer, config=cfg.data, processor=worker.processor)
    return [dataset[i] for i in range(len(dataset))]


def run_rows(worker: AgentLoopWorker, rows: list[dict[str, Any]], *, validate: bool = False) -> DataProto:
    """One rollout step over `rows` (collated as verl's trainer collates them)."""
    data = DataProto.from_single_dict(collate_fn(rows))
    data.meta_info["validate"] = validate
    return asyncio.run(worker.generate_sequences(data))


def response_mask(out: DataProto, i: int) -> list[int]:
    """Row `i`'s response mask over its real (unpadded) response tokens."""
    prompt_len = out.batch["prompts"].shape[1]
    attention = out.batch["attention_mask"][i, prompt_len:].bool()
    return out.batch["response_mask"][i][attention].tolist()


def runs(mask: list[int]) -> list[tuple[int, int]]:
    """Run-length encoding: [(value, count), ...]."""
    out: list[tuple[int, int]] = []
    for v in mask:
        if out and out[-1][0] == v:
            out[-1] = (v, out[-1][1] + 1)
        else:
            out.append((v, 1))
    return out


def sequence_ids(out: DataProto, i: int) -> list[int]:
    """Row `i`'s prompt and response ids without padding."""
    return out.batch["input_ids"][i][out.batch["attention_mask"][i].bool()].tolist()


def grid(out: DataProto, i: int) -> torch.Tensor:
    return out.non_tensor_batch["multi_modal_inputs"][i]["image_grid_thw"]
