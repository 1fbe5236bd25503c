"""`deepeyes-hrbench`: DeepEyes' HR-Bench evaluation (`eval/eval_hrbench.py`, cc3ff4d), and
`deepeyes-hrbench-fixed`, the same with its coordinate error fixed.

Everything is `deepeyes`' (deepeyes.py) but: generation also stops at `</tool_call>`, so the turn the model
sees again lacks its closing tag; and its judge rule (`judge_result_hrbench.py`): letter rules, then the
option's text in the answer, then the LLM told the bare letter. The script resizes the first view to
smart_resize(28, max 12,845,056) and cuts crops from the original with the model's numbers unscaled
(`map_box` is defined and never called): on an 8K image (7680x4320 shown at 4760x2688) every box lands 1.61x
closer to the top-left than the model meant. `deepeyes-hrbench` reproduces that, to match the published
numbers; `deepeyes-hrbench-fixed` scales the numbers from the first view to the original (x * W / Wd), what
the script meant: compare a checkpoint fairly with it.
"""

from __future__ import annotations

from dataclasses import replace

from ..peer_judge import DEEPEYES_HRBENCH
from .deepeyes import END_CALL
from .deepeyes import PROFILE as DEEPEYES

PROFILE = replace(
    DEEPEYES, name="deepeyes-hrbench",
    summary="DeepEyes' HR-Bench eval, its bug kept: first-view pixel numbers applied to the original",
    stop_strings=(END_CALL,), limits=replace(DEEPEYES.limits, turn_tokens=8192), peer_judge=DEEPEYES_HRBENCH,
)  # fmt: skip
