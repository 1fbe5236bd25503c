"""`minio3 quickstart`: the whole offline pipeline in about a minute, on the embedded default.

Synthetic VisualProbe scenes -> scripted-teacher synthesis (six exemplars in context, real ZoomEnv, rule
judge) -> LLaMA-Factory export. No keys, no network, no GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minio3_data.exemplars import shipped_dir
from minio3_data.fsutil import check_output_dir
from minio3_data.outputs import claim_output

from .build_visualprobe import BuildSummary, build_visualprobe
from .export_llamafactory import ExportSummary, export_run
from .synth_coldstart import SynthConfig, SynthSummary, synth_coldstart


@dataclass
class QuickstartSummary:
    dataset: BuildSummary
    run: SynthSummary
    export: ExportSummary


def quickstart(
    out: Path, *, train: int = 24, test: int = 6, samples_per_item: int = 2, seed: int = 0,
    long_side: tuple[int, int] = (2048, 4096), workers: int | None = None, overwrite: bool = False,
) -> QuickstartSummary:
    with claim_output(out, [("(the shipped exemplars)", shipped_dir())]):  # the one input it does not make
        check_output_dir(out, overwrite)
        dataset = build_visualprobe("synthetic", out / "dataset", train=train, test=test, seed=seed,
                                    long_side=long_side, workers=workers, overwrite=True)
        run = synth_coldstart(SynthConfig(dataset=out / "dataset", out=out / "run", teacher="scripted",
                                          samples_per_item=samples_per_item, target=None, seed=seed,
                                          concurrency=8))
        export = export_run(out / "run", out / "sft", workers=workers, overwrite=True)
    return QuickstartSummary(dataset, run, export)
