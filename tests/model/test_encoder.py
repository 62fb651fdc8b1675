"""The encoder: shapes for every sensor subset, gradients, band-set sharing, masked inputs."""

from __future__ import annotations

import itertools

import pytest
import torch

from spectralearth_model.config import ModelConfigError
from spectralearth_model.model import build_encoder

SENSORS = ("enmap", "emit", "desis", "s2", "landsat", "lst", "s1")
SUBSETS = [c for r in range(1, 8) for c in itertools.combinations(SENSORS, r)]


@pytest.fixture(scope="module")
def encoder(tiny_cfg):
    torch.manual_seed(0)
    return build_encoder(tiny_cfg).eval()


@pytest.fixture(scope="module")
def full_batch(scenes, make_batch):
    return make_batch(scenes, batch_size=2)


def _subset(batch: dict, names: tuple[str, ...], drop_entries: bool) -> dict:
    """Keep ``names`` present; other sensors are either zero/nodata entries or missing entirely."""
    order = list(batch["sensors"])
    keep = torch.tensor([n in names for n in order])
    present = batch["present"] & keep[None]
    sensors = {}
    for n, e in batch["sensors"].items():
        if n in names:
            sensors[n] = e
        elif not drop_entries:
            sensors[n] = {**e, "data": torch.zeros_like(e["data"]), "mask": torch.ones_like(e["mask"])}
    return {"present": present, "sensors": sensors}


@pytest.mark.parametrize("names", SUBSETS, ids=["+".join(s) for s in SUBSETS])
def test_shapes_for_every_sensor_subset(encoder, full_batch, names):
    batch = _subset(full_batch, names, drop_entries=len(names) % 2 == 0)
    with torch.no_grad():
        maps = encoder.forward_intermediates(batch)
        pooled = encoder.forward_features(batch)
    assert [tuple(m.shape) for m in maps] == [(2, 64, 8, 8), (2, 128, 4, 4)]
    assert pooled.shape == (2, 128)
    assert torch.isfinite(pooled).all()


def test_missing_entry_equals_zero_nodata_entry(encoder, full_batch):
    """A sensor left out of the dict is the same as one given as zeros with an all-nodata mask."""
    names = ("s2", "enmap")
    with torch.no_grad():
        a = encoder.forward_features(_subset(full_batch, names, drop_entries=True))
        b = encoder.forward_features(_subset(full_batch, names, drop_entries=False))
    torch.testing.assert_close(a, b)


def test_absent_sensor_does_not_change_the_embedding(encoder, full_batch):
    """Data of a sensor flagged absent must not leak into the embedding."""
    names = ("landsat", "s1")
    batch = _subset(full_batch, names, drop_entries=False)
    noisy = {**batch, "sensors": dict(batch["sensors"])}
    noisy["sensors"]["s2"] = {**full_batch["sensors"]["s2"]}  # real data but not present
    with torch.no_grad():
        torch.testing.assert_close(encoder.forward_features(batch), encoder.forward_features(noisy))


