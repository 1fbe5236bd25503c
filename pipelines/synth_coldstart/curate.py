"""Curation: from every finished attempt to the kept set (correct only), with polars.

Deterministic for a given set of attempts: candidates are ordered by (item position in the dataset,
sample index), then `--max-per-item` and the target pattern mix are applied, then `--target` truncates.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from minio3_data.records import Trajectory

from .patterns import tag_patterns

# The pattern a trajectory counts under when balancing: its rarest, most instructive behaviour first.
PRIMARY_ORDER = ("backtrack", "verification", "depth_first", "error_recovery", "direct")


def primary_pattern(tags: list[str]) -> str:
    return next((p for p in PRIMARY_ORDER if p in tags), "direct")


@dataclass
class CurationResult:
    kept: list[Trajectory]
    candidates: int  # correct, answered trajectories before per-item / mix / target limits


def curate(
    attempts: list[Trajectory],
    item_order: dict[str, int],
    *,
    max_per_item: int | None = None,
    mix: dict[str, float] | None = None,
    target: int | None = None,
) -> CurationResult:
    for t in attempts:
        t.patterns = tag_patterns(t)
    correct = [t for t in attempts if t.correct]
    if not correct:
        return CurationResult([], 0)
    df = pl.DataFrame(
        {
            "row": list(range(len(correct))),
            "item_rank": [item_order.get(t.item_id, len(item_order)) for t in correct],
            "sample_index": [t.sample_index for t in correct],
            "primary": [primary_pattern(t.patterns) for t in correct],
        }
    ).sort(["item_rank", "sample_index"])
    if max_per_item:
        df = df.filter(pl.int_range(pl.len()).over("item_rank") < max_per_item)
    if mix and target:
        total = sum(mix.values())
        quotas = {p: int(round(target * w / total)) for p, w in mix.items()}
        ranked = df.with_columns(pl.int_range(pl.len()).over("primary").alias("rank_in_pattern"))
        quota = pl.col("primary").replace_strict(quotas, default=0, return_dtype=pl.Int64)
        chosen = ranked.filter(pl.col("rank_in_pattern") < quota)
        rest = ranked.join(chosen.select("row"), on="row", how="anti")  # fill shortfalls in dataset order
        df = pl.concat([chosen, rest.head(max(0, target - chosen.height))]).sort(["item_rank", "sample_index"])
        df = df.drop("rank_in_pattern")
    if target is not None:
        df = df.head(target)
    return CurationResult([correct[i] for i in df["row"].to_list()], len(correct))
