"""A real `minio3 eval --protocol NAME` against a loopback policy that speaks a peer's convention, and what the
tests of peer profiles read back from it: each request's messages and images, the trajectories, the results."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import polars as pl
from loopback_teacher import LoopbackTeacher, Policy, RequestView
from PIL import Image
from typer.testing import CliRunner

from cli import app
from minio3_data.records import ProbeItem, write_items

runner = CliRunner()
KITE, SIGN = "What colour is the kite?", "Which animal is on the sign?"


def question_of(view: RequestView) -> str:
    """The text of the first user message (the question, with whatever the profile adds to it)."""
    return "".join(view.messages[1][1])


def turn_of(view: RequestView) -> int:
    """Assistant turns already taken (evaluations put no exemplars in context)."""
    return sum(role == "assistant" for role, _, _ in view.messages)


def dataset(root: Path, size: tuple[int, int]) -> Path:
    """Two open questions on one noise image of `size`: the kite (answer "red") and the sign ("dog")."""
    (root / "images").mkdir(parents=True)
    Image.effect_noise(size, 64).convert("RGB").save(root / "images" / "a.png")
    common = {"width": size[0], "height": size[1], "target_bbox": [10.0, 10.0, 50.0, 50.0]}
    write_items(root / "test.parquet", [
        ProbeItem("kite", "images/a.png", KITE, "red", **common),
        ProbeItem("sign", "images/a.png", SIGN, "dog", **common),
    ])  # fmt: skip
    return root


def run(protocol: str, policy: Policy, data: Path, out: Path, budgets: str) -> list[list[dict[str, Any]]]:
    """`minio3 eval` with k = 2; the kite's requests (their `messages`), shortest first."""
    with LoopbackTeacher(policy) as srv:
        result = runner.invoke(app, [
            "eval", "--dataset", str(data), "--out", str(out), "--protocol", protocol, "--teacher", "openai",
            "--base-url", srv.openai_url, "--model", "peer", "--api-key-env", "NONE", "--k", "2",
            "--max-turns", budgets, "--concurrency", "2",
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        kite = [r.body["messages"] for r in srv.requests if r.view and question_of(r.view).startswith(KITE)]
    return sorted(kite, key=len)


def image_sizes(messages: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """The size of every image a request carries, in order."""
    return [
        Image.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",", 1)[1]))).size
        for m in messages if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image_url"
    ]  # fmt: skip


def kite_trajectory(out: Path) -> dict[str, Any]:
    return pl.read_parquet(out / "trajectories.parquet").filter(pl.col("item_id") == "kite").row(0, named=True)


def avg_at_k(out: Path) -> dict[str, float]:
    """Avg@k of all questions by budget, and the protocol the results record."""
    results = json.loads((out / "results.json").read_text())
    return {"protocol": results["protocol"]} | {
        b: r["avg_at_k"] for b, r in results["groups"]["all"]["by_budget"].items()
    }
