"""``spectralearth demo`` (and ``serve``): curate -> train -> evaluate on synthesized scenes, from the command line.

The full run starts its own temporary Prefect server (its database under ``--out``), so no
server fixture is used here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from prefect_helpers import BIN, REPO


def _demo(out: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SPECTRALEARTH_"))}
    env.update(SPECTRALEARTH_DASK_WORKERS="1", SPECTRALEARTH_TRAIN_WORKERS="0")
    return subprocess.run(
        [str(BIN / "spectralearth"), "demo", "--out", str(out), *args],
        check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )


def test_show_config_prints_the_resolved_settings_and_stops(tmp_path):
    out = tmp_path / "demo"
    proc = _demo(out, "--show-config")
    assert proc.returncode == 0, proc.stderr
    settings = json.loads(proc.stdout)
    assert Path(settings["data"]) == out.resolve()
    assert settings["chunk_cells"] >= 1
    assert not out.exists()  # nothing ran


def test_a_bad_option_fails_in_one_line_before_any_work(tmp_path):
    out = tmp_path / "demo"
    proc = _demo(out, "--preset", "huge")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: preset: unknown model preset 'huge'; choose one of: tiny, small, base"
    ]
    assert not (out / "scenes").exists() and not (out / "releases").exists()


def test_serve_without_a_server_says_how_to_start_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # no profile with an API URL
    proc = subprocess.run([str(BIN / "spectralearth"), "serve"], check=False, env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: PREFECT_API_URL is not set: start a server")


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(["--task", "imagenet"], r"tasks: 'imagenet' is neither a built-in task", id="unknown-task"),
        pytest.param(["--steps", "0"], r"--steps 0: expected at least 1", id="zero-steps"),
    ],
)
def test_bad_options_are_rejected_before_any_work(tmp_path, monkeypatch, args, message):
    from typer.testing import CliRunner

    from flows.params import ParameterError
    from flows.cli import app

    for name in ("SPECTRALEARTH_DATA", "PREFECT_HOME", "PREFECT_API_URL"):  # the command sets them
        monkeypatch.setenv(name, "recorded-so-teardown-restores-it")
        monkeypatch.delenv(name)
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), *args])
    assert isinstance(result.exception, ParameterError)
    assert re.match(message, str(result.exception))
    assert not (out / "scenes").exists() and not (out / "releases").exists()


@pytest.mark.slow
def test_demo_runs_curate_train_evaluate_and_says_where_everything_is(tmp_path):
    out = tmp_path / "demo"
    proc = _demo(out, "--steps", "2", timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SYNTHESIZED" in proc.stdout
    lines = proc.stdout[proc.stdout.index("SpectralEarth demo finished"):].splitlines()[1:]
    where = dict(line.strip().split(None, 1) for line in lines if line.strip())
    release = Path(where["release"])
    assert release.parent == out.resolve() / "releases"
    manifest = json.loads(Path(where["manifest"]).read_text())
    assert manifest["release_id"] == "demo-960m"
    assert Path(where["checkpoint"]).name == "checkpoint.pt" and Path(where["checkpoint"]).exists()
    assert Path(where["encoder"]).exists()
    report = Path(where["report"]).read_text()
    assert "frozen-encoder evaluation" in report and where["encoder"] in report
    assert (out / "prefect").is_dir()  # the temporary server's database stayed under --out
