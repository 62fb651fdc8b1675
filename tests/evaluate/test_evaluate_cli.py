"""``spectralearth evaluate``: list tasks, run on the real EnMAP task, one-line errors (exit 2).

Runs the console entry point in-process (``main()`` with ``sys.argv``) to spare the interpreter
start-up, and once as a real subprocess to check what a user sees.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
from evaluate_helpers import TILES, copy_tiles, seg_rows, write_split

from spectralearth_model.cli import main

EXE = Path(sys.executable).parent / "spectralearth"


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["spectralearth", *args])
    monkeypatch.delenv("SPECTRALEARTH_DEBUG", raising=False)
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def _one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_list_tasks(monkeypatch, capsys):
    code, out, _ = _main(monkeypatch, capsys, "evaluate", "--list-tasks")
    assert code == 0
    assert [ln.split("\t")[0] for ln in out.splitlines()] == ["enmap-potsdam", "enmap-potsdam-pixels"]
    assert "729 labelled pixels in 2 tiles" in out and "889 labelled pixels" in out  # how few they test on


def test_cli_runs_knn_on_the_real_task(monkeypatch, capsys, tiny_checkpoint, tmp_path):
    code, out, err = _main(monkeypatch, capsys, "evaluate", "--checkpoint", str(tiny_checkpoint),
                           "--task", "enmap-potsdam-pixels", "--head", "knn", "--out", str(tmp_path / "rep"),
                           "--threads", "1", "--device", "cpu")
    assert code == 0, err
    assert "report: " in out and "pca-token" in out and "pca-pixel" in out
    # every metric is printed with its interval, and the test-set size with what was resampled
    assert re.search(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", out), out
    assert "889 (pixel)" in out and "95 % interval" in out
    with (tmp_path / "rep" / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["head"]) for r in rows] == seg_rows("knn")
    assert all(r["task"] == "enmap-potsdam-pixels" and 0 <= float(r["miou"]) <= 1 for r in rows)
    for r in rows:  # split by pixel: the bootstrap resamples pixels; intervals hold the estimate
        assert r["ci_unit"] == "pixel" and r["n_test_scored"] == "889"
        for m in ("miou", "oa", "macro_f1"):
            assert float(r[f"{m}_ci_low"]) <= float(r[m]) <= float(r[f"{m}_ci_high"]), (r["method"], m)


def test_cli_errors_are_one_line(monkeypatch, capsys, tiny_checkpoint, tmp_path):
    copy_tiles(tmp_path / "task", "images", "labels", strip_tags=True)
    write_split(tmp_path / "task" / "splits", TILES[:4], TILES[4:])
    (tmp_path / "task" / "task.yaml").write_text("kind: segmentation\nsensor: enmap\ngsd_m: 30\n")
    line = _one_line_error(*_main(monkeypatch, capsys, "evaluate", "--checkpoint", str(tiny_checkpoint),
                                  "--task", str(tmp_path / "task"), "--out", str(tmp_path / "b"))[::2])
    assert "lack wavelengths/FWHM" in line and "task 'task'" in line
    line = _one_line_error(*_main(monkeypatch, capsys, "evaluate", "--task", "enmap-potsdam")[::2])
    assert "--checkpoint is required" in line
    assert not (tmp_path / "b").exists()


def test_cli_wrong_preset_as_a_user_sees_it(tiny_checkpoint, tmp_path):
    res = subprocess.run([str(EXE), "evaluate", "--checkpoint", str(tiny_checkpoint), "--task", "enmap-potsdam",
                          "--preset", "base", "--out", str(tmp_path / "a")],
                         capture_output=True, text=True, timeout=300, check=False)
    line = _one_line_error(res.returncode, res.stderr)
    assert "holds a 'tiny' model, not the 'base' preset" in line and "Traceback" not in res.stderr
    assert not (tmp_path / "a").exists()


def test_cli_training_checkpoint_names_the_encoder(tmp_path):
    """Issue 20.5: ``--checkpoint RUN/checkpoint.pt`` (a real training run's resume file) is one line
    naming RUN/encoder.pt, not torch's ``weights_only`` advice."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from release_builder import write_release

    from spectralearth_model.train import TrainConfig, train

    release = write_release(tmp_path / "rel.zarr", ["enmap", "s2", "s1"])
    run = tmp_path / "run"
    train(TrainConfig.make(release=release, out=run, steps=1, batch_size=2, workers=0, warmup_steps=1,
                           checkpoint_every=1, progress=False, seed=1, sensors=("enmap", "s2", "s1")))
    res = subprocess.run([str(EXE), "evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--task", "enmap-potsdam",
                          "--out", str(tmp_path / "rep")], capture_output=True, text=True, timeout=300, check=False)
    line = _one_line_error(res.returncode, res.stderr)
    assert "this is a training checkpoint" in line and f"pass {run / 'encoder.pt'}" in line, line
    assert "weights_only" not in res.stderr and not (tmp_path / "rep").exists()
