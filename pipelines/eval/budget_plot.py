"""Accuracy against turn budget: the one plot eval (a line per group) and compare (a line per eval) draw.

A line per series, with its 95% interval as a band of the same colour when it has one; shares are drawn as
percentages, one tick per budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from minio3_data.fsutil import atomic_path


@dataclass
class Series:
    """One line: its legend label, its shares in [0, 1] by budget, and its interval's bounds, if any."""

    label: str
    values: Sequence[float]
    band: tuple[Sequence[float], Sequence[float]] | None = None


def budget_plot(
    path: Path, budgets: Sequence[int], series: Sequence[Series], *, ylabel: str, title: str
) -> Path:
    """Write the PNG at `path` (atomically) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in series:
        (line,) = ax.plot(budgets, [100 * v for v in s.values], marker="o", label=s.label)
        if s.band is not None:
            lo, hi = s.band
            ax.fill_between(
                budgets, [100 * v for v in lo], [100 * v for v in hi], color=line.get_color(), alpha=0.12
            )
    ax.set(xlabel="turn budget", ylabel=ylabel, xticks=list(budgets), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


__all__ = ["Series", "budget_plot"]
