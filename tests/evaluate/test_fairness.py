"""Evaluation fairness (issue 17): the token-grid PCA baseline, the sub-token head, bootstrap
intervals, and results.png error bars. Runs on the real EnMAP Potsdam tiles and on small arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectralearth_model.evaluate import load_checkpoint, load_task
from spectralearth_model.evaluate import metrics as M
from spectralearth_model.evaluate.harness import (
    Batcher,
    MethodResult,
    TokenPCA,
    dense_maps,
    freeze,
    plan_rows,
    pool_to_tokens,
)
from spectralearth_model.evaluate.heads import SubTokenHead, fit_map_head
from spectralearth_model.evaluate.report import bar_data
from spectralearth_model.evaluate.tasks import Sample

# -- token-resolution PCA ------------------------------------------------------------------------


def test_token_pca_has_the_encoders_token_grid(tiny_checkpoint):
    encoder, cfg = load_checkpoint(tiny_checkpoint)
    task = load_task("enmap-potsdam")
    batcher = Batcher(task, cfg, torch.device("cpu"))
    samples = [task.read("test", sid) for sid in task.ids("test")]
    enc_maps = dense_maps(freeze(encoder), batcher(samples), (32, 32))

    pca = TokenPCA(cfg.patch_px("enmap"), 16).fit(task, batch_size=8)
    maps = pca(samples)

    assert cfg.patch_px("enmap") == 4  # 120 m tokens over 30 m EnMAP pixels
    assert len(maps) == 1
    assert maps[0].shape == (2, 16, *enc_maps[0].shape[-2:]) == (2, 16, 8, 8)
    assert torch.isfinite(maps[0]).all()


def test_pooling_averages_the_valid_pixels_of_each_token_cell():
    img = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    nodata = np.zeros((5, 6), bool)
    nodata[0, 0] = True
    img[:, 0, 0] = 0.0  # nodata pixels are 0 in a Sample
    mean, ok = pool_to_tokens([Sample(img, nodata, np.zeros((5, 6), np.int64))], patch=4)

    assert mean.shape == (1, 2, 2, 2) and ok.all()  # ceil(5/4) x ceil(6/4) token cells
    cell = img[0, :4, :4].ravel()[1:]  # the 15 valid pixels of the first cell
    assert mean[0, 0, 0, 0].item() == pytest.approx(cell.mean())
    assert mean[0, 1, 1, 1].item() == pytest.approx(img[1, 4:, 4:].mean())  # a partial edge cell
    all_bad = np.ones((5, 6), bool)
    _, ok = pool_to_tokens([Sample(np.zeros_like(img), all_bad, np.zeros((5, 6), np.int64))], patch=4)
    assert not ok.any()


def test_segmentation_runs_compare_at_both_resolutions():
    rows = plan_rows("segmentation", "knn")
    assert ("pca-token", "knn") in rows and ("pca-token", "subtoken") in rows
    assert ("checkpoint", "subtoken") in rows and ("pca-pixel", "linear") in rows
    assert plan_rows("segmentation", "subtoken") == [
        ("checkpoint", "subtoken"), ("random-init", "subtoken"), ("pca-token", "subtoken"), ("pca-pixel", "linear")]
    assert plan_rows("classification", "linear") == [
        ("checkpoint", "linear"), ("random-init", "linear"), ("pca-pixel", "linear")]


# -- sub-token head ------------------------------------------------------------------------------


def test_subtoken_head_outputs_the_label_resolution():
    head = SubTokenHead([64, 128], n_classes=6, factor=4)
    maps = [torch.randn(2, 64, 8, 8), torch.randn(2, 128, 4, 4)]  # tiny preset over a 32 x 32 tile
    assert head(maps, (32, 32)).shape == (2, 6, 32, 32)
    assert head(maps, (30, 29)).shape == (2, 6, 30, 29)  # a tile not a multiple of the token


def test_subtoken_head_resolves_inside_a_token():
    """Constant token features, labels that change within each 4 x 4 token (left half / right
    half): only a head that predicts per sub-token position can fit them; upsampling can't."""
    torch.manual_seed(0)
    feats = [[torch.ones(1, 8, 4, 4)]]
    cols = torch.arange(16) % 4
    target = (cols >= 2).long().expand(16, 16)[None].clone()  # (1, 16, 16)
    head = fit_map_head(SubTokenHead([8], 2, factor=4), feats, [target], steps=150, lr=1e-2)
    with torch.no_grad():
        pred = head(feats[0], (16, 16)).argmax(1)
    assert torch.equal(pred, target)
    bilinear = torch.nn.functional.interpolate(feats[0][0], size=(16, 16), mode="bilinear")
    assert torch.unique(bilinear).numel() == 1  # what the per-pixel probes see: no signal


