"""Training on a release the data engine wrote (not the seeded test release).

The whole path a user runs: synthesized demo scenes -> local STAC search -> co-location ->
``engine.tile`` -> ``ReleaseDataset`` -> the tiny preset for 24 steps. The scenes are
SYNTHESIZED (the demo surface seen by all seven products), so the figures say nothing about
real imagery; what is tested is that the engine's release feeds the trainer and that the JEPA
learns from it without collapsing.
"""

from __future__ import annotations

import csv

import numpy as np
from spectralearth_data.masks import MaskFlag
from spectralearth_model.data import ReleaseDataset
from spectralearth_model.train import TrainConfig, train

ALL_SEVEN = ("enmap", "emit", "desis", "s2", "landsat", "lst", "s1")
#: Effective-rank floor of the collapse monitor (tests/model/test_jepa.py uses the same value).
EFF_RANK_FLOOR = 8.0


def test_dataset_reads_every_product_of_an_engine_release_in_physical_units(engine_release):
    ds = ReleaseDataset(engine_release, ALL_SEVEN)
    assert len(ds) >= 10
    seen = set()
    for i in range(len(ds)):
        for sensor, p in ds[i].items():
            seen.add(sensor)
            data, mask = p["data"].numpy(), p["mask"].numpy()
            valid = (mask & int(MaskFlag.NODATA)) == 0
            assert data.shape[0] == p["wavelength"].shape[0] and data.shape[1:] == mask.shape
            assert np.isfinite(data).all() and np.all(data[:, ~valid] == 0)
            if sensor in ("enmap", "emit", "desis", "s2", "landsat") and valid.any():
                refl = data[:, valid]
                assert -0.2 < float(np.median(refl)) < 1.0, sensor  # reflectance, not DNs
            if sensor == "lst" and valid.any():
                assert 200 < float(np.median(data[:, valid])) < 350  # kelvin
    assert seen == set(ALL_SEVEN)


def test_tiny_loss_falls_on_an_engine_built_release(engine_release, tmp_path):
    summary = train(TrainConfig.make(
        release=engine_release, out=tmp_path / "run", preset="tiny", steps=24, batch_size=4, workers=0,
        warmup_steps=4, checkpoint_every=24, progress=False, seed=1, sensors=ALL_SEVEN,
    ))
    with open(summary.metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == 24 and all(np.isfinite(losses))
    assert sum(losses[-6:]) / 6 < 0.85 * sum(losses[:6]) / 6, losses
    monitors = [(float(r["eff_rank"]), float(r["emb_std"])) for r in rows if r["eff_rank"]]
    assert monitors and all(rank > EFF_RANK_FLOOR and std > 0.05 for rank, std in monitors), monitors
