"""Milliseconds per zoom call inside the RL agent loop, on 4K and 8K originals: p50/p99, against naive baselines
measured in the same process.

One call is what a rollout worker does between two generations: our parser reads the turn (decode + the
protocol profile's parse), the zoom tool cuts and resizes the crop (ZoomSession: ZoomEnv on the process's
shared decoded-original cache), and verl's continuous-token builder renders the observation turn to token ids
(chat template + processor; the agent loop gives it our image-token counting processor). The trajectory is
bench/zoom.py's six zooms (nested crops, a return to the original), replayed by `--trajectories` trajectories
on one image, as a GRPO group does. Baselines, same parse and same geometry:
  - naive: the original decoded from its file on every call (a tool without the cache), our token rendering;
  - naive + stock render: that, and verl's stock rendering, which runs the full image processor (resize,
    normalise, patchify) on every crop only to count its tokens.
The processor is Qwen2.5-VL-7B's image configuration (patch 14, merge 2, 3,136-12,845,056 pixels) on the tiny
offline tokenizer of the tests (no model is downloaded); the released protocol's crop rule (crop, then NEAREST).

    .venv/bin/python bench/rl_tool.py                  # 3840x2160 and 7680x4320 generated photo-like scenes
    .venv/bin/python bench/rl_tool.py --trajectories 32
    .venv/bin/python bench/rl_tool.py --smoke          # tiny sizes: proves the bench runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from PIL import Image  # noqa: E402
from rl_stand_ins import ImageOnlyQwen25VLProcessor  # noqa: E402 (tests/rl_stand_ins.py: no video processor on CPU)
from smoke import parse_args  # noqa: E402 (bench/smoke.py)
from tiny_qwen25vl import build_tokenizer  # noqa: E402
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil  # noqa: E402
from verl.experimental.agent_loop.tool_parser import ToolParser  # noqa: E402
from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder  # noqa: E402
from zoom import TRAJECTORY, photo_like  # noqa: E402 (bench/zoom.py)

from minio3_data.images import OriginalCache, open_image  # noqa: E402
from minio3_data.profiles import DEFAULT as PROFILE  # noqa: E402
from minio3_data.protocol import render_turn  # noqa: E402
from minio3_data.render import conversation  # noqa: E402
from train.rl.actions import from_arguments  # noqa: E402
from train.rl.chat_template import CHAT_TEMPLATE  # noqa: E402
from train.rl.parser import parser_name  # noqa: E402
from train.rl.token_counting import counting_processor  # noqa: E402
from train.rl.zoom_session import ZoomSession  # noqa: E402

QWEN25_VL_7B_PIXELS = {"min_pixels": 3136, "max_pixels": 12845056}


class Rollout:
    """The per-call pieces of the agent loop, built once as a rollout worker builds them."""

    def __init__(self) -> None:
        tokenizer = build_tokenizer()
        tokenizer.chat_template = CHAT_TEMPLATE
        self.tokenizer = tokenizer
        self.processor = ImageOnlyQwen25VLProcessor(Qwen2VLImageProcessorPil(**QWEN25_VL_7B_PIXELS), tokenizer, CHAT_TEMPLATE)
        self.parser = ToolParser.get_tool_parser(parser_name(PROFILE), tokenizer)
        self.ours = create_continuous_token_builder(tokenizer, hf_model_type="qwen2_5_vl", processor=self.processor)
        self.ours.processor = counting_processor(self.processor)  # as ZoomAgentLoop installs it
        self.stock = create_continuous_token_builder(tokenizer, hf_model_type="qwen2_5_vl", processor=self.processor)
        self.loop = asyncio.new_event_loop()
        chat = conversation("What colour is the small sign on the far building?", ["red", "blue"], [], protocol=PROFILE)
        self.prompt = [{"role": "system", "content": chat[0].text},
                       {"role": "user", "content": [{"type": "image", "image": "x"}, {"type": "text", "text": "\nQ"}]}]  # fmt: skip
        self.turns = [self.tokenizer.encode(render_turn("The sign is too small; zoom in.", z), add_special_tokens=False)
                      for z in TRAJECTORY]  # fmt: skip

    def parse(self, t: int) -> str:
        _, calls = self.loop.run_until_complete(self.parser.extract_tool_calls(self.turns[t]))
        return from_arguments(json.loads(calls[0].arguments))

    def render(self, builder: Any, crop: Image.Image, text: str) -> list[int]:
        assistant = {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "zoom", "arguments": {}}}]}  # fmt: skip
        before = [*self.prompt, assistant]
        tool = {"role": "tool", "content": [{"type": "image", "image": crop}, {"type": "text", "text": text}]}
        return builder.merge_context_tokens(before, [*before, tool], [0] * 8).token_ids


def naive_crop(path: Path, session: ZoomSession, t: int) -> Image.Image:
    """The same crop from a fresh decode of the file (the box ZoomEnv composed, the release's crop rule)."""
    obs = session.env.observations[-1]
    assert obs.index == t + 1
    return PROFILE.display.show_crop(open_image(path), obs.box)


def pixel_pass_ms(rollout: Rollout, session: ZoomSession) -> float:
    """verl's postprocessing of one finished trajectory: the full processor over all its images, for the
    pixel values the trainer needs (AgentLoopWorker._compute_multi_modal_inputs), once per trajectory."""
    images = [obs.image for obs in session.env.observations]
    text = "<|vision_start|><|image_pad|><|vision_end|>" * len(images)
    t = time.perf_counter()
    rollout.processor(text=[text], images=images, return_tensors="pt")
    return (time.perf_counter() - t) * 1e3


def call_times(rollout: Rollout, path: Path, trajectories: int, cache: OriginalCache) -> dict[str, list[float]]:
    """Per-call milliseconds: ours (and its parts), naive, naive + stock render; interleaved per call."""
    out: dict[str, list[float]] = {k: [] for k in ("ours", "parse", "crop", "render", "naive", "naive+stock", "pixels")}
    clock = time.perf_counter
    for _ in range(trajectories):
        session = ZoomSession(path, PROFILE, cache=cache)
        session.first_view()  # at the trajectory's start (the prompt), not in a zoom call
        for t in range(len(TRAJECTORY)):
            t0 = clock()
            turn = rollout.parse(t)
            t1 = clock()
            step = session.step(t, turn)
            t2 = clock()
            ids = rollout.render(rollout.ours, step.image, step.text)
            t3 = clock()
            out["parse"].append((t1 - t0) * 1e3)
            out["crop"].append((t2 - t1) * 1e3)
            out["render"].append((t3 - t2) * 1e3)
            out["ours"].append((t3 - t0) * 1e3)
            t0 = clock()
            rollout.parse(t)
            crop = naive_crop(path, session, t)
            naive_ids = rollout.render(rollout.ours, crop, step.text)
            t1 = clock()
            rollout.render(rollout.stock, crop, step.text)
            t2 = clock()
            assert naive_ids == ids
            out["naive"].append((t1 - t0) * 1e3)
            out["naive+stock"].append((t2 - t0) * 1e3)
    out["pixels"] = [pixel_pass_ms(rollout, session)]
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if q < 100 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trajectories", type=int, default=16, help="trajectories per image (a GRPO group)")
    parser.add_argument("--sizes", nargs="+", default=["3840x2160", "7680x4320"], help="generated scenes, WxH")
    args = parse_args(parser, trajectories=2, sizes=["640x360"])
    warnings.filterwarnings("ignore")
    rollout = Rollout()
    print(f"{len(TRAJECTORY)} zoom calls x {args.trajectories} trajectories per image, protocol {PROFILE.name}")
    print(f"{'':14}{'':26}{'p50 ms':>8}{'p99 ms':>8}{'p50 / ours':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            path = Path(tmp) / f"scene_{size}.jpg"
            photo_like(w, h).save(path, quality=90)
            cache = OriginalCache()
            t = time.perf_counter()
            cache.get(path)
            decode_ms = (time.perf_counter() - t) * 1e3
            call_times(rollout, path, 1, cache)  # warm-up: allocator, template compilation
            times = call_times(rollout, path, args.trajectories, cache)
            ours = statistics.median(times["ours"])
            rows: list[tuple[str, list[float]]] = [
                ("ours (parse+crop+render)", times["ours"]), ("  parse", times["parse"]),
                ("  crop + resize", times["crop"]), ("  render (token ids)", times["render"]),
                ("naive: decode per call", times["naive"]), ("naive + stock render", times["naive+stock"]),
            ]  # fmt: skip
            for k, (label, values) in enumerate(rows):
                head = size if k == 0 else ""
                ratio = f"{statistics.median(values) / ours:11.1f}x" if label.startswith("naive") else ""
                print(f"{head:<14}{label:<26}{statistics.median(values):8.1f}{p(values, 99):8.1f}{ratio}")
            print(f"{'':14}once per process and image: the original's decode, {decode_ms:.0f} ms")
            print(f"{'':14}once per trajectory: verl's pixel pass over its {len(TRAJECTORY) + 1} images, "
                  f"{times['pixels'][0]:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