def test_every_parameter_gets_a_gradient_with_a_sensor_absent_from_the_batch(tiny_cfg, scenes, make_batch):
    """DDP without find_unused_parameters: every trainable parameter is reached in every forward."""
    torch.manual_seed(1)
    enc = build_encoder(tiny_cfg)
    batch = _subset(make_batch(scenes, 2), ("enmap", "s2", "lst"), drop_entries=True)
    maps = enc.forward_intermediates(batch)
    loss = sum((m * torch.randn_like(m)).sum() for m in maps)
    loss.backward()
    missing = [n for n, p in enc.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    # present sensors' parameters really learn; absent ones get an exact zero gradient
    assert enc.embedder.patch_embed["s2"].weight.grad.abs().sum() > 0
    assert enc.embedder.patch_embed["s1"].weight.grad.abs().sum() == 0


def test_all_parameters_get_nonzero_gradients_with_all_sensors(tiny_cfg, scenes, make_batch):
    torch.manual_seed(2)
    enc = build_encoder(tiny_cfg)
    maps = enc.forward_intermediates(make_batch(scenes, 2))
    sum((m * torch.randn_like(m)).sum() for m in maps).backward()
    zero = [n for n, p in enc.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert zero == []


def test_fully_masked_sensor_gives_no_nan(encoder, full_batch):
    """A present sensor whose every pixel is nodata (and NaN), alone or with others: finite output."""
    for names in [("emit",), ("emit", "s2")]:
        batch = _subset(full_batch, names, drop_entries=True)
        e = batch["sensors"]["emit"]
        batch["sensors"]["emit"] = {**e, "data": torch.full_like(e["data"], float("nan")),
                                    "mask": torch.ones_like(e["mask"])}
        with torch.no_grad():
            out = encoder.forward_intermediates(batch)
        assert all(torch.isfinite(m).all() for m in out), names


def test_no_sensor_present_gives_finite_output(encoder, full_batch):
    batch = {**full_batch, "present": torch.zeros_like(full_batch["present"])}
    with torch.no_grad():
        assert torch.isfinite(encoder.forward_features(batch)).all()


def test_one_set_of_weights_reads_every_hsi_band_set(encoder, scenes, tiny_cfg, make_batch):
    """EnMAP (202), EMIT (244 good of 285), DESIS (235) and an unseen band set share the tokenizer."""
    batch = make_batch(scenes, 2)
    tok = encoder.embedder.tokenizer
    counts = {}
    outs = {}
    for name in ("enmap", "emit", "desis"):
        e = batch["sensors"][name]
        counts[name] = e["data"].shape[1]
        outs[name] = tok(e["data"], e["wavelength"], e["fwhm"], tiny_cfg.patch_px(name))
    # an unseen imager: 90 bands, 20 nm apart, 12 nm wide, 30 m
    wl = torch.arange(410.0, 2200.0, 20.0)
    unseen = torch.rand(2, wl.numel(), 32, 32) * 0.5
    outs["unseen"] = tok(unseen, wl, torch.full_like(wl, 12.0), 4)
    assert counts == {"enmap": 202, "emit": 244, "desis": 235}
    for name, t in outs.items():
        assert t.shape == (2, 64, 8, 8), name
        assert torch.isfinite(t).all(), name
    # the unseen band set also runs through the full encoder under the EnMAP slot
    b = {"present": batch["present"], "sensors": {**batch["sensors"],
         "enmap": {**batch["sensors"]["enmap"], "data": unseen, "wavelength": wl, "fwhm": torch.full_like(wl, 12.0)}}}
    with torch.no_grad():
        assert torch.isfinite(encoder.forward_features(b)).all()


def test_virtual_bands_agree_across_band_sets(encoder):
    """Two band sets sampling the same smooth spectrum give nearly the same virtual bands."""
    tok = encoder.embedder.tokenizer

    def spectrum(wl):
        return 0.3 + 0.1 * torch.sin(wl / 300.0)

    a_wl, b_wl = torch.arange(420.0, 2450.0, 6.5), torch.arange(400.0, 2500.0, 17.0)
    va = []
    for wl, fw in [(a_wl, 7.0), (b_wl, 15.0)]:
        w, cov = tok.band_weights(wl, torch.full_like(wl, fw))
        va.append((w @ spectrum(wl), cov))
    covered = (va[0][1] > 0.5) & (va[1][1] > 0.5)
    assert covered.sum() >= tok.groups // 2
    diff = (va[0][0] - va[1][0]).abs()[covered]
    assert diff.max() < 0.02, diff


def test_masked_bands_are_ignored(encoder):
    tok = encoder.embedder.tokenizer
    wl = torch.arange(400.0, 2500.0, 10.0)
    valid = torch.ones_like(wl, dtype=torch.bool)
    valid[50:80] = False
    w, _ = tok.band_weights(wl, torch.full_like(wl, 10.0), valid)
    assert w[:, 50:80].abs().max() < 1e-6
    torch.testing.assert_close(w.sum(dim=1), torch.ones(tok.groups))


def test_bad_batches_raise_clear_errors(encoder, full_batch):
    s2 = full_batch["sensors"]["s2"]
    bad = {**full_batch, "sensors": {**full_batch["sensors"], "s2": {**s2, "data": s2["data"][:, :10]}}}
    with pytest.raises(ModelConfigError, match="'s2': 10 channels, the model expects its 12"):
        encoder.forward_features(bad)
    bad = {**full_batch, "sensors": {**full_batch["sensors"], "s2": {**s2, "data": s2["data"][..., :48, :48],
                                                                   "mask": s2["mask"][..., :48, :48]}}}
    with pytest.raises(ModelConfigError, match="different footprints"):
        encoder.forward_features(bad)
    bad = {**full_batch, "sensors": {**full_batch["sensors"], "s2": {**s2, "data": s2["data"][..., :50, :50],
                                                                   "mask": s2["mask"][..., :50, :50]}}}
    with pytest.raises(ModelConfigError, match="50x50 px is not a multiple of its 12 px"):
        encoder.forward_features(bad)


def test_unflagged_nan_pixels_count_as_nodata(encoder, full_batch):
    """A NaN/Inf pixel the mask does not flag is treated exactly like a flagged, zeroed pixel."""
    s2 = full_batch["sensors"]["s2"]
    nan_data = s2["data"].clone()
    nan_data[0, 3, 10:14, 20:30] = float("nan")
    nan_data[1, :, 50, 50] = float("inf")
    flagged_data, flagged_mask = s2["data"].clone(), s2["mask"].clone()
    flagged_data[0, :, 10:14, 20:30] = 0.0
    flagged_mask[0, 10:14, 20:30] = 1
    flagged_data[1, :, 50, 50] = 0.0
    flagged_mask[1, 50, 50] = 1
    with torch.no_grad():
        a = encoder.forward_intermediates(
            {**full_batch, "sensors": {**full_batch["sensors"], "s2": {**s2, "data": nan_data}}})
        b = encoder.forward_intermediates(
            {**full_batch, "sensors": {**full_batch["sensors"],
                                       "s2": {**s2, "data": flagged_data, "mask": flagged_mask}}})
    for x, y in zip(a, b):
        assert torch.isfinite(x).all()
        torch.testing.assert_close(x, y)
