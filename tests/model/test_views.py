"""Student views of the JEPA (issue 17): multi-sensor subsets, per-kind odds, seeded draws, and
the wavelength encoding that tells neighbouring EnMAP bands apart."""

from __future__ import annotations

import torch

from spectralearth_model.config import preset
from spectralearth_model.crops import draw_views, one_sensor_each, sensor_subset
from spectralearth_model.jepa import JEPA


def _seeded(batch: dict, seeds: list[int]) -> dict:
    return {**batch, "view_seed": torch.tensor(seeds)}


def test_multi_sensor_views_hold_two_or_more_present_sensors(tiny_cfg, scenes, make_batch):
    batch = make_batch(scenes, 4)
    present = batch["present"].clone()
    present[1, 2:] = False  # sample 1: enmap + emit only
    present[2, 1:] = False  # sample 2: enmap only
    batch["present"] = present
    cfg = preset("tiny", n_local_views=1, n_multi_views=3)
    for s in range(20):
        views = draw_views(_seeded(batch, [s, s + 1, s + 2, s + 3]), cfg, (8, 8))
        assert len(views) == 4
        assert views[0].keep.sum(1).tolist() == [1, 1, 1, 1]
        for v in views[1:]:
            n = v.keep.sum(1).tolist()
            assert not (v.keep & ~present).any()
            assert n[0] >= 2 and n[3] >= 2 and n[1] == 2 and n[2] == 1  # >= 2 where 2 are present
            assert n[0] < 7 and n[3] < 7  # never all of 3+ sensors (that is the target's view)


def test_views_are_reproducible_from_the_sample_seeds_and_differ_between_seeds(tiny_cfg, scenes, make_batch):
    batch = make_batch(scenes, 4)
    a = draw_views(_seeded(batch, [1, 2, 3, 4]), tiny_cfg, (8, 8))
    torch.manual_seed(123)  # the global RNG plays no part
    b = draw_views(_seeded(batch, [1, 2, 3, 4]), tiny_cfg, (8, 8))
    assert [(v.top, v.left, v.size) for v in a] == [(v.top, v.left, v.size) for v in b]
    assert all(torch.equal(x.keep, y.keep) for x, y in zip(a, b))
    # a sample's sensor choice depends on its own seed only, not on its neighbours'
    c = draw_views(_seeded(batch, [1, 9, 9, 9]), tiny_cfg, (8, 8))
    assert all(torch.equal(x.keep[0], y.keep[0]) for x, y in zip(a, c))
    # other seeds (another DDP rank, another stream position) give other views
    others = [draw_views(_seeded(batch, [s, s + 1, s + 2, s + 3]), tiny_cfg, (8, 8)) for s in range(10, 20)]
    assert any(not torch.equal(o[0].keep, a[0].keep) for o in others)


def test_jepa_loss_is_reproducible_from_view_seeds(tiny_cfg, scenes, make_batch):
    torch.manual_seed(0)
    model = JEPA(tiny_cfg)
    batch = _seeded(make_batch(scenes, 2), [5, 6])
    with torch.no_grad():
        first = model(batch)[0]
        torch.manual_seed(99)
        again = model(batch)[0]
    assert torch.equal(first, again)


def test_single_sensor_views_follow_the_kind_weights():
    present = torch.ones(4000, 3, dtype=torch.bool)
    u = torch.rand(4000, 3, generator=torch.Generator().manual_seed(0))
    keep = one_sensor_each(present, u, torch.tensor([1.0, 1.0, 0.5]))
    share = keep.float().mean(0)
    assert abs(float(share[2]) - 0.2) < 0.03 and abs(float(share[0]) - 0.4) < 0.03
    # an absent sensor is never drawn, whatever its odds
    present[:, 0] = False
    assert not one_sensor_each(present, u, torch.tensor([100.0, 1.0, 1.0]))[:, 0].any()


def test_sensor_subset_takes_the_k_highest_present():
    present = torch.tensor([[True, True, False, True]])
    u = torch.tensor([[0.1, 0.9, 0.99, 0.5]])
    assert sensor_subset(present, u, torch.tensor([2])).tolist() == [[False, True, False, True]]


def test_wavelength_encoding_separates_neighbouring_enmap_bands(tiny_cfg):
    """Periods down to a few nm: neighbouring EnMAP bands (6.5-10 nm apart) get clearly different
    encodings; the old coarse encoding (finest period 2200 nm) put them 0.6 % apart."""
    from spectralearth_model.layers import fourier_features
    from spectralearth_model.tokenizer import normalise_wavelength

    wl = torch.tensor(tiny_cfg.sensor("enmap").wavelength_nm[:60])
    tok = JEPA(tiny_cfg).encoder.embedder.tokenizer
    u = normalise_wavelength(wl)
    fine = fourier_features(u * tok._wl_scale, tok._n_freq, tok._wl_ratio)
    coarse = fourier_features(u, tok._n_freq, 64.0)

    def neighbour_gap(f):  # relative distance of each band's encoding to the next band's
        return ((f[1:] - f[:-1]).norm(dim=1) / f.norm(dim=1)[:-1]).min()

    assert neighbour_gap(coarse) < 0.02
    assert neighbour_gap(fine) > 0.2


def test_view_weights_mark_the_crop_cells():
    from spectralearth_model.jepa import view_weights

    w = view_weights(4, 4, 1, 2, 2, 0.25, "cpu").view(4, 4)
    assert w[1:3, 2:4].eq(1.0).all() and w.sum() == 4 + 12 * 0.25


def test_objective_variants_train_every_parameter(scenes, make_batch):
    """The shallow target, SIGReg and in-crop-only targets keep every trainable parameter in the
    graph (what DDP without ``find_unused_parameters`` needs)."""
    for over in ({"shallow_weight": 1.0}, {"regulariser": "sigreg"}, {"outside_weight": 0.0, "multi_crop": 1.0}):
        torch.manual_seed(0)
        model = JEPA(preset("tiny", **over))
        loss, metrics = model(_seeded(make_batch(scenes, 2), [1, 2]))
        loss.backward()
        assert torch.isfinite(loss)
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, (over, missing)
