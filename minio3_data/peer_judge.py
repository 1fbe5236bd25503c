"""A peer release's own answer scoring, for `minio3 eval --judge-rule peer`: a number then matches the peer's paper.

DeepEyes (`eval/judge_result.py`) and Chain-of-Focus (`eval/vstar/judge_result.py`) score a multiple-choice
answer by string rules first and ask an LLM only when no rule decides; the LLM sees the releases' prompt
(typos and literal backslash-n sequences kept) and its reply counts by the releases' loose parse. The two
differ in the form of the standard answer ("A. text" / "(A) text"), one rule, their in-context examples, and
what the LLM is told the standard answer is. Here only the texts and rules; judge.py asks the model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

TEMPLATE = (
    "\nBelow are two answers to a question. Question is [Question], [Standard Answer] is the standard answer to "
    "the question, and [Model_answer] is the answer extracted from a model's output to this question.  Determine "
    "whether these two answers are consistent.\nNote that [Model Answer] is consistent with [Standard Answer] "
    "whenever they are essentially the same. If the meaning is expressed in the same way, it is considered "
    "consistent, for example, 'pink' and 'it is pink'.\nIf they are consistent, Judement is 1; if they are "
    "different, Judement is 0. Just output Judement and don't output anything else.\\n\\n\n"
)
EXAMPLE = "\n[Question]: {question}\n[Standard Answer]: {standard}\n[Model_answer] : {answer}\nJudgement: {score}\n"
TEST = "\n[Question]: {question}\n[Standard Answer]: {standard}\n[Model_answer] : {answer}\nJudgement:"
SYSTEM = "You are a helpful assistant."
EXAMPLE_QUESTIONS = (
    "Is the countertop tan or blue?", "On which side of the picture is the barrier?", "Is the kite brown and large?",
    "Are the spots on a giraffe?", "Who is wearing pants?", "Is the man phone both blue and closed?",
    "What color is the towel in the center of the picture?",
)  # fmt: skip
EXAMPLE_TRUTHS = (
    "The countertop is tan.", "The barrier is on the left side of the picture.", "Yes, the kite is brown and large.",
    "No, the spots are on a banana.", "The boy is wearing pants.", "Yes, the man phone is both blue and closed.",
    "The towel in the center of the picture is blue.",
)  # fmt: skip
EXAMPLE_SCORES = (1, 1, 1, 1, 0, 0, 0)


def unboxed(prediction: str) -> str:
    """Both releases read the inside of the first `\\boxed{...}` (up to its first `}`) when there is one."""
    if "\\boxed{" in prediction:
        return prediction.split("\\boxed{")[1].split("}")[0]
    return prediction


def judgement(reply: str) -> bool:
    """The releases' parse: after the last "Judgement:", any '1' is correct, else wrong; without it, exactly '1'."""
    reply = reply.strip()
    if "Judgement:" in reply:
        return "1" in reply.split("Judgement:")[-1].strip()
    return reply == "1"


@dataclass(frozen=True)
class PeerJudgeRule:
    """One release's scoring: `example_standards[i]`/`example_answers[i]` fill its in-context examples;
    `standard_form` writes the standard answer a prediction may contain; `paren` adds the "(A)" rule;
    `letter_truth` tells the LLM the bare letter (else the standard answer)."""

    name: str  # what results record as the judge rule
    example_standards: tuple[str, ...]  # the letter prefix of each example's standard answer
    example_answers: tuple[str, ...]
    standard_form: str  # {letter}, {option}
    paren: bool
    letter_truth: bool

    def standard(self, letter: str, option: str) -> str:
        return self.standard_form.format(letter=letter, option=option)

    def by_rule(self, prediction: str, letter: str, option: str) -> bool | None:
        """The releases' string rules in their order; None where the LLM decides."""
        if len(prediction) == 1:
            return prediction == letter
        if len(prediction) == 2 and "." in prediction:
            return letter in prediction
        if self.paren and len(prediction) == 3 and "(" in prediction and ")" in prediction:
            return letter in prediction
        if self.standard(letter, option) in prediction:
            return True
        return None

    def prompt(self, question: str, prediction: str, letter: str, option: str) -> str:
        """The user message the release sends its judge model (system: SYSTEM, temperature 0)."""
        examples = "".join(
            EXAMPLE.format(question=q, standard=s + t, answer=a, score=score) + "\n\n"
            for q, s, t, a, score in zip(
                EXAMPLE_QUESTIONS, self.example_standards, EXAMPLE_TRUTHS, self.example_answers, EXAMPLE_SCORES
            )
        )
        truth = letter if self.letter_truth else self.standard(letter, option)
        return TEMPLATE + examples + TEST.format(question=question, standard=truth, answer=prediction)


DEEPEYES_VSTAR = PeerJudgeRule(
    "deepeyes", ("A. ",) * 7,
    ("tan", "A", "Yes", "no", "C. The girl in the picture is wearing pants.", "No.",
     "The towel in the center of the picture is pink."),
    standard_form="{letter}. {option}", paren=False, letter_truth=False,
)  # fmt: skip
DEEPEYES_HRBENCH = replace(DEEPEYES_VSTAR, name="deepeyes-hrbench", standard_form="{option}", letter_truth=True)
CHAIN_OF_FOCUS = PeerJudgeRule(
    "chain-of-focus", ("(A) ", "B. ", "(A) ", "C. ", "(D) ", "(B) ", "(A) "),
    ("tan", "B", "Yes", "no", "(D) The girl in the picture is wearing pants.", "No.",
     "The towel in the center of the picture is pink."),
    standard_form="({letter}) {option}", paren=True, letter_truth=True,
)  # fmt: skip

