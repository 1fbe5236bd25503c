"""Inputs for the `minio3 view` tests: a real scripted run on the tiny dataset, and reading a built site."""

from __future__ import annotations

import json
import re
from pathlib import Path

from minio3_data.records import Trajectory
from minio3_data.teacher_options import TeacherOptions
from pipelines.synth_coldstart import SynthConfig, synth_coldstart
from pipelines.view.site import page_rel


def scripted_run(dataset: Path, out: Path) -> Path:
    """Two scripted attempts per training item, some of them wrong (error_rate), so every status and verdict
    filter has rows on both sides."""
    synth_coldstart(SynthConfig(
        dataset=dataset, out=out, teacher="scripted", target=None, samples_per_item=2, concurrency=4,
        progress=False, seed=5, error_rate=0.3, client=TeacherOptions(),
    ))  # fmt: skip
    return out


def attempts(run: Path) -> list[Trajectory]:
    """The run's attempts, last line per (item, sample), as the viewer lists them."""
    latest: dict[tuple[str, int], Trajectory] = {}
    for line in (run / "attempts.jsonl").read_text().splitlines():
        t = Trajectory.from_dict(json.loads(line))
        latest[(t.item_id, t.sample_index)] = t
    return [latest[k] for k in sorted(latest)]


def page_of(site: Path, entry_id: str) -> Path:
    return site / page_rel(entry_id)


def image_sources(html: str) -> list[str]:
    return re.findall(r'<img[^>]* src="([^"]+)"', html)
