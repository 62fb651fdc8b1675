"""The trainer: schedules, a run's outputs, exact resume after a real kill, errors."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from release_builder import write_release

import spectralearth_model.train as train_module
from spectralearth_data.errors import ReleaseError
from spectralearth_data.progress import progress_bar
from spectralearth_model.checkpoint import load_encoder
from spectralearth_model.config import ModelConfig
from spectralearth_model.jepa import JEPA
from spectralearth_model.runtime import weights_digest
from spectralearth_model.train import TrainConfig, TrainError, lr_at, momentum_at, train

#: Three products (one HSI, one optical, SAR) keep the CPU steps short; all seven run once.
FAST_SENSORS = ("enmap", "s2", "s1")
SPECTRALEARTH = [sys.executable, "-c", "from spectralearth_model.cli import main; main()"]
#: Subprocesses run torch on one thread, like the tests in-process (same float results).
ONE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cfg(release: Path, out: Path, **kw) -> TrainConfig:
    base = {"release": release, "out": out, "steps": 8, "batch_size": 2, "workers": 0, "warmup_steps": 2,
            "checkpoint_every": 2, "progress": False, "seed": 1, "sensors": FAST_SENSORS}
    return TrainConfig.make(**{**base, **kw})


def _losses(run: Path) -> dict[int, float]:
    with open(run / "metrics.csv", newline="") as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}


def _cli_args(cfg: TrainConfig) -> list[str]:
    return ["train", "--release", str(cfg.release), "--out", str(cfg.out), "--steps", str(cfg.steps),
            "--batch-size", str(cfg.batch_size), "--warmup-steps", str(cfg.warmup_steps),
            "--checkpoint-every", str(cfg.checkpoint_every), "--seed", str(cfg.seed), "--no-progress",
            "--sensors", ",".join(cfg.sensors)]


def test_schedules_are_pure_functions_of_the_step(tmp_path):
    cfg = _cfg(tmp_path, tmp_path, steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-5)
    assert lr_at(0, cfg) == pytest.approx(1e-4) and lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(10, cfg) == pytest.approx(1e-3) and lr_at(99, cfg) == pytest.approx(1e-5)
    mid = lr_at(10 + 89 // 2, cfg)
    assert 1e-5 < mid < 1e-3 and abs(mid - (1e-5 + 1e-3) / 2) < 1e-5
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 99))
    assert momentum_at(0, 100, 0.99, 1.0) == pytest.approx(0.99)
    assert momentum_at(99, 100, 0.99, 1.0) == pytest.approx(1.0)
    assert all(momentum_at(s, 100, 0.99, 1.0) <= momentum_at(s + 1, 100, 0.99, 1.0) for s in range(99))


def test_run_writes_metrics_plot_checkpoint_and_encoder(release, tmp_path, sensors, monkeypatch):
    bars = []

    def recording_bar(enabled, total, label, **kw):  # the shared rich bar, its calls recorded
        bars.append({"enabled": enabled, "total": total, **kw, "notes_seen": []})
        with progress_bar(enabled, total, label, **kw) as advance:
            def record(n=1, note=None):
                bars[-1]["notes_seen"].append(note)
                advance(n, note=note)

            yield record

    monkeypatch.setattr(train_module, "progress_bar", contextlib.contextmanager(recording_bar))
    cfg = _cfg(release, tmp_path / "run", steps=4, accum_steps=2, sensors=None, progress=True)  # all products
    summary = train(cfg)
    assert [(b["enabled"], b["total"], b["completed"]) for b in bars] == [(True, 4, 0)]
    assert len(bars[0]["notes_seen"]) == 4 and bars[0]["notes_seen"][-1].startswith("loss=")
    run = cfg.out
    assert summary.steps == 4 and summary.samples_seen == 4 * 2 * 2
    assert 0.0 <= summary.data_wait_fraction < 1.0
    losses = _losses(run)
    assert sorted(losses) == [1, 2, 3, 4] and all(math.isfinite(v) for v in losses.values())
    with open(run / "metrics.csv", newline="") as f:
        header = next(csv.reader(f))
    for col in ("lr", "momentum", "grad_norm", "data_s", "emb_std", "eff_rank"):
        assert col in header
    assert (run / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 4 and ckpt["samples_consumed"] == 16
    # the EMA update took its momentum from the tested schedule (momentum_at), with the preset's ends
    mcfg = ModelConfig.from_dict(ckpt["model_config"])
    with open(run / "metrics.csv", newline="") as f:
        logged = {int(r["step"]): float(r["momentum"]) for r in csv.DictReader(f)}
    assert logged == pytest.approx({s: momentum_at(s - 1, 4, mcfg.ema_start, mcfg.ema_end) for s in logged})
    # the ranks' digests are the one weights digest (the evaluation's proof of frozen weights)
    jepa = JEPA(mcfg)
    jepa.load_state_dict(ckpt["model"])
    assert summary.rank_param_digests == [weights_digest(jepa)[:16]]
    assert {"torch", "numpy", "python"} <= set(ckpt["rng"][0])
    encoder, mcfg = load_encoder(run / "encoder.pt")
    assert mcfg.name == "tiny" and mcfg.sensor_names == tuple(sensors)
    assert sum(p.numel() for p in encoder.parameters()) > 0
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 4
    assert not list(run.glob(".*tmp*"))  # atomic writes leave no temp files
    with pytest.raises(TrainError, match="already holds a run"):  # nothing already written is lost
        train(cfg)


#: Collapse-monitor floor for the tiny preset at batch 4: 64 target tokens (4 locations x 4x4
#: last-stage cells) of width 128; a collapsed encoder gives ~1, a healthy one ~20 here.
EFF_RANK_FLOOR = 8.0


def test_tiny_loss_falls_on_a_release_while_the_monitor_stays_healthy(release, tmp_path):
    """24 steps on the seeded test release (synthesized values, not real scenes)."""
    summary = train(_cfg(release, tmp_path / "learn", steps=24, batch_size=4, warmup_steps=4,
                         checkpoint_every=24))
    with open(summary.metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["loss"]) for r in rows]
    assert sum(losses[-6:]) / 6 < 0.85 * sum(losses[:6]) / 6, losses
    monitors = [(int(r["step"]), float(r["eff_rank"]), float(r["emb_std"])) for r in rows if r["eff_rank"]]
    assert [m[0] for m in monitors] == [1, 11, 21]  # the tiny preset reports every 10 forward calls
    assert all(rank > EFF_RANK_FLOOR and std > 0.05 for _, rank, std in monitors), monitors
    # the exported encoder (weights + config) embeds a batch of the release on its own
    from spectralearth_model.data import Collate, ReleaseDataset

    encoder, mcfg = load_encoder(summary.encoder)
    ds = ReleaseDataset(release, mcfg.sensor_names)
    with torch.no_grad():
        emb = encoder.forward_features(Collate.for_dataset(ds)([ds[i] for i in range(3)]))
    assert emb.shape == (3, mcfg.embed_dim) and torch.isfinite(emb).all()
    trained = torch.load(summary.checkpoint, weights_only=False)["model"]
    # encoder.pt is the EMA target (issue 17)
    assert torch.equal(encoder.state_dict()["fusion.query"], trained["target_encoder.fusion.query"])


@pytest.mark.slow  # two CLI subprocesses with loader workers: 55-110 s on the shared 2-core machine
def test_killed_run_resumes_to_the_same_loss_curve(release, tmp_path):
    STEPS = 8
    straight = train(_cfg(release, tmp_path / "straight", steps=STEPS))
    expect = _losses(straight.out)

    cfg = _cfg(release, tmp_path / "killed", steps=STEPS)
    proc = subprocess.Popen([*SPECTRALEARTH, *_cli_args(cfg), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env=ONE_THREAD_ENV)
    ckpt = cfg.out / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its loader workers, mid-run
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()[-2000:]
    stopped_at = torch.load(ckpt, weights_only=False)["step"]
    assert 2 <= stopped_at < STEPS

    res = subprocess.run([*SPECTRALEARTH, *_cli_args(cfg), "--workers", "2", "--resume"],
                         capture_output=True, text=True, timeout=300, env=ONE_THREAD_ENV,
                         check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resumed at step {stopped_at}" in res.stdout and "final loss" in res.stdout
    got = _losses(cfg.out)
    assert sorted(got) == list(range(1, STEPS + 1))
    for step in range(1, STEPS + 1):
        assert got[step] == pytest.approx(expect[step], abs=1e-6, rel=0), step


def test_stopped_run_resumes_to_the_same_loss_curve(release, tmp_path):
    """In-process twin of the kill test: --stop-at ends a run early, --resume finishes it."""
    expect = _losses(train(_cfg(release, tmp_path / "straight", steps=6)).out)
    cfg = _cfg(release, tmp_path / "stopped", steps=6, checkpoint_every=4)
    first = train(cfg.model_copy(update={"stop_at": 3}))
    assert (first.steps, first.total_steps) == (3, 6)
    assert torch.load(cfg.out / "checkpoint.pt", weights_only=False)["step"] == 3
    second = train(cfg.model_copy(update={"resume": True}))
    assert (second.start_step, second.steps, second.samples_seen) == (3, 6, 12)
    got = _losses(cfg.out)
    assert sorted(got) == list(range(1, 7))
    for step in range(1, 7):
        assert got[step] == pytest.approx(expect[step], abs=1e-6, rel=0), step
    with pytest.raises(TrainError, match="--stop-at 3: the run is already at step 6"):
        train(cfg.model_copy(update={"resume": True, "stop_at": 3}))


def test_resume_refuses_changed_settings_and_missing_checkpoint(release, tmp_path):
    with pytest.raises(TrainError, match="no checkpoint.pt"):
        train(_cfg(release, tmp_path / "none", resume=True))
    train(_cfg(release, tmp_path / "r", steps=2))
    with pytest.raises(TrainError, match=r"changed settings \(batch_size: 2 -> 3\)"):
        train(_cfg(release, tmp_path / "r", steps=4, batch_size=3, resume=True))


def test_release_missing_or_lacking_a_product(tmp_path, sensors):
    with pytest.raises(ReleaseError, match=r"release .*absent.zarr does not exist"):
        train(_cfg(tmp_path / "absent.zarr", tmp_path / "a"))
    partial = write_release(tmp_path / "partial.zarr", ["enmap", "s2"], n_cells=2, dates=1)
    missing = ", ".join(s for s in sensors if s not in ("enmap", "s2"))
    with pytest.raises(ReleaseError, match=rf"lacks product\(s\) {missing} that the model needs"):
        train(_cfg(partial, tmp_path / "b", sensors=None))  # the preset's seven products
    with pytest.raises(TrainError, match="training config: steps"):
        _cfg(partial, tmp_path / "c", steps=0)


def test_cli_prints_one_line_for_a_bad_release(tmp_path):
    res = subprocess.run([*SPECTRALEARTH, "train", "--release", str(tmp_path / "nope.zarr"), "--out",
                          str(tmp_path / "o"), "--steps", "2"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: release {tmp_path / 'nope.zarr'} does not exist"]
