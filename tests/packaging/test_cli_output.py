"""What the ``spectralearth`` command line prints: boolean flags in ``--help`` without a type,
and rich tables whole when stdout is piped (not cut to 80 columns)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from flows.cli import main; main()"]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("COLUMNS", None)  # a pipe, as in `spectralearth catalog | less`
    env.pop("SPECTRALEARTH_DEBUG", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.mark.parametrize("command", [[], ["tile"], ["validate"], ["model-info"], ["catalog"]],
                         ids=["top", "tile", "validate", "model-info", "catalog"])
def test_help_shows_boolean_flags_without_a_type(command):
    res = _run(*command, "--help")
    assert res.returncode == 0, res.stderr
    assert "<bool>" not in res.stdout, res.stdout
    assert "--help" in res.stdout
    if not command:
        assert "--debug" in res.stdout
    if command == ["tile"]:
        assert "--no-progress" in res.stdout and "--no-coreg" in res.stdout


def test_catalog_table_is_whole_when_piped():
    rows = json.loads(_run("catalog", "--json").stdout)
    res = _run("catalog")
    assert res.returncode == 0, res.stderr
    assert "…" not in res.stdout, res.stdout
    lines = res.stdout.splitlines()
    for r in rows:  # each product on one line, with its licence and every provider, whole
        mine = [ln for ln in lines if ln.startswith(f"│ {r['name']} ")]
        assert len(mine) == 1, res.stdout
        assert r["licence"] in mine[0] and ", ".join(dict.fromkeys(r["providers"])) in mine[0], mine[0]
