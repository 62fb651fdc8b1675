"""The JEPA objective: views, gradients for DDP, EMA, the collapse monitor, and learning."""

from __future__ import annotations

import math

import torch

from spectralearth_model.crops import crop_size, one_sensor_each, sample_local_view
from spectralearth_model.jepa import JEPA, collapse_stats, variance_covariance

#: Floors of a healthy collapse monitor for the tiny preset on 4 synthetic locations x 4x4
#: last-stage cells = 64 target tokens of width 128: a collapsed encoder gives eff_rank ~1 and
#: emb_std ~0; at initialisation the tiny model gives eff_rank ~33 and emb_std ~0.25.
EFF_RANK_FLOOR = 8.0
EMB_STD_FLOOR = 0.05


def test_collapse_monitor_tells_collapsed_from_spread_embeddings():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(256, 64, generator=g)
    healthy = collapse_stats(spread)
    assert healthy["eff_rank"] > 50 and healthy["emb_std"] > 0.9
    # every embedding the same vector (plus float noise): the classic JEPA collapse
    same = torch.randn(1, 64, generator=g).expand(256, -1) + 1e-6 * torch.randn(256, 64, generator=g)
    collapsed = collapse_stats(same)
    assert collapsed["emb_std"] < 1e-3
    # embeddings on a line: rank collapse, although every dimension still varies
    line = torch.randn(256, 1, generator=g) * torch.randn(1, 64, generator=g)
    assert collapse_stats(line)["eff_rank"] < 1.5 < EFF_RANK_FLOOR


def test_variance_covariance_penalises_collapse():
    g = torch.Generator().manual_seed(0)
    v_ok, c_ok = variance_covariance(torch.randn(512, 32, generator=g))
    shrunk, _ = variance_covariance(torch.randn(512, 32, generator=g) * 0.1)  # std 0.1 < 1
    _, c_line = variance_covariance(torch.randn(512, 1, generator=g).expand(-1, 32))  # all dims equal
    assert v_ok < 0.05 and shrunk > 0.8
    assert c_ok < 0.2 and c_line > 20


def test_local_views_are_one_sensor_aligned_crops(tiny_cfg, scenes, make_batch):
    batch = make_batch(scenes, 4)
    present = batch["present"].clone()
    present[0, 3:] = False  # sample 0 has only the three HSI products
    batch["present"] = present
    for _ in range(10):
        keep = one_sensor_each(present)
        assert keep.sum(dim=1).tolist() == [1, 1, 1, 1]
        assert not (keep & ~present).any()
        view, (top, left, size) = sample_local_view(batch, tiny_cfg, (8, 8))
        assert size == crop_size(tiny_cfg, 8, tiny_cfg.local_crop) == 4
        assert top % tiny_cfg.grid_unit == 0 and left % tiny_cfg.grid_unit == 0
        assert view["token_origin"] == (top, left)
        assert view["present"].sum(dim=1).tolist() == [1, 1, 1, 1]
        for name, e in view["sensors"].items():
            p = tiny_cfg.patch_px(name)
            assert e["data"].shape[-2:] == (4 * p, 4 * p)
            rows, cols = slice(top * p, (top + 4) * p), slice(left * p, (left + 4) * p)
            assert torch.equal(e["data"], batch["sensors"][name]["data"][..., rows, cols])


def test_every_trainable_parameter_gets_a_gradient_in_a_jepa_step(tiny_cfg, scenes, make_batch):
    """What lets DDP run without ``find_unused_parameters``, even with a product absent."""
    torch.manual_seed(0)
    model = JEPA(tiny_cfg)
    batch = make_batch(scenes, 2)
    del batch["sensors"]["s1"]
    batch["present"][:, tiny_cfg.sensor_names.index("s1")] = False
    loss, metrics = model(batch)
    assert math.isfinite(metrics["loss"]) and loss.requires_grad
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert not [n for n, p in trainable if p.grad is None]
    assert all(not n.startswith("target_encoder.") for n, _ in trainable)  # EMA only
    assert all(p.grad is None for p in model.target_encoder.parameters())
    # the predictor and the context encoder really learn
    assert model.predictor.out.weight.grad.abs().sum() > 0
    assert model.encoder.encoder.stages[-1][0].attn.qkv.weight.grad.abs().sum() > 0


def test_target_follows_the_context_encoder_by_ema(tiny_cfg):
    torch.manual_seed(0)
    model = JEPA(tiny_cfg)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = [t.clone() for t in model.target_encoder.parameters()]
    model.update_target(0.75)
    for b, t, c in zip(before, model.target_encoder.parameters(), model.encoder.parameters()):
        torch.testing.assert_close(t, 0.75 * b + 0.25 * c)


def test_monitor_reported_every_n_calls(tiny_cfg, scenes, make_batch):
    from spectralearth_model.config import preset

    torch.manual_seed(0)
    model = JEPA(preset("tiny", monitor_every=3))
    batch = make_batch(scenes, 2)
    with torch.no_grad():
        reported = ["eff_rank" in model(batch)[1] for _ in range(7)]
    assert reported == [True, False, False, True, False, False, True]


def test_loss_falls_and_monitor_stays_healthy_on_synthetic_scenes(tiny_cfg, scenes):
    """32 AdamW steps of the tiny preset on structured synthetic locations (NOT real data)."""
    from spectralearth_model.config import preset

    torch.manual_seed(0)
    cfg = preset("tiny", monitor_every=8)
    model = JEPA(cfg)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    g = torch.Generator().manual_seed(1)
    losses, monitors = [], []
    for _ in range(32):
        loss, metrics = model(scenes.batch(4, 960.0, g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.update_target(0.99)
        losses.append(metrics["loss"])
        if "eff_rank" in metrics:
            monitors.append(metrics)
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    assert last < 0.9 * first, losses
    assert len(monitors) == 4
    for m in monitors:
        assert m["eff_rank"] > EFF_RANK_FLOOR and m["emb_std"] > EMB_STD_FLOOR, monitors
