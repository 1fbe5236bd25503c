"""An eval dir as site entries: its sampled trajectories (an eval is a run without the keep-filter), under
the budget table and the accuracy-against-budget plot that `minio3 eval` wrote beside them.

The table and plot are shown as eval wrote them (its markdown table and PNG files), not recomputed here, so
the site can never disagree with results.json; each trajectory's outcome at every budget is the eval's own
rule (budget_outcomes.py), at the budgets results.json records.
"""

from __future__ import annotations

from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.store import RUN_JSON
from pipelines.eval.report import PLOT, RESULTS, TABLE, read_results

from .filters import Field
from .markup import esc
from .report_html import report_html
from .run_source import ATTEMPT_FIELDS, ID_FIELDS, RunSource
from .site import SiteImages

EVAL_FIELDS = (
    *ID_FIELDS,
    Field("outcome", "outcome by budget"),
    Field("at", "outcome at a budget", multi=True, column=False),  # at=4:over-turn,at=8:correct
    *ATTEMPT_FIELDS,
)


def _run_dir(path: Path) -> Path:
    """Where an eval keeps its trajectories: the eval dir itself, which `minio3 eval` samples its run into."""
    if not (path / RUN_JSON).is_file():
        raise BadInputError(f"{path}: has {RESULTS} but no run ({RUN_JSON}) of trajectories in it")
    return path


class EvalSource(RunSource):
    """An eval dir: the run's trajectories, headed by the budget table and plot."""

    kind = "eval"
    fields = EVAL_FIELDS

    def __init__(self, path: Path) -> None:
        self.eval_dir = path
        super().__init__(_run_dir(path), read_results(path)[1])

    def header(self, images: SiteImages) -> str:
        # eval writes no plot when no question has a finished sample
        report = report_html(images, self.eval_dir / TABLE, self.eval_dir / PLOT, "eval")
        return (
            f"<p>results: {esc(self.eval_dir / RESULTS)}</p>{report}<h2>The run</h2>" + super().header(images)
        )
