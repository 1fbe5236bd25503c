"""The README's promises about itself: its two commands are the ones that run (CI calls the test command), and
every relative link in the README and docs/ names a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", flags=re.S)  # links are never inside code


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    quickstart, tests = _bash_blocks(readme)[:2]
    assert "minio3 quickstart" in quickstart
    assert tests.strip() == "tools/test.sh"
    ci = (ROOT / ".ci" / "run").read_text()
    assert [line for line in ci.splitlines() if line.startswith("exec ")] == ["exec tools/test.sh"]
    script = (ROOT / "tools" / "test.sh").read_text()
    assert "apt-get install -y -qq chromium" in script and "python -m pytest" in script


def test_every_relative_link_names_an_existing_file() -> None:
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(CODE.sub("", doc.read_text())):
            if "://" not in target and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []
