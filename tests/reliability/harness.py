"""Shared helpers of the reliability suite: the real CLI in a subprocess, store fingerprints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

#: The real console entry point (``spectralearth``) run by this interpreter.
CLI = [sys.executable, "-c", "from flows.cli import main; main()"]
REPO = Path(__file__).resolve().parents[2]
#: The two demo cells the small plans cover (every product present in both).
CELLS = ("32633_00382_06049", "32633_00382_06050")


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SPECTRALEARTH_DEBUG", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240, prefix: list[str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``spectralearth ARGS`` to completion; stdout/stderr as text."""
    return subprocess.run([*(prefix or []), *CLI, *map(str, args)], capture_output=True, text=True,
                          env=cli_env(env), timeout=timeout, cwd=cwd, check=False)


def start_cli(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """Start ``spectralearth ARGS`` in its own process group (so kill -9 reaches its workers)."""
    if log is None:
        return subprocess.Popen([*CLI, *map(str, args)], start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT, env=cli_env(env))
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([*CLI, *map(str, args)], start_new_session=True, stdout=out,
                                stderr=subprocess.STDOUT, env=cli_env(env))


def fingerprint(store: Path) -> dict[str, str]:
    """patch_id -> sha256 of every indexed patch of ``store`` (empty if there is no index yet)."""
    parts = Path(store) / "index" / "patches"
    if not parts.is_dir() or not any(parts.glob("*/part-*.parquet")):
        return {}
    idx = gpd.read_parquet(parts)
    assert idx["patch_id"].is_unique, "duplicate patch ids in the index"
    return dict(zip(idx["patch_id"], idx["sha256"]))


def lost(before: dict[str, str], after: dict[str, str]) -> int:
    """Patches committed before that are missing or changed after."""
    return sum(1 for k, v in before.items() if after.get(k) != v)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """Assert the CLI failed as a user error: exit 2, exactly one stderr line ``error: ...``."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


@dataclass(frozen=True)
class Demo:
    """The demo scenes and the reference products of the suite, built once per session."""

    scenes_dir: Path
    scenes: Path  # full scene table
    plan: Path  # the demo's full plan
    small_plan: Path  # two cells, every product
    cog_plan: Path  # two cells, GeoTIFF products only (servable over HTTP)
    clean_store: Path  # small_plan tiled once, uninterrupted
    clean: dict[str, str]  # its fingerprint
    tile_seconds: float  # how long the clean CLI tile took


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
