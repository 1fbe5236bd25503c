"""Options a benchmark writes with their letters ("(A) red", "A. red"), back to plain option texts.

Our question text letters the options again, so an importer keeps only the texts; a list whose letters are
not A, B, C, ... in order is refused with the reason, never silently renumbered.
"""

from __future__ import annotations

import re

from minio3_data.protocol import OPTION_LETTERS

DOT_LETTERED = re.compile(r"([A-Z])\.\s*(.*)", re.DOTALL)  # "A. red" (O3-Bench, VLMEvalKit prompts)


def split_lettered(choices: list[str], pattern: re.Pattern[str], field: str, form: str) -> list[str] | str:
    """The option texts of `choices` whose `pattern` captures (letter, text), or why they are not lettered
    in order; `form` shows the expected shape, e.g. "{letter}. <option>", for the reason."""
    options = []
    for i, choice in enumerate(choices):
        m = pattern.fullmatch(choice.strip())
        letter = OPTION_LETTERS[i] if i < len(OPTION_LETTERS) else "?"
        if m is None or m.group(1) != letter or not m.group(2).strip():
            return f"{field}[{i}] {choice[:40]!r}: expected '{form.format(letter=letter)}'"
        options.append(m.group(2).strip())
    return options
