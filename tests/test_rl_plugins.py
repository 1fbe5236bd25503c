"""Every plug-in listed in train/rl/plugins.py is in verl's own registries, and a bare `import verl` — what each of
verl's worker processes does — registers them all through the `verl.plugins` entry point (verl logs a plug-in
that fails to import only at DEBUG, so nothing else would notice)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from needs_verl import require_verl

from minio3_data.errors import BadInputError


@pytest.fixture(scope="module")
def registered() -> dict[str, tuple[str, ...]]:
    require_verl()
    from train.rl import plugins

    return plugins.REGISTERED


def test_every_listed_name_resolves_in_verls_registries(registered: dict[str, tuple[str, ...]]) -> None:
    from train.rl.registries import RESOLVERS, resolve

    assert {"adv_estimator", "policy_loss"} <= set(registered) <= set(RESOLVERS)
    for kind, names in registered.items():
        assert names, kind
        for name in names:
            assert resolve(kind, name) is not None


def test_a_bare_import_of_verl_registers_them_all(registered: dict[str, tuple[str, ...]]) -> None:
    """In a fresh interpreter that never imports minio3: only the entry point can have registered them."""
    from train.rl.registries import RESOLVERS

    probe = (
        "import json, sys, verl\n"
        "from train.rl.registries import RESOLVERS\n"
        "missing = []\n"
        "for kind, names in json.loads(sys.argv[1]).items():\n"
        "    for name in names:\n"
        "        try:\n"
        "            RESOLVERS[kind](name)\n"
        "        except Exception as e:\n"
        "            missing.append(f'{kind} {name}: {e}')\n"
        "print(json.dumps(missing))\n"
    )
    assert set(registered) <= set(RESOLVERS)
    proc = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(registered)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_the_entry_point_is_installed(registered: dict[str, tuple[str, ...]]) -> None:
    from train.rl.compose import check_entry_point

    check_entry_point()


def test_an_unregistered_name_is_one_line_naming_it(registered: dict[str, tuple[str, ...]]) -> None:
    from train.rl.registries import resolve

    for kind in ("adv_estimator", "policy_loss", "tool_parser", "agent_loop", "reward_manager", "trainer"):
        with pytest.raises(BadInputError, match=f"{kind} 'nope' is not registered") as e:
            resolve(kind, "nope")
        assert "\n" not in str(e.value)
    with pytest.raises(BadInputError, match="unknown plug-in kind"):
        resolve("sampler", "x")