# -- bootstrap intervals -------------------------------------------------------------------------


def _cm(n: int, acc: float, k: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.integers(0, k, n)
    p = np.where(rng.random(n) < acc, t, rng.integers(0, k, n))
    return M.confusion(t, p, k)


def test_pixel_intervals_contain_the_estimate_and_shrink_with_more_pixels():
    widths = {}
    for n in (400, 40_000):
        cm = _cm(n, 0.7)
        point = M.class_metrics(cm)
        ci = M.bootstrap_confusion(cm[None], "pixel", n_boot=500, seed=1)
        assert set(ci) == set(point)
        for key, (lo, hi) in ci.items():
            assert lo < point[key] < hi, (n, key, lo, point[key], hi)
        widths[n] = ci["oa"][1] - ci["oa"][0]
    # ~1/sqrt(n): 100x the pixels, ~10x narrower
    assert widths[40_000] < widths[400] / 5


def test_tile_intervals_resample_whole_tiles():
    tiles = np.stack([_cm(300, 0.9, seed=1), _cm(300, 0.4, seed=2)])
    lo, hi = M.bootstrap_confusion(tiles, "sample", n_boot=400, seed=0)["oa"]
    oa = [M.overall_accuracy(c) for c in tiles]
    # two tiles: resamples are {a, a}, {a, b}, {b, b}, so the interval spans the tiles' own OAs
    assert lo == pytest.approx(min(oa)) and hi == pytest.approx(max(oa))
    # the pixel bootstrap of the same pixels is far narrower: it ignores that pixels come in tiles
    plo, phi = M.bootstrap_confusion(tiles, "pixel", n_boot=400, seed=0)["oa"]
    assert phi - plo < (hi - lo) / 4
    with pytest.raises(ValueError, match="bootstrap unit must be 'pixel' or 'sample'"):
        M.bootstrap_confusion(tiles, "tile")


def test_row_intervals_for_regression_targets():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 2))
    pred = y + rng.normal(scale=0.3, size=y.shape)
    point = M.regression_metrics(y, pred)
    ci = M.bootstrap_rows(M.regression_metrics, y, pred, n_boot=300, seed=0)
    for key in ("rmse", "mae", "r2"):
        assert ci[key][0] < point[key] < ci[key][1]


# -- results.png ---------------------------------------------------------------------------------


def test_bars_carry_the_intervals():
    def row(method, v, lo, hi):
        return MethodResult("t", method, "linear", {"miou": v}, "", 4, 2, 0.1, ci={"miou": (lo, hi)})

    results = [row("checkpoint", 0.5, 0.4, 0.7), row("pca-pixel", 0.3, float("nan"), float("nan"))]
    tasks, labels, bars = bar_data(results, {"t": "segmentation"})
    assert tasks == ["t"] and labels == ["checkpoint · linear", "pca-pixel · linear"]
    vals, low, high = bars["checkpoint · linear"]
    assert vals == [0.5] and low == [pytest.approx(0.1)] and high == [pytest.approx(0.2)]
    assert bars["pca-pixel · linear"] == ([0.3], [0.0], [0.0])  # no interval: no bar
