"""The evaluation harness end to end on the real EnMAP Potsdam task, and the frozen-encoder rule."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
import torch
from evaluate_helpers import FAST, seg_rows

from spectralearth_model.evaluate import evaluate, freeze, load_checkpoint, load_task
from spectralearth_model.evaluate.harness import Batcher, run_method

METRICS = ("miou", "oa", "macro_f1")


def _rows(out) -> list[dict]:
    with (out / "results.csv").open() as f:
        return list(csv.DictReader(f))


def test_end_to_end_on_the_real_enmap_task(tiny_checkpoint, tmp_path):
    before = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    report = evaluate(tiny_checkpoint, ["enmap-potsdam"], head="linear", out=tmp_path / "rep", options=FAST)

    rows = _rows(tmp_path / "rep")
    assert [(r["method"], r["head"]) for r in rows] == seg_rows("linear")
    assert {r["task"] for r in rows} == {"enmap-potsdam"}
    for r in rows:
        assert (r["n_train"], r["n_test"]) == ("4", "2")  # split by tile: 4 train, 2 test tiles
        assert (r["n_test_scored"], r["ci_unit"]) == ("729", "tile")  # 729 labelled test pixels
        for m in METRICS:
            assert 0.0 <= float(r[m]) <= 1.0, (r["method"], m, r[m])
        # OA pooled over 2 tiles lies between the tiles' own OAs: the tile bootstrap's extremes
        assert float(r["oa_ci_low"]) <= float(r["oa"]) <= float(r["oa_ci_high"]), r["method"]
    # Raw spectra of the real scene separate the land-cover classes far above the majority
    # class of the two test tiles (204 of 729 labelled pixels = 0.28), per pixel and per token.
    by = {(r["method"], r["head"]): r for r in rows}
    pca = by["pca-pixel", "linear"]
    assert float(pca["oa"]) > 0.4 and float(pca["miou"]) > 0.15
    assert float(by["pca-token", "linear"]["oa"]) > 0.3
    assert by["pca-token", "linear"]["features"] == "raw bands pooled to tokens, 120 m, PCA16"
    assert pca["features"] == "raw bands per pixel, 30 m, PCA16"
    assert by["checkpoint", "subtoken"]["features"] == "encoder tokens, 120 m"

    text = report.read_text()
    assert report.name == "report.md"
    assert "ENMAP01-____L2A-DT0000001867_20220724T104526Z" in text  # names the real scene
    assert "weights never trained (random init, seed 0)" in text
    assert "raw enmap-potsdam spectra (218 bands), no encoder" in text
    assert "pretrained on: unknown data" in text  # no training-run config next to this checkpoint
    assert "by tile: test = enmap_potsdam_tile_128_32, enmap_potsdam_tile_192_96" in text
    # the test-set size and what the intervals resample, flagged as small
    assert "- test set: 729 labelled pixels in 2 tiles; intervals resample whole tiles" in text
    assert "**small test set: 729 labelled pixels in 2 tiles.**" in text
    assert "encoder tokens 120 m, labels 30 m (sub-token factor 4)" in text
    assert "| pca-token | raw bands pooled to tokens, 120 m, PCA16 | linear |" in text
    assert "oa [95% CI]" in text
    doc = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert doc["ci_level"] == 0.95 and len(doc["results"]) == len(rows)
    for r in doc["results"]:
        assert set(r["ci"]) == set(r["metrics"]) == set(METRICS)
        assert r["ci_unit"] == "tile" and r["n_test_scored"] == 729
    assert doc["meta"]["tasks"][0]["n_test_scored"] == 729
    png = (tmp_path / "rep" / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # the checkpoint file is only read
    assert hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest() == before


def test_report_names_the_pretraining_run(tiny_checkpoint, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / "encoder.pt"
    ckpt.write_bytes(tiny_checkpoint.read_bytes())
    (run / "config.json").write_text(
        '{"train": {"release": "data/demo.zarr", "steps": 40, "preset": "tiny"}, "model": {}}'
    )
    report = evaluate(ckpt, ["enmap-potsdam"], head="knn", out=tmp_path / "rep", options=FAST)
    text = report.read_text()
    assert "weights pretrained on release data/demo.zarr (40 steps, preset tiny)" in text
    assert [(r["method"], r["head"]) for r in _rows(tmp_path / "rep")] == seg_rows("knn")


def test_same_seed_same_scores(tiny_checkpoint, tmp_path):
    a = evaluate(tiny_checkpoint, ["enmap-potsdam-pixels"], head="knn", out=tmp_path / "a", options=FAST)
    b = evaluate(tiny_checkpoint, ["enmap-potsdam-pixels"], head="knn", out=tmp_path / "b", options=FAST)
    ra, rb = _rows(a.parent), _rows(b.parent)
    assert [{m: r[m] for m in METRICS} for r in ra] == [{m: r[m] for m in METRICS} for r in rb]


@pytest.mark.parametrize("head", ["upernet", "subtoken"])
def test_map_heads_leave_the_encoder_frozen(tiny_checkpoint, head):
    encoder, cfg = load_checkpoint(tiny_checkpoint)
    freeze(encoder)
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    task = load_task("enmap-potsdam")
    batcher = Batcher(task, cfg, torch.device("cpu"))

    result = run_method(task, "checkpoint", encoder, batcher, head, FAST)

    assert result.head == head
    assert all(0.0 <= result.metrics[m] <= 1.0 for m in METRICS)
    assert len(result.per_class) == 6
    assert not encoder.training
    params = list(encoder.parameters())
    assert params and all(not p.requires_grad and p.grad is None for p in params)
    after = encoder.state_dict()
    assert state.keys() == after.keys()
    assert all(torch.equal(state[k], after[k]) for k in state)


def test_frozen_features_carry_no_graph(tiny_checkpoint):
    from spectralearth_model.evaluate.harness import dense_maps

    encoder, cfg = load_checkpoint(tiny_checkpoint)
    task = load_task("enmap-potsdam")
    batch = Batcher(task, cfg, torch.device("cpu"))([task.read("train", task.ids("train")[0])])
    maps = dense_maps(freeze(encoder), batch, (32, 32))
    # tiny preset: stage maps of 8x8 (64 ch) and 4x4 (128 ch) tokens over the 32x32 px tile
    assert [tuple(m.shape) for m in maps] == [(1, 64, 8, 8), (1, 128, 4, 4)]
    assert all(not m.requires_grad and m.grad_fn is None for m in maps)
    assert all(torch.isfinite(m).all() for m in maps)


def test_builtin_task_reads_real_tiles_in_reflectance():
    task = load_task("enmap-potsdam")
    info = task.info
    assert info.n_bands == 218  # 224 bands minus the 6 bad bands (bbl = 0)
    assert info.wavelength_nm[0] == pytest.approx(418.24) and info.fwhm_nm[0] == pytest.approx(6.99561)
    assert task.ids("test") == ["enmap_potsdam_tile_128_32", "enmap_potsdam_tile_192_96"]
    s = task.read("test", "enmap_potsdam_tile_192_96")
    assert s.image.shape == (218, 32, 32) and s.image.dtype == np.float32
    assert -0.1 < s.image.min() and s.image.max() < 1.0  # reflectance (stored x 10000; L2A dips below 0)
    assert set(np.unique(s.target)) == {-1, 0, 1, 2, 3, 4, 5}  # background -> ignore, ids 1..6 -> 0..5
