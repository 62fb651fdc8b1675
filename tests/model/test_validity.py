"""Which pixels and tokens the model counts as observed (issue 17): clouds and shadows are invalid,
a token needs enough valid pixels, non-finite pixels never reach a token, the batch GSD is read."""

from __future__ import annotations

import torch

from spectralearth_data.masks import MaskFlag
from spectralearth_model.model import build_encoder


def test_clouds_and_shadows_are_invalid_and_a_token_needs_enough_valid_pixels(tiny_cfg, scenes, make_batch):
    torch.manual_seed(0)
    enc = build_encoder(tiny_cfg)
    batch = make_batch(scenes, 1)
    mask = batch["sensors"]["enmap"]["mask"]  # (1, 32, 32): 4x4 px per token
    mask[0, 0:3, 0:4] = int(MaskFlag.CLOUD)  # token (0, 0): 12 of 16 px cloudy -> absent
    mask[0, 0:1, 4:8] = int(MaskFlag.CLOUD_SHADOW)  # token (0, 1): 4 of 16 px -> still present
    mask[0, 4:6, 0:4] = int(MaskFlag.CLOUD_SHADOW)  # token (1, 0): 8 of 16 px -> present (half valid)
    _, present = enc.embedder(batch)  # (B, S, N)
    enmap = present[0, tiny_cfg.sensor_names.index("enmap")].view(8, 8)
    assert not enmap[0, 0] and enmap[0, 1] and enmap[1, 0]
    assert int(enmap.sum()) == 63
    # water or snow are surface, not invalid
    mask[:] = int(MaskFlag.WATER | MaskFlag.SNOW_ICE)
    assert bool(enc.embedder(batch)[1][0, tiny_cfg.sensor_names.index("enmap")].all())


def test_a_non_finite_pixel_never_reaches_a_token(tiny_cfg, scenes, make_batch):
    torch.manual_seed(0)
    enc = build_encoder(tiny_cfg)
    batch = make_batch(scenes, 2)
    batch["sensors"]["s2"]["data"][0, 3, 5, 7] = float("nan")
    batch["sensors"]["enmap"]["data"][1, 0, 0, 0] = float("inf")
    tokens, _ = enc.embedder(batch)
    assert torch.isfinite(tokens).all()
    assert torch.isfinite(enc.forward_intermediates(batch)[-1]).all()


def test_the_batch_gsd_conditions_the_tokens(tiny_cfg, scenes, make_batch):
    torch.manual_seed(0)
    enc = build_encoder(tiny_cfg)
    batch = make_batch(scenes, 1)
    same, _ = enc.embedder(batch)
    other = {**batch, "sensors": {**batch["sensors"], "s2": {**batch["sensors"]["s2"], "gsd": 20.0}}}
    moved, _ = enc.embedder(other)
    i = tiny_cfg.sensor_names.index("s2")
    assert not torch.allclose(same[:, i], moved[:, i])
    assert torch.equal(torch.cat([same[:, :i], same[:, i + 1:]], 1), torch.cat([moved[:, :i], moved[:, i + 1:]], 1))
