"""``spectralearth model-info``: parameters per component of each preset."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from spectralearth_model.cli import app
from spectralearth_model.config import ModelConfigError, preset
from spectralearth_model.jepa import JEPA


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_model_info_json_counts_every_component(name):
    res = CliRunner().invoke(app, ["model-info", "--preset", name, "--json"])
    assert res.exit_code == 0, res.output
    params = json.loads(res.output)["parameters"]
    model = JEPA(preset(name))
    enc = sum(p.numel() for p in model.encoder.parameters())
    assert params["encoder total"] == enc
    assert params["JEPA predictor"] == sum(p.numel() for p in model.predictor.parameters())
    parts = [v for k, v in params.items() if not k.endswith("total") and "predictor" not in k]
    assert sum(parts) == enc  # the component rows add up to the encoder
    assert params["spectral tokenizer (HSI)"] > 0 and params["cross-sensor fusion"] > 0
    assert {f"patch embed {s}" for s in ("s2", "landsat", "lst", "s1")} <= set(params)


def test_model_info_table_and_bad_preset():
    res = CliRunner().invoke(app, ["model-info", "--preset", "base"])
    assert res.exit_code == 0, res.output
    assert "encoder stage 4 (dim 768, depth 3)" in res.output and "spectral tokenizer" in res.output
    bad = CliRunner().invoke(app, ["model-info", "--preset", "huge"])
    # spectralearth_data.cli.run (every main()) turns this error into one "error: ..." line and exit code 2
    assert isinstance(bad.exception, ModelConfigError)
    assert "unknown model preset 'huge'; choose one of: tiny, small, base" in str(bad.exception)
