"""One trajectory as a page: the original with every zoom numbered by turn, then the conversation exactly as
the model read it (the protocol's own texts, from render.conversation) with each observation's pixels,
what the environment made of every turn, and the outcome: answer, ground truth, verdict, cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from minio3_data.profiles import ProtocolProfile
from minio3_data.records import ProbeItem, Trajectory, Turn
from minio3_data.render import conversation
from minio3_data.zoom import Observation

from .budget_outcomes import outcome_summary
from .markup import (
    PageMessage,
    chip,
    conversation_html,
    document,
    esc,
    facts,
    label,
    picture_html,
    problems_html,
    question_html,
)
from .search import SearchPictures, Step, steps_of
from .site import INDEX, from_page


@dataclass
class TrajectoryView:
    """What a page shows beside the record: the observations ZoomEnv re-derived (None when the replay
    disagreed with the record), the dataset row it came from, whether curation kept it (None: an eval,
    which keeps no subset) and an eval's turn budgets (its outcome at each is shown)."""

    protocol: ProtocolProfile
    pictures: SearchPictures
    key: str  # names the page's own pictures
    observations: list[Observation] | None
    item: ProbeItem | None
    kept: bool | None
    budgets: tuple[int, ...]
    problems: list[str]
    ablate: str | None = None  # an eval's ablation: its crops are shown to the model as it was sent them


def _turn_notes(turn: Turn, number: int, final_answer: str | None, judged: str, cut_from: str) -> list[str]:
    """What the environment made of one assistant turn, in words; `judged` is the final answer with its
    verdict, `cut_from` the image crops are cut from (the original, or the first view)."""
    if turn.action == "zoom":
        asked = f"zoom into <code>{esc(turn.source)}</code> at {esc(turn.bbox)}"
        if turn.observation is not None:
            made = f"observation {turn.observation}, {esc(turn.box_px)} px of {cut_from}"
            return [f"{chip(number)}: {asked} &rarr; {made}"]
        if turn.error is not None:
            return [f'<span class="err">{asked}: refused: {esc(turn.error)}</span>']
        return [
            f'<span class="err">{asked}: not executed (the turn or image budget ran out: over-turn)</span>'
        ]
    if turn.action == "answer":
        if turn.answer == final_answer:
            return [f"final answer: {judged}"]
        return [f"later answer (only the first counts): <b>{esc(turn.answer)}</b>"]
    return [
        f'<span class="err">{esc(turn.action)}: {esc(turn.error or "no action; the trajectory ends")}</span>'
    ]


def _messages(traj: Trajectory, view: TrajectoryView, steps: Sequence[Step]) -> list[PageMessage]:
    observations = view.observations
    chat = conversation(traj.question, traj.options, traj.turns, protocol=view.protocol)
    cut_from = "the first view" if view.protocol.crops_first_view else "the original"
    messages: list[PageMessage] = []
    turn_index = 0
    for chat_turn in chat:
        msg = PageMessage(chat_turn.role, chat_turn.text)
        if chat_turn.role == "assistant":
            number = turn_index + 1
            msg.heading = f"turn {number}"
            msg.notes = _turn_notes(traj.turns[turn_index], number, traj.final_answer, _judged(traj), cut_from)
            turn_index += 1
        for index in chat_turn.images:
            if observations is None or index >= len(observations):
                continue
            obs = observations[index]
            w, h = obs.size
            what = (
                "the first view"
                if index == 0
                else f"observation {index}: box {list(obs.box)} of the original"
            )
            sent = f", sent {esc(view.ablate)} (--ablate)" if view.ablate and index else ""
            caption = f"{what}, sent at {w}&times;{h} px{sent}"
            msg.pictures.append(view.pictures.observation(obs, steps, caption))
        messages.append(msg)
    return messages


def _judged(traj: Trajectory) -> str:
    """The final answer with its verdict beside it, and how it was judged."""
    answer = esc(traj.final_answer) if traj.final_answer is not None else "(none)"
    return f"<b>{answer}</b> &rarr; {label(traj.verdict.label)} ({esc(traj.verdict.how)})"


def _facts(traj: Trajectory, view: TrajectoryView) -> str:
    usage = traj.usage
    item = view.item
    rows = [
        ("question", question_html(traj.question, traj.options)),
        ("final answer", _judged(traj)),
        ("ground truth", esc(traj.ground_truth)),
    ]
    if view.budgets:
        rows.append(("outcome by budget", esc(outcome_summary(traj, view.budgets))))
    rows.append(("status", label(traj.status) + (f": {esc(traj.error)}" if traj.error else "")))
    if view.kept is not None:
        rows.append(("kept", "yes (in trajectories.parquet)" if view.kept else "no"))
    rows += [
        ("teacher", esc(traj.teacher)),
        ("exemplars used", esc(", ".join(traj.exemplar_ids) or "(none)")),
        ("patterns", esc(", ".join(traj.patterns) or "(none)")),
        ("turns", esc(traj.num_turns)),
        (
            "tokens",
            esc(
                f"{usage.prompt_tokens:,} prompt, {usage.completion_tokens:,} completion, "
                f"{usage.thought_tokens:,} thinking; {usage.requests} request(s)"
            ),
        ),
        ("cost", esc(f"${usage.cost_usd:.4f}")),
        ("difficulty", esc(traj.difficulty)),
        ("data source", esc(item.source if item else "(dataset row not found)")),
        ("image", esc(f"{traj.image} ({traj.width}x{traj.height})")),
        ("protocol", esc(view.protocol.name)),
        ("seed", esc(traj.seed)),
    ]
    return facts(rows)


def trajectory_page(traj: Trajectory, view: TrajectoryView) -> tuple[str, str]:
    """The page's HTML and the site path of its thumbnail."""
    steps = steps_of(traj.turns, view.observations, view.pictures.env)
    target = view.item.target_bbox if view.item is not None else None
    legend = "every executed zoom on the original, numbered by turn" + (
        ", the target in yellow" if target else ""
    )
    overview, thumb = view.pictures.overview(view.key, steps, target, legend)
    body = (
        f'<p><a href="{from_page(INDEX)}">&larr; index</a></p><h1>{esc(traj.id)}</h1>'
        f"{problems_html(view.problems)}{_facts(traj, view)}"
        f"{picture_html(overview)}"
        f"<h2>The conversation, as the model read it</h2>{conversation_html(_messages(traj, view, steps))}"
    )
    return document(f"{traj.id} - minio3 view", body), thumb
