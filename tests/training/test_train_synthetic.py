"""The trainer on an endless SYNTHESIZED stream (issue 17): the EMA target is the export, the probe
monitor is logged with the loss, views come from the stream position, and resume is exact."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from spectralearth_model.checkpoint import load_encoder
from spectralearth_model.synthetic import SyntheticStream
from spectralearth_model.train import TrainConfig, TrainError, train, view_seeds

SENSORS = ("enmap", "s2", "s1")


def _cfg(out: Path, **kw) -> TrainConfig:
    base = {"synthetic_cell_m": 960.0, "out": out, "steps": 4, "batch_size": 2, "workers": 0, "warmup_steps": 1,
            "checkpoint_every": 2, "progress": False, "seed": 3, "sensors": SENSORS, "probe_every": 2}
    return TrainConfig.make(**{**base, **kw})


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_export_is_the_ema_target_and_the_probe_monitor_is_logged(tmp_path):
    s = train(_cfg(tmp_path / "run"))
    ckpt = torch.load(s.checkpoint, weights_only=False)["model"]
    target = {k.removeprefix("target_encoder."): v for k, v in ckpt.items() if k.startswith("target_encoder.")}
    online = {k.removeprefix("encoder."): v for k, v in ckpt.items() if k.startswith("encoder.")}
    enc, cfg = load_encoder(s.encoder)
    assert cfg.sensor_names == SENSORS
    exported = enc.state_dict()
    assert set(exported) == set(target)
    assert all(torch.equal(exported[k], target[k]) for k in target)
    assert any(not torch.equal(target[k], online[k]) for k in target)  # the EMA really lags
    on, _ = load_encoder(s.out / "encoder_online.pt")
    assert all(torch.equal(v, online[k]) for k, v in on.state_dict().items())
    rows = _rows(s.out)
    probed = [r for r in rows if r.get("probe_oa_all")]
    assert [int(r["step"]) for r in probed] == [2, 4]
    for r in probed:
        for k in ("all", *SENSORS):
            assert 0.0 <= float(r[f"probe_oa_{k}"]) <= 1.0
    assert s.plot is not None and s.plot.stat().st_size > 0


def test_synthetic_run_resumes_to_the_same_loss_curve(tmp_path):
    straight = _rows(train(_cfg(tmp_path / "straight", probe_every=0)).out)
    cfg = _cfg(tmp_path / "stopped", probe_every=0)
    train(cfg.model_copy(update={"stop_at": 2}))
    train(cfg.model_copy(update={"resume": True}))
    resumed = _rows(cfg.out)
    assert [r["step"] for r in resumed] == [r["step"] for r in straight] == ["1", "2", "3", "4"]
    for a, b in zip(straight, resumed):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), abs=1e-6, rel=0)


def test_stream_and_view_seeds_are_pure_functions_of_the_position():
    from spectralearth_model.config import preset

    cfg = preset("tiny", sensors=SENSORS)
    a, b = SyntheticStream(cfg, 2, 960.0, seed=1), SyntheticStream(cfg, 2, 960.0, seed=1, start=5)
    assert torch.equal(a.at(5)["sensors"]["s2"]["data"], next(iter(b))["sensors"]["s2"]["data"])
    assert torch.equal(a.at(5)["view_seed"], next(iter(b))["view_seed"])
    # two DDP ranks read different positions, hence different views
    r0, r1 = (next(iter(SyntheticStream(cfg, 2, 960.0, seed=1, rank=r, world_size=2))) for r in (0, 1))
    assert not torch.equal(r0["view_seed"], r1["view_seed"])
    assert torch.equal(view_seeds(3, 4, 0, 1, 2), view_seeds(3, 4, 0, 1, 2))
    assert not torch.equal(view_seeds(3, 4, 0, 0, 2), view_seeds(3, 4, 0, 1, 2))


def test_a_run_needs_exactly_one_data_source(tmp_path):
    with pytest.raises(TrainError, match="exactly one of release"):
        TrainConfig.make(out=tmp_path)
    with pytest.raises(TrainError, match="exactly one of release"):
        TrainConfig.make(out=tmp_path, release=tmp_path / "r.zarr", synthetic_cell_m=960.0)
