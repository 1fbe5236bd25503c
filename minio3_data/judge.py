"""Is a final answer correct? A rule judge, and an LLM judge for open-ended answers.

The rule judge accepts an option by its letter ("B", "(B)", "B.", "B) text") or by its text, and
otherwise compares normalised text (case, punctuation, articles, spacing) with numbers canonicalised
("3" == "three" == "3.0"). The LLM judge must reply with one "Score: 0|1" line, parsed strictly: the
released Mini-o3 code counts any "1" anywhere in the reply as correct, which keeps wrong answers.
A judge that cannot decide returns "unjudged", never "correct".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from .errors import BadInputError
from .peer_judge import SYSTEM, PeerJudgeRule, judgement, unboxed
from .protocol import OPTION_LETTERS, question_text
from .records import Usage, Verdict
from .teachers import (
    GenerationConfig,
    GuardedTeacher,
    Message,
    TeacherError,
    TeacherFailure,
    TeacherOptions,
    TeacherUnavailable,
    make_teacher,
)

ARTICLES = frozenset({"a", "an", "the"})
NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000",
}  # fmt: skip

_TOKEN_RE = re.compile(r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[^\W_]+")
_PAREN_LETTER_RE = re.compile(r"\(([A-Za-z])\)(?:\s.*)?", re.DOTALL)  # "(B)", "(B) red"
_BARE_LETTER_RE = re.compile(r"([A-Za-z])(?:[.):](?:\s.*)?)?", re.DOTALL)  # "B", "B.", "B) red", "B. red"
_SCORE_RE = re.compile(r"score:\s*([01])", re.IGNORECASE)

JUDGE_PROMPT = (
    "You are grading the answer to a question about an image. Decide whether the prediction gives the same "
    "answer as the ground truth; wording may differ, and a multiple-choice letter means its option.\n\n"
    "Question: {question}\n"
    "Ground truth: {ground_truth}\n"
    "Prediction: {prediction}\n\n"
    'Reply with exactly one line: "Score: 1" if the prediction is correct, "Score: 0" if it is not.'
)


def normalize(text: str) -> list[str]:
    """Lower-case word and number tokens without punctuation or articles; numbers and number words
    in one canonical form ("1,000.0" -> "1000", "three" -> "3")."""
    out: list[str] = []
    for tok in _TOKEN_RE.findall(text.lower()):
        if tok in ARTICLES:
            continue
        if tok in NUMBER_WORDS:
            tok = NUMBER_WORDS[tok]
        elif tok[0].isdigit():
            tok = format(Decimal(tok.replace(",", "")).normalize(), "f")
        out.append(tok)
    return out


def _is_number(token: str) -> bool:
    return token[0].isdigit()


def _letter_index(prediction: str, options: list[str]) -> int | None:
    text = prediction.strip().strip("*`'\"").strip()
    m = _PAREN_LETTER_RE.fullmatch(text) or _BARE_LETTER_RE.fullmatch(text)
    if not m:
        return None
    idx = OPTION_LETTERS.find(m.group(1).upper())
    return idx if idx < len(options) else None


def _option_index(answer: str, options: list[str]) -> int | None:
    """The option an answer names, by letter or by (normalised) text; None when it names none or several."""
    idx = _letter_index(answer, options)
    if idx is not None:
        return idx
    tokens = normalize(answer)
    hits = [i for i, opt in enumerate(options) if tokens and normalize(opt) == tokens]
    return hits[0] if len(hits) == 1 else None


def rule_judge(prediction: str, ground_truth: str, options: list[str] | tuple[str, ...] = ()) -> Verdict:
    options = list(options)
    truth = _option_index(ground_truth, options) if options else None
    if truth is not None:
        picked = _option_index(prediction, options)
        if picked is None:
            return Verdict("wrong", "rule: names no option")
        return Verdict("correct" if picked == truth else "wrong", "rule: option")
    pred, gt = normalize(prediction), normalize(ground_truth)
    if gt and pred == gt:
        return Verdict("correct", "rule: text")
    if len(gt) == 1 and _is_number(gt[0]):
        numbers = [t for t in pred if _is_number(t)]
        return Verdict("correct" if numbers == gt else "wrong", "rule: number")
    return Verdict("wrong", "rule: text")


def parse_score(reply: str) -> int | None:
    """0 or 1 from a reply whose only line mentioning a score is exactly "Score: 0" or "Score: 1"; else None."""
    lines = [line.strip() for line in reply.splitlines() if "score" in line.lower()]
    if len(lines) != 1:
        return None
    m = _SCORE_RE.fullmatch(lines[0])
    return int(m.group(1)) if m else None


class Judge(Protocol):
    name: str

    async def judge(self, question: str, prediction: str, ground_truth: str, options: list[str]) -> Verdict: ...

    async def aclose(self) -> None: ...


class RuleJudge:
    name = "rule"

    async def judge(self, question: str, prediction: str, ground_truth: str, options: list[str]) -> Verdict:
        return rule_judge(prediction, ground_truth, options)

    async def aclose(self) -> None:
        return None


class LLMJudge:
    """Asks a model for "Score: 0|1" when the rule judge does not already find the answer correct.

    Unparsable replies are asked again (up to `attempts` replies); a request that fails for good gives
    "unjudged". TeacherUnavailable and BudgetExhausted propagate: they stop the run. Failures say they are
    the judge's ("judge openai:gpt-4o: ..."), so a judge's server is never mistaken for the teacher's.
    `on_usage` receives what each judgement consumed (every request sent, failed ones included), for the
    run to count and price beside its teacher's.
    """

    def __init__(
        self, teacher: GuardedTeacher, *, attempts: int = 3, max_tokens: int = 512,
        on_usage: Callable[[Usage], None] | None = None,
    ):
        self.teacher = teacher
        self.name = teacher.name
        self.attempts = max(1, attempts)
        self.config = GenerationConfig(max_tokens=max_tokens, temperature=0.0)
        self.on_usage = on_usage

    def prompt(self, question: str, prediction: str, ground_truth: str, options: list[str]) -> str:
        truth = ground_truth
        idx = _option_index(ground_truth, options) if options else None
        if idx is not None:
            truth = f"{OPTION_LETTERS[idx]}. {options[idx]}"
        return JUDGE_PROMPT.format(question=question_text(question, options), ground_truth=truth, prediction=prediction)

    async def judge(self, question: str, prediction: str, ground_truth: str, options: list[str]) -> Verdict:
        by_rule = rule_judge(prediction, ground_truth, options)
        if by_rule.correct:
            return by_rule
        messages = [Message("user", [self.prompt(question, prediction, ground_truth, options)])]
        used = Usage()
        try:
            for _ in range(self.attempts):
                try:
                    reply = await self.teacher.generate(messages, self.config)
                except TeacherFailure as e:
                    used.requests += e.requests
                    if isinstance(e, TeacherError):
                        return Verdict("unjudged", f"judge {self.name}: {e}")
                    if isinstance(e, TeacherUnavailable):
                        raise TeacherUnavailable(f"judge {self.name}: {e}") from None
                    raise
                used.add(reply.usage)
                score = parse_score(reply.text)
                if score is not None:
                    return Verdict("correct" if score else "wrong", self.name)
            return Verdict("unjudged", f"{self.name}: no 'Score: 0|1' line in {self.attempts} replies")
        finally:
            if used.requests and self.on_usage is not None:
                self.on_usage(used)

    async def aclose(self) -> None:
        await self.teacher.aclose()


class PeerJudge:
    """A peer release's own scoring (peer_judge.py): its string rules, then its LLM prompt to `teacher` at
    temperature 0, one reply parsed its way. Without a model (`teacher` None) a prediction no rule decides is
    "unjudged"; an answer that names no option of a multiple-choice question is judged by our rule judge."""

    def __init__(self, rule: PeerJudgeRule, llm: LLMJudge | None):
        self.rule = rule
        self.llm = llm
        self.name = f"{rule.name}:{llm.name if llm else 'rule'}"

    async def judge(self, question: str, prediction: str, ground_truth: str, options: list[str]) -> Verdict:
        idx = _option_index(ground_truth, options) if options else None
        if idx is None:
            return rule_judge(prediction, ground_truth, options)
        letter, option = OPTION_LETTERS[idx], options[idx]
        pred = unboxed(prediction)
        decided = self.rule.by_rule(pred, letter, option)
        if decided is not None:
            return Verdict("correct" if decided else "wrong", f"{self.rule.name}: rule")
        if self.llm is None:
            return Verdict("unjudged", f"{self.rule.name}: no rule decides and no --judge model to ask")
        messages = [Message("system", [SYSTEM]), Message("user", [self.rule.prompt(question, pred, letter, option)])]
        try:
            reply = await self.llm.teacher.generate(messages, self.llm.config)
        except TeacherError as e:
            return Verdict("unjudged", f"judge {self.name}: {e}")
        if self.llm.on_usage is not None:
            self.llm.on_usage(reply.usage)
        return Verdict("correct" if judgement(reply.text) else "wrong", self.name)

    async def aclose(self) -> None:
        if self.llm is not None:
            await self.llm.aclose()


def peer_judge(rule: PeerJudgeRule, judge: Judge) -> Judge:
    """A release's scoring `rule`, asking the model of `judge` where it is an LLM judge."""
    return PeerJudge(rule, judge if isinstance(judge, LLMJudge) else None)


def make_judge(
    spec: str, options: TeacherOptions | None = None, *, share_with: GuardedTeacher | None = None,
    on_usage: Callable[[Usage], None] | None = None, **overrides: Any,
) -> Judge:
    """"rule", "openai:MODEL" or "gemini:MODEL". `options` and `overrides` go to make_teacher (base URLs, key
    variable, timeout, ...); `share_with` is the run's teacher, whose budget (and, on the same server, rate
    limiter and circuit breakers) the judge shares; `on_usage` receives each judgement's usage (LLMJudge)."""
    if spec == "rule":
        return RuleJudge()
    kind, _, model = spec.partition(":")
    if kind not in ("openai", "gemini") or not model:
        raise BadInputError(f"--judge {spec!r}: use rule, openai:MODEL or gemini:MODEL")
    teacher = make_teacher(kind, options, share_with=share_with, **(overrides | {"model": model}))
    return LLMJudge(teacher, on_usage=on_usage)
