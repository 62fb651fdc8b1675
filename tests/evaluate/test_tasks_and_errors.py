"""Task folder adapters (SpectralEarth downstream layouts, generic task.yaml) and one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from evaluate_helpers import FAST, POTSDAM, TILES, copy_tiles, image_rows, write_split

from spectralearth_data.errors import SpectralEarthError
from spectralearth_model.checkpoint import FORMAT, CheckpointError, save_encoder
from spectralearth_model.config import preset
from spectralearth_model.evaluate import (
    EvaluationError,
    TaskError,
    evaluate,
    load_checkpoint,
    load_task,
)
from spectralearth_model.evaluate.harness import input_sensor
from spectralearth_model.model import build_encoder

# Potsdam ids 1..6 recoded as six of the EnMAP-CDL class codes, so the tiles look like an EnMAP-CDL copy
CDL_OF = {1: 1, 2: 5, 3: 45, 4: 176, 5: 204, 6: 210}  # 176 is not an EnMAP-CDL class -> ignored


def test_enmap_cdl_folder_is_detected_and_recoded(tmp_path):
    copy_tiles(tmp_path, "enmap", "cdl", label_map=CDL_OF)
    write_split(tmp_path / "splits" / "enmap_cdl", TILES[:4], TILES[4:], ext=".tif")
    task = load_task(tmp_path)
    info = task.info
    assert info.name == "enmap-cdl" and info.kind == "segmentation" and info.sensor == "enmap"
    assert len(info.classes) == 14 and info.classes[6] == "45"
    assert task.ids("test") == [f"{t}.tif" for t in TILES[4:]]
    s = task.read("train", f"{TILES[0]}.tif")
    assert s.image.shape == (218, 32, 32)
    # code 45 is the 7th EnMAP-CDL class (index 6); 176 and background 0 are ignored
    with rasterio.open(POTSDAM / "labels" / f"{TILES[0]}.tif") as ds:
        raw = ds.read(1).astype(int)
    assert (s.target[raw == 3] == 6).all() and (s.target[raw == 4] == -1).all()
    assert (s.target[raw == 0] == -1).all() and (s.target[raw == 1] == 0).all()


def test_task_whose_bands_lack_wavelengths_is_a_clear_error(tmp_path):
    copy_tiles(tmp_path, "images", "labels", strip_tags=True)
    write_split(tmp_path / "splits", TILES[:4], TILES[4:])
    (tmp_path / "task.yaml").write_text("name: no-wavelengths\nkind: segmentation\nsensor: enmap\ngsd_m: 30\n")
    with pytest.raises(TaskError, match=r"task 'no-wavelengths': the bands of .*lack wavelengths/FWHM") as e:
        load_task(tmp_path)
    assert "\n" not in str(e.value) and "bands.csv" in str(e.value)


def test_bands_csv_supplies_missing_wavelengths(tmp_path):
    copy_tiles(tmp_path, "images", "labels", strip_tags=True)
    write_split(tmp_path / "splits", TILES[:4], TILES[4:])
    (tmp_path / "task.yaml").write_text(
        "name: with-table\nkind: segmentation\nsensor: enmap\ngsd_m: 30\nscale: 0.0001\nclass_codes: [1, 2, 3, 4, 5, 6]\n"
    )
    table = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "band_tables" / "enmap_potsdam_wavelength_fwhm.csv"
    with table.open() as f:
        pairs = [ln.strip().split(",") for ln in f.read().splitlines()[1:] if ln.strip()]
    with (tmp_path / "bands.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wavelength_nm", "fwhm_nm"])
        w.writerows(pairs)
    task = load_task(tmp_path)
    assert task.info.n_bands == 224 and task.info.wavelength_nm[-1] == pytest.approx(2445.53)


def test_checkpoint_of_another_preset_is_a_clear_error(tiny_checkpoint, tmp_path):
    with pytest.raises(EvaluationError, match=r"holds a 'tiny' model, not the 'small' preset") as e:
        load_checkpoint(tiny_checkpoint, expect_preset="small")
    assert "\n" not in str(e.value)
    # a file whose weights belong to another preset than its config
    small = preset("small", sensors=("enmap",))
    tiny = preset("tiny", sensors=("enmap",))
    payload = {"format": FORMAT, "preset": "tiny", "config": tiny.to_dict(),
               "state_dict": build_encoder(small).state_dict()}
    torch.save(payload, tmp_path / "mixed.pt")
    with pytest.raises(CheckpointError, match=r"mixed\.pt: weights do not match its config"):
        load_checkpoint(tmp_path / "mixed.pt")
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        evaluate(tmp_path / "missing.pt", ["enmap-potsdam"], out=tmp_path / "rep", options=FAST)
    assert not (tmp_path / "rep").exists()  # nothing written on a failed start


def test_model_without_the_task_sensor(tmp_path):
    s2_only = preset("tiny", sensors=("s2",))
    ckpt = save_encoder(tmp_path / "s2.pt", build_encoder(s2_only), s2_only)
    with pytest.raises(TaskError, match=r"feeds sensor 'enmap', which the checkpoint's model does not have"):
        evaluate(ckpt, ["enmap-potsdam"], out=tmp_path / "rep", options=FAST)
    # a hyperspectral task goes through the model's HSI input closest in GSD
    task = load_task("enmap-potsdam")
    assert input_sensor(task.info, preset("tiny", sensors=("emit", "s2"))) == "emit"


def test_unknown_task_and_head_are_clear_errors(tiny_checkpoint, tmp_path):
    with pytest.raises(TaskError, match=r"unknown task 'enmap-cdll': not a built-in task"):
        load_task("enmap-cdll")
    with pytest.raises(TaskError, match=r"not a task folder: no task.yaml"):
        load_task(tmp_path)
    with pytest.raises(EvaluationError, match=r"unknown head 'mlp'"):
        evaluate(tiny_checkpoint, ["enmap-potsdam"], head="mlp", out=tmp_path / "r")
    _classification_folder(tmp_path / "cls")
    with pytest.raises(EvaluationError, match=r"head 'subtoken' is for segmentation tasks; not for potsdam-tiles-cls"):
        evaluate(tiny_checkpoint, [str(tmp_path / "cls")], head="subtoken", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    assert issubclass(TaskError, SpectralEarthError) and issubclass(EvaluationError, SpectralEarthError)


def _classification_folder(root):
    """The real tiles as a two-class image classification task (generic task.yaml layout)."""
    copy_tiles(root, "images", "labels")
    write_split(root / "splits", TILES[:4], TILES[4:])
    with (root / "labels.csv").open("w") as f:
        f.write("id,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(TILES)))  # both classes in each split
    (root / "task.yaml").write_text(
        "name: potsdam-tiles-cls\nkind: classification\nsensor: enmap\ngsd_m: 30\nclasses: [even, odd]\n"
    )


def test_classification_folder_runs_the_image_level_path(tiny_checkpoint, tmp_path):
    _classification_folder(tmp_path / "task")
    report = evaluate(tiny_checkpoint, [str(tmp_path / "task")], head="knn", out=tmp_path / "rep", options=FAST)
    with (tmp_path / "rep" / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["head"]) for r in rows] == image_rows("knn")  # no token-grid PCA off segmentation
    assert all(r["task"] == "potsdam-tiles-cls" and r["n_test"] == "2" for r in rows)
    assert all(r["ci_unit"] == "image" and float(r["oa_ci_low"]) <= float(r["oa"]) <= float(r["oa_ci_high"])
               for r in rows)
    assert "- test set: 2 images; intervals resample test images" in report.read_text()
    assert all(float(r["oa"]) in (0.0, 0.5, 1.0) for r in rows)  # 2 test images
    assert "user copy at" in report.read_text()


def test_hyperview_npz_layout(tiny_checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for i in range(6):
        data = rng.uniform(0, 3000, (150, 11 + i, 13 - i)).astype(np.float32)  # field sizes vary
        mask = np.zeros_like(data, bool)
        mask[:, 0, 0] = True  # one masked pixel
        np.savez(tmp_path / "images" / f"{i}.npz", data=data, mask=mask)
    (tmp_path / "splits" / "hyperview").mkdir(parents=True)
    for split, ids in (("train", range(4)), ("test", range(4, 6))):
        with (tmp_path / "splits" / "hyperview" / f"{split}.csv").open("w") as f:
            f.write("sample_index,P,K,Mg,pH\n")
            for i in ids:
                f.write(f"{i},{40 + i},{200 + i},{150 + i},{6.5 + i / 10}\n")
    with pytest.raises(TaskError, match=r"lack wavelengths/FWHM: .npz images carry none"):
        load_task(tmp_path)
    with (tmp_path / "bands.csv").open("w") as f:
        f.write("wavelength_nm,fwhm_nm\n" + "".join(f"{462 + 3.2 * i:.1f},3.6\n" for i in range(150)))
    task = load_task(tmp_path)
    assert task.info.name == "hyperview" and task.info.kind == "regression"
    assert task.info.classes == ("P", "K", "Mg", "pH")
    s = task.read("test", "5")
    assert s.image.shape == (150, 16, 8) and s.nodata[0, 0] and not s.nodata[1, 1]
    np.testing.assert_allclose(s.target, [45, 205, 155, 7.0], rtol=1e-6)
    # the regression path end to end (random stand-in pixels: only the mechanics are checked);
    # HyperView is fed through the model's EnMAP input, its own 150 wavelengths go to the tokenizer
    report = evaluate(tiny_checkpoint, [str(tmp_path)], head="linear", out=tmp_path / "rep", options=FAST)
    with (tmp_path / "rep" / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["head"]) for r in rows] == image_rows("linear")
    assert all(np.isfinite(float(r["rmse"])) and float(r["rmse"]) > 0 for r in rows)
    assert all(float(r["rmse_ci_low"]) <= float(r["rmse_ci_high"]) for r in rows)
    assert "fed through the model's `enmap` input" in report.read_text()


def test_multispectral_task_must_carry_the_catalog_bands():
    import dataclasses

    info = dataclasses.replace(load_task("enmap-potsdam").info, sensor="s2", gsd_m=10.0,
                               wavelength_nm=(490.0, 560.0, 665.0), fwhm_nm=(65.0, 35.0, 30.0))
    with pytest.raises(TaskError, match=r"has 3 bands; the model's 's2' input takes its \d+ catalog bands \(B01"):
        input_sensor(info, preset("tiny", sensors=("s2",)))
