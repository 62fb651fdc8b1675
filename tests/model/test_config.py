"""Presets, token grids and config round-trips."""

from __future__ import annotations

import pytest

from spectralearth_data.catalog import load_sensor
from spectralearth_model.config import DEFAULT_SENSORS, ModelConfig, ModelConfigError, preset


@pytest.mark.parametrize("name", ["tiny", "small", "base"])
def test_presets_cover_the_seven_products(name):
    cfg = preset(name)
    assert cfg.sensor_names == DEFAULT_SENSORS
    assert len(cfg.dims) == len(cfg.depths) == len(cfg.heads)


def test_band_facts_come_from_the_catalog(tiny_cfg):
    for s in tiny_cfg.sensors:
        spec = load_sensor(s.name)
        assert s.n_bands == len(spec.usable_bands)
        assert s.gsd_m == spec.gsd_m
        if s.kind != "sar":
            assert s.wavelength_nm == tuple(b.wavelength_nm for b in spec.usable_bands)
    assert tiny_cfg.sensor("enmap").n_bands == 202
    assert tiny_cfg.sensor("desis").n_bands == 235


def test_token_grid_and_patch_sizes(tiny_cfg):
    assert {n: tiny_cfg.patch_px(n) for n in ("s2", "s1", "enmap", "landsat", "lst", "emit")} == {
        "s2": 12, "s1": 12, "enmap": 4, "landsat": 4, "lst": 4, "emit": 2,
    }
    assert tiny_cfg.tokens_for(960) == 8
    assert tiny_cfg.tokens_for(3840) == 32
    assert preset("base").tokens_for(3840) == 32
    with pytest.raises(ModelConfigError, match="1000 m gives"):
        tiny_cfg.tokens_for(1000)
    with pytest.raises(ModelConfigError, match="multiple of 8"):
        preset("base").tokens_for(480)


def test_config_round_trips_through_plain_data(tiny_cfg):
    assert ModelConfig.from_dict(tiny_cfg.to_dict()) == tiny_cfg


def test_bad_presets_and_overrides_are_named():
    with pytest.raises(ModelConfigError, match="unknown model preset 'huge'"):
        preset("huge")
    with pytest.raises(ModelConfigError, match="preset 'tiny'"):
        preset("tiny", widths=3)
    with pytest.raises(ModelConfigError, match="not divisible by its 3 heads"):
        preset("tiny", heads=(3, 4))
    with pytest.raises(ModelConfigError, match="token_m=100"):
        preset("tiny", token_m=100.0, sensors=["emit"])
