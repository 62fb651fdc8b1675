"""Helpers of the evaluation tests: task folders built from the real EnMAP Potsdam tiles
(shipped with the package: spectralearth_model/evaluate/data/enmap_potsdam, see its ATTRIBUTION.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import rasterio

from spectralearth_model.evaluate import EvalOptions

POTSDAM = Path(__file__).resolve().parents[2] / "spectralearth_model/evaluate/data/enmap_potsdam"
TILES = sorted(p.stem for p in (POTSDAM / "images").glob("*.tif"))

#: Small, fast protocol settings for tests (one CPU thread: the test machine's cores are shared).
FAST = EvalOptions(seed=0, threads=1, upernet_steps=15, subtoken_steps=60, max_train_pixels=2000, device="cpu",
                   bootstrap=200)

#: The rows of a segmentation run with ``head``: grouped by head, sub-token rows second.
def seg_rows(head: str) -> list[tuple[str, str]]:
    return [("checkpoint", head), ("random-init", head), ("pca-token", head), ("pca-pixel", "linear"),
            ("checkpoint", "subtoken"), ("random-init", "subtoken"), ("pca-token", "subtoken")]


#: The rows of an image-level run with ``head``.
def image_rows(head: str) -> list[tuple[str, str]]:
    return [("checkpoint", head), ("random-init", head), ("pca-pixel", "linear")]


def copy_tiles(dst: Path, images: str, labels: str, label_map=None, strip_tags: bool = False) -> list[str]:
    """Copy the real Potsdam tiles into ``dst/images`` and ``dst/labels`` (optionally recoding
    label values with ``label_map`` or writing the images without their wavelength band tags)."""
    (dst / images).mkdir(parents=True, exist_ok=True)
    (dst / labels).mkdir(parents=True, exist_ok=True)
    for t in TILES:
        src_img = POTSDAM / "images" / f"{t}.tif"
        if strip_tags:
            with rasterio.open(src_img) as ds:
                data, profile = ds.read(), ds.profile
            with rasterio.open(dst / images / f"{t}.tif", "w", **profile) as out:
                out.write(data)
        else:
            shutil.copy(src_img, dst / images / f"{t}.tif")
        with rasterio.open(POTSDAM / "labels" / f"{t}.tif") as ds:
            lab, profile = ds.read(1), ds.profile
        if label_map is not None:
            lab = np.vectorize(lambda v: label_map.get(int(v), 0))(lab).astype(lab.dtype)
        with rasterio.open(dst / labels / f"{t}.tif", "w", **profile) as out:
            out.write(lab, 1)
    return TILES


def write_split(folder: Path, train: list[str], test: list[str], ext: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("".join(f"{t}{ext}\n" for t in train))
    (folder / "test.txt").write_text("".join(f"{t}{ext}\n" for t in test))
