"""Evaluation tasks: one small adapter interface, the built-in real EnMAP task, and folder adapters.

A task answers four questions the harness needs and nothing else: which bands (wavelength and
FWHM in nm, so the spectral tokenizer can take any band set), which ground sampling distance,
which labels, and which samples belong to each split. Images are returned in physical units
(reflectance), with a per-pixel nodata mask, one sample at a time so large downloaded datasets
never have to fit in memory.

Built-in tasks (``spectralearth evaluate --list-tasks``):

* ``enmap-potsdam``: semantic segmentation on 6 real EnMAP L2A tiles (32 x 32 px), split **by
  tile** (4 train / 2 test, fixed list below), so train and test pixels never share a tile. Its
  test set is small: 729 labelled pixels in 2 tiles.
* ``enmap-potsdam-pixels``: the same tiles, labelled pixels split **by pixel** (stratified per
  class, seed 0, half train / half test: 889 / 889 labelled pixels). Neighbouring train and test
  pixels share context, so this measures spectral separability more than spatial generalisation.

Folder adapters (see TASKS.md for the layouts): the SpectralEarth downstream tasks
(EnMAP-CDL, EnMAP-NLCD, DESIS-CDL, EnMAP-Corine, HyperView) as distributed by their authors,
and a generic ``task.yaml`` layout into which PANGAEA datasets (or any other) can be converted.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from spectralearth_data.errors import InputDataError, SpectralEarthError

TaskKind = Literal["segmentation", "classification", "multilabel", "regression"]
#: The unit a split assigns to train or test (and the bootstrap resamples).
SplitUnit = Literal["image", "tile", "pixel"]
SPLITS = ("train", "test")

#: Target value for "ignore this pixel" in segmentation targets.
IGNORE = -1

#: Environment variable that points the built-in EnMAP task at another copy of the Potsdam tiles.
POTSDAM_ENV = "SPECTRALEARTH_ENMAP_POTSDAM"
#: The tiles ship with the package (package data, attribution in their ATTRIBUTION.md). They are
#: evaluation inputs only: EnMAP data never enter a release or an export (DESIGN.md).
_PACKAGED_POTSDAM = Path(__file__).resolve().parent / "data" / "enmap_potsdam"


class TaskError(SpectralEarthError):
    """A task name, folder or file the evaluation cannot use."""


@dataclass(frozen=True)
class TaskInfo:
    """What the harness and the report need to know about a task."""

    name: str
    kind: TaskKind
    sensor: str = field(metadata={"doc": "Product name the encoder sees (enmap, desis, ...)"})
    gsd_m: float
    wavelength_nm: tuple[float, ...]
    fwhm_nm: tuple[float, ...]
    classes: tuple[str, ...] = field(metadata={"doc": "Class (or target) names, index = label"})
    data_source: str = field(metadata={"doc": "Where the data come from; printed in the report"})
    split_rule: str = field(metadata={"doc": "How train/test were made; printed in the report"})
    licence: str = ""
    split_unit: SplitUnit = field(default="image", metadata={
        "doc": "What the split assigns to train or test, and so what the bootstrap resamples: "
               "whole images/tiles, or single labelled pixels"})

    @property
    def n_bands(self) -> int:
        return len(self.wavelength_nm)


@dataclass(frozen=True)
class Sample:
    """One sample: image (C, H, W) float32 physical units (0 where nodata), nodata (H, W) bool.

    ``target`` is (H, W) int64 with -1 = ignore (segmentation), a scalar int (classification),
    (K,) 0/1 (multilabel) or (K,) float32 (regression).
    """

    image: np.ndarray
    nodata: np.ndarray
    target: np.ndarray


class TaskAdapter(Protocol):
    """The interface every task meets."""

    info: TaskInfo

    def ids(self, split: str) -> list[str]:
        """Sample ids of a split (``train`` or ``test``)."""

    def read(self, split: str, sample_id: str) -> Sample:
        """Load one sample of a split."""


# -- raster helpers ------------------------------------------------------------------------------


def _read_band_tags(path: Path) -> tuple[list[float] | None, list[float] | None, list[bool]]:
    """Wavelength/FWHM (nm) and the bad-band list from GDAL/ENVI band tags; None where absent."""
    import rasterio

    with rasterio.open(path) as ds:
        tags = [ds.tags(i + 1) for i in range(ds.count)]
    if not all("wavelength" in t for t in tags):
        return None, None, [True] * len(tags)
    factor = 1000.0 if tags[0].get("wavelength_units", "").lower().startswith("micro") else 1.0
    wl = [float(t["wavelength"]) * factor for t in tags]
    fw = [float(t["fwhm"]) * factor for t in tags] if all("fwhm" in t for t in tags) else None
    good = [t.get("bbl", "1").strip() not in {"0", "0.0"} for t in tags]
    return wl, fw, good


def read_bands_csv(path: Path) -> tuple[list[float], list[float]]:
    """A ``bands.csv`` with columns ``wavelength_nm, fwhm_nm`` (one row per image band)."""
    try:
        rows = list(csv.DictReader(path.open()))
        return [float(r["wavelength_nm"]) for r in rows], [float(r["fwhm_nm"]) for r in rows]
    except (KeyError, ValueError) as e:
        raise TaskError(f"{path}: needs numeric columns wavelength_nm,fwhm_nm ({e})") from None


def band_table(image_path: Path, root: Path, task: str) -> tuple[list[float], list[float], list[bool]]:
    """Wavelengths, FWHM and good-band flags of a task: band tags first, else ``bands.csv``."""
    wl, fw, good = _read_band_tags(image_path)
    csv_path = root / "bands.csv"
    if (wl is None or fw is None) and csv_path.exists():
        wl, fw = read_bands_csv(csv_path)
        good = [True] * len(wl)
    if wl is None or fw is None:
        raise TaskError(
            f"task {task!r}: the bands of {image_path} lack wavelengths/FWHM (no 'wavelength' and "
            f"'fwhm' band tags and no {csv_path}); add bands.csv with columns wavelength_nm,fwhm_nm"
        )
    if len(wl) != len(good):
        raise TaskError(f"task {task!r}: {csv_path} has {len(wl)} rows but {image_path} has {len(good)} bands")
    return wl, fw, good


def read_image(path: Path, bands: list[int], scale: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Selected bands of a raster in physical units and the nodata mask (any band is nodata).

    ``scale`` overrides the file's band scale (GDAL ``scale``); physical = stored * scale + offset.
    """
    import rasterio

    try:
        with rasterio.open(path) as ds:
            raw = ds.read([b + 1 for b in bands]).astype(np.float32)
            nodata = ds.nodata
            s = np.asarray([ds.scales[b] for b in bands], np.float32)[:, None, None]
            o = np.asarray([ds.offsets[b] for b in bands], np.float32)[:, None, None]
    except rasterio.errors.RasterioIOError as e:
        raise InputDataError(f"{path}: cannot read image ({e})") from None
    bad = ~np.isfinite(raw)
    if nodata is not None:
        bad |= raw == np.float32(nodata)
    nod = bad.any(axis=0)
    if scale is not None:
        s, o = np.float32(scale), np.float32(0.0)
    img = np.where(nod[None], 0.0, raw * s + o).astype(np.float32)
    return img, nod


def read_label(path: Path) -> np.ndarray:
    """The first band of a label raster as int64."""
    import rasterio

    try:
        with rasterio.open(path) as ds:
            return ds.read(1).astype(np.int64)
    except rasterio.errors.RasterioIOError as e:
        raise InputDataError(f"{path}: cannot read label raster ({e})") from None


# -- built-in: real EnMAP Potsdam tiles ---------------------------------------------------------



def potsdam_dir() -> Path:
    """Folder of the Potsdam tiles (``images/``, ``labels/``): ``$SPECTRALEARTH_ENMAP_POTSDAM`` or the packaged ones."""
    env = os.environ.get(POTSDAM_ENV)
    return Path(env).expanduser() if env else _PACKAGED_POTSDAM

POTSDAM_SOURCE = (
    "real EnMAP L2A scene ENMAP01-____L2A-DT0000001867_20220724T104526Z (2022-07-24, Potsdam; "
    "(c) DLR, via EnMAP-Box test data), 6 tiles of 32x32 px at 30 m; labels: EnMAP-Box Potsdam "
    "land cover, class names unconfirmed"
)
POTSDAM_CLASSES = tuple(f"class {i} (name unconfirmed)" for i in range(1, 7))
#: Fixed tile split of ``enmap-potsdam``: both sets hold every class the other holds.
POTSDAM_TEST_TILES = ("enmap_potsdam_tile_128_32", "enmap_potsdam_tile_192_96")
POTSDAM_PIXEL_SEED = 0


class PotsdamTiles:
    """The 6 real EnMAP Potsdam tiles as a segmentation task (split by tile or by pixel)."""

    def __init__(self, root: Path | None = None, by: Literal["tile", "pixel"] = "tile") -> None:
        self.root = Path(root) if root is not None else potsdam_dir()
        self.by = by
        self.tiles = sorted(p.stem for p in (self.root / "images").glob("*.tif"))
        if not self.tiles:
            raise TaskError(
                f"built-in EnMAP Potsdam task: no tiles in {self.root / 'images'}; reinstall the package "
                f"(it ships them) or set {POTSDAM_ENV} to a copy"
            )
        wl, fw, good = band_table(self.root / "images" / f"{self.tiles[0]}.tif", self.root, "enmap-potsdam")
        #: bands used: the good bands (bbl=1); the 6 bad bands are all nodata
        self.bands = [i for i, g in enumerate(good) if g]
        name = "enmap-potsdam" if by == "tile" else "enmap-potsdam-pixels"
        rule = (
            f"by tile: test = {', '.join(POTSDAM_TEST_TILES)}; train = the other 4"
            if by == "tile"
            else f"by pixel: labelled pixels of all 6 tiles, stratified 50/50 per class, seed {POTSDAM_PIXEL_SEED}"
        )
        self.info = TaskInfo(
            name=name,
            kind="segmentation",
            sensor="enmap",
            gsd_m=30.0,
            wavelength_nm=tuple(wl[i] for i in self.bands),
            fwhm_nm=tuple(fw[i] for i in self.bands),
            classes=POTSDAM_CLASSES,
            data_source=POTSDAM_SOURCE,
            split_rule=rule,
            licence="EnMAP (c) DLR: evaluation/test use only, never redistributed",
            split_unit="tile" if by == "tile" else "pixel",
        )
        self._pixel_split: dict[str, np.ndarray] | None = None

    def ids(self, split: str) -> list[str]:
        _check_split(split, self.info.name)
        if self.by == "pixel":
            return list(self.tiles)
        test = [t for t in self.tiles if t in POTSDAM_TEST_TILES]
        return test if split == "test" else [t for t in self.tiles if t not in POTSDAM_TEST_TILES]

    def read(self, split: str, sample_id: str) -> Sample:
        _check_split(split, self.info.name)
        img, nod = read_image(self.root / "images" / f"{sample_id}.tif", self.bands, None)
        lab = read_label(self.root / "labels" / f"{sample_id}.tif")
        target = np.where((lab >= 1) & ~nod, lab - 1, IGNORE)  # class ids 1..6 -> 0..5
        if self.by == "pixel":
            keep = self._pixels()[split][self.tiles.index(sample_id)]
            target = np.where(keep, target, IGNORE)
        return Sample(img, nod, target)

    def _pixels(self) -> dict[str, np.ndarray]:
        """Seeded, per-class stratified 50/50 split of the labelled pixels of all tiles."""
        if self._pixel_split is None:
            from sklearn.model_selection import train_test_split

            labels = np.stack([read_label(self.root / "labels" / f"{t}.tif") for t in self.tiles])
            flat = np.flatnonzero(labels.ravel() >= 1)
            tr, te = train_test_split(
                flat, test_size=0.5, random_state=POTSDAM_PIXEL_SEED, stratify=labels.ravel()[flat]
            )
            out = {}
            for name, idx in (("train", tr), ("test", te)):
                m = np.zeros(labels.size, bool)
                m[idx] = True
                out[name] = m.reshape(labels.shape)
            self._pixel_split = out
        return self._pixel_split


def _check_split(split: str, task: str) -> None:
    if split not in SPLITS:
        raise TaskError(f"task {task!r}: unknown split {split!r}; use one of {', '.join(SPLITS)}")


# -- folder adapters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderLayout:
    """Where a folder task keeps its files and how to read them (paths relative to the task folder).

    These are also the keys of a generic ``task.yaml`` (see ``TASKS.md`` next to this module).
    """

    #: segmentation | classification | multilabel | regression
    kind: TaskKind
    #: The model input the images are fed through (enmap, desis, emit, s2, ...). A hyperspectral
    #: task of a sensor the model has no input for (e.g. HyperView) goes through the model's
    #: hyperspectral input closest in GSD: the spectral tokenizer reads the task's own wavelengths.
    sensor: str
    #: Ground sampling distance of the images (m).
    gsd_m: float
    images: str = "images"
    labels: str = "labels"
    #: Folder of ``train.txt``/``test.txt`` (one file name per line) or ``train.csv``/``test.csv``.
    splits: str = "splits"
    image_ext: str = ".tif"
    #: physical = stored * scale; None: the GeoTIFF's own band scale/offset.
    scale: float | None = None
    #: Label values that mean "no label" (ignored in training and scoring).
    ignore_values: tuple[int, ...] = (0,)
    #: Label codes that are classes, in class order; other codes are ignored. Empty: every code
    #: found in the training labels except ``ignore_values``.
    class_codes: tuple[int, ...] = ()
    #: Class names (same order as ``class_codes``); empty: the codes as text.
    classes: tuple[str, ...] = ()
    #: Regression: the target columns of the split CSVs.
    targets: tuple[str, ...] = ()
    title: str = ""


# Class codes of the SpectralEarth downstream tasks: those used by the task authors' configs
# (AABNassim/spectral_earth, configs/data/*.yaml); 0 is background and ignored.
_CDL_ENMAP = (1, 2, 3, 4, 5, 6, 45, 54, 69, 72, 75, 76, 204, 210)
_CDL_DESIS = (1, 2, 3, 5, 42, 43, 49, 54, 56, 68, 69, 75, 76, 204)
_NLCD = (11, 21, 22, 23, 24, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95)

#: The SpectralEarth downstream tasks, in the layout their authors distribute (see TASKS.md).
#: EnMAP/DESIS images are read as reflectance x 10000 (``scale`` 1e-4); override in task.yaml.
SPECTRALEARTH_LAYOUTS: dict[str, FolderLayout] = {
    "enmap-cdl": FolderLayout("segmentation", "enmap", 30.0, "enmap", "cdl", "splits/enmap_cdl", scale=1e-4,
                              class_codes=_CDL_ENMAP,
                              title="EnMAP-CDL (SpectralEarth downstream, USDA Cropland Data Layer)"),
    "enmap-nlcd": FolderLayout("segmentation", "enmap", 30.0, "enmap", "nlcd", "splits/enmap_nlcd", scale=1e-4,
                               class_codes=_NLCD, title="EnMAP-NLCD (SpectralEarth downstream, USGS NLCD)"),
    "desis-cdl": FolderLayout("segmentation", "desis", 30.0, "desis", "cdl", "splits/desis_cdl", scale=1e-4,
                              class_codes=_CDL_DESIS,
                              title="DESIS-CDL (SpectralEarth downstream, USDA Cropland Data Layer)"),
    "enmap-corine": FolderLayout("multilabel", "enmap", 30.0, "enmap", "corine", "splits/enmap_corine", scale=1e-4,
                                 title="EnMAP-Corine (SpectralEarth downstream, CORINE level-3 codes, multi-label)"),
    "hyperview": FolderLayout("regression", "enmap", 2.0, "images", "", "splits/hyperview", ".npz",
                              scale=1.0, targets=("P", "K", "Mg", "pH"),
                              title="HyperView (soil P, K, Mg, pH from airborne HSI simulating Intuition-1)"),
}


class FolderTask:
    """A task folder in one of the documented layouts (SpectralEarth downstream or generic)."""

    def __init__(self, root: Path, layout: FolderLayout, name: str) -> None:
        self.root, self.layout, self.name = Path(root), layout, name
        self._ids = {s: self._read_split(s) for s in SPLITS}
        first = self._image_path(self._ids["train"][0])
        if layout.image_ext == ".npz":
            wl, fw, good = self._npz_bands()
        else:
            wl, fw, good = band_table(first, self.root, name)
        self.bands = [i for i, g in enumerate(good) if g]
        self._regression = self._read_targets() if layout.kind == "regression" else {}
        self._class_of = self._read_class_table() if layout.kind == "classification" else {}
        self.codes: tuple[int, ...] = ()
        if layout.kind in ("segmentation", "multilabel"):
            self.codes = layout.class_codes or tuple(self._label_codes())
            if layout.classes and len(layout.classes) != len(self.codes):
                raise TaskError(
                    f"task {name!r}: {len(layout.classes)} class names for {len(self.codes)} class codes"
                )
        classes = layout.targets if layout.kind == "regression" else (
            layout.classes or tuple(str(c) for c in self.codes)
        )
        self._lut = {c: i for i, c in enumerate(self.codes)}
        self.info = TaskInfo(
            name=name, kind=layout.kind, sensor=layout.sensor, gsd_m=layout.gsd_m,
            wavelength_nm=tuple(wl[i] for i in self.bands), fwhm_nm=tuple(fw[i] for i in self.bands),
            classes=tuple(classes), data_source=f"{layout.title or name}: user copy at {self.root}",
            split_rule=f"the folder's split files ({layout.splits}/train.txt, test.txt)",
        )

    # split files: one sample id per line (file name with or without extension)
    def _read_split(self, split: str) -> list[str]:
        folder = self.root / self.layout.splits
        for cand in (folder / f"{split}.txt", folder / f"{split}.csv"):
            if cand.exists():
                if cand.suffix == ".csv":
                    with cand.open() as f:
                        return [str(int(float(r["sample_index"]))) for r in csv.DictReader(f)]
                ids = [ln.strip() for ln in cand.read_text().splitlines() if ln.strip()]
                if not ids:
                    raise TaskError(f"task {self.name!r}: {cand} lists no samples")
                return ids
        raise TaskError(f"task {self.name!r}: no split file {folder}/{split}.txt (see TASKS.md)")

    def _image_path(self, sid: str) -> Path:
        p = self.root / self.layout.images / sid
        return p if p.suffix else p.with_suffix(self.layout.image_ext)

    def _label_path(self, sid: str) -> Path:
        p = self.root / self.layout.labels / sid
        return p if p.suffix else p.with_suffix(".tif")

    def _npz_bands(self) -> tuple[list[float], list[float], list[bool]]:
        csv_path = self.root / "bands.csv"
        if not csv_path.exists():
            raise TaskError(
                f"task {self.name!r}: the bands lack wavelengths/FWHM: .npz images carry none and "
                f"{csv_path} is missing; add bands.csv with columns wavelength_nm,fwhm_nm"
            )
        wl, fw = read_bands_csv(csv_path)
        return wl, fw, [True] * len(wl)

    def _read_targets(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for split in SPLITS:
            path = self.root / self.layout.splits / f"{split}.csv"
            if not path.exists():
                raise TaskError(f"task {self.name!r}: regression targets need {path}")
            with path.open() as f:
                for r in csv.DictReader(f):
                    try:
                        out[str(int(float(r["sample_index"])))] = np.array(
                            [float(r[c]) for c in self.layout.targets], np.float32
                        )
                    except (KeyError, ValueError) as e:
                        raise TaskError(f"{path}: needs sample_index and {list(self.layout.targets)} ({e})") from None
        return out

    def _read_class_table(self) -> dict[str, int]:
        """``labels.csv`` (columns ``id,label``; label = 0-based class index) for classification."""
        path = self.root / "labels.csv"
        try:
            with path.open() as f:
                return {Path(r["id"]).stem: int(r["label"]) for r in csv.DictReader(f)}
        except FileNotFoundError:
            raise TaskError(f"task {self.name!r}: classification needs {path} (columns id,label)") from None
        except (KeyError, ValueError) as e:
            raise TaskError(f"{path}: needs columns id,label with integer labels ({e})") from None

    def _label_codes(self) -> list[int]:
        """Label codes present in the training label rasters (the class vocabulary)."""
        codes: set[int] = set()
        for sid in self._ids["train"]:
            codes |= {int(c) for c in np.unique(read_label(self._label_path(sid)))}
        return sorted(codes - set(self.layout.ignore_values))

    def ids(self, split: str) -> list[str]:
        _check_split(split, self.name)
        return list(self._ids[split])

    def read(self, split: str, sample_id: str) -> Sample:
        _check_split(split, self.name)
        path = self._image_path(sample_id)
        if not path.exists():
            raise TaskError(f"task {self.name!r}: image {path} listed in split {split!r} does not exist")
        if self.layout.image_ext == ".npz":
            img, nod = self._read_npz(path)
        else:
            img, nod = read_image(path, self.bands, self.layout.scale)
        kind = self.layout.kind
        if kind == "regression":
            return Sample(img, nod, self._regression[sample_id])
        if kind == "classification":
            label = self._class_of.get(Path(sample_id).stem)
            if label is None:
                raise TaskError(f"task {self.name!r}: sample {sample_id!r} has no row in {self.root / 'labels.csv'}")
            return Sample(img, nod, np.asarray(label, np.int64))
        lab = read_label(self._label_path(sample_id))
        if kind == "segmentation":
            return Sample(img, nod, self._ordinal(lab, nod))
        present = set(np.unique(lab[~nod]).tolist())  # multilabel: which codes occur in the image
        return Sample(img, nod, np.array([c in present for c in self.codes], np.int64))

    def _ordinal(self, lab: np.ndarray, nod: np.ndarray) -> np.ndarray:
        """Segmentation label codes -> class index 0..K-1; other codes and nodata pixels -> -1."""
        out = np.full(lab.shape, IGNORE, np.int64)
        for code, i in self._lut.items():
            out[lab == code] = i
        out[nod] = IGNORE
        return out

    def _read_npz(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        with np.load(path) as z:
            data = z["data"].astype(np.float32)
            mask = z["mask"].astype(bool) if "mask" in z.files else np.zeros(data.shape, bool)
        nod = mask.any(axis=0) if mask.ndim == 3 else mask
        scale = self.layout.scale or 1.0
        return np.where(nod[None], 0.0, data[self.bands] * scale).astype(np.float32), nod


def _generic_layout(root: Path) -> tuple[str, FolderLayout]:
    """Read ``task.yaml`` (the generic layout: also how PANGAEA datasets are plugged in)."""
    import yaml

    path = root / "task.yaml"
    try:
        doc: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise TaskError(f"{path}: not valid YAML ({e})") from None
    adapter = doc.pop("adapter", "folder")
    name = str(doc.pop("name", root.name))
    if adapter in SPECTRALEARTH_LAYOUTS:
        base = dataclasses.asdict(SPECTRALEARTH_LAYOUTS[adapter])
    elif adapter == "folder":
        base = {}
    else:
        known = ", ".join(["folder", *SPECTRALEARTH_LAYOUTS])
        raise TaskError(f"{path}: adapter: unknown {adapter!r}; known: {known}")
    allowed = {f.name for f in dataclasses.fields(FolderLayout)}
    extra = sorted(set(doc) - allowed)
    if extra:
        raise TaskError(f"{path}: unknown keys {extra}; allowed: {sorted(allowed | {'adapter', 'name'})}")
    merged = {**base, **doc}
    for k in ("ignore_values", "class_codes", "classes", "targets"):
        if k in merged:
            merged[k] = tuple(merged[k])
    try:
        return name, FolderLayout(**merged)
    except TypeError as e:
        raise TaskError(f"{path}: missing keys ({e}); kind, sensor and gsd_m are required") from None


def _detect(root: Path) -> tuple[str, FolderLayout]:
    if (root / "task.yaml").exists():
        return _generic_layout(root)
    for name, layout in SPECTRALEARTH_LAYOUTS.items():
        if (root / layout.splits).is_dir():
            return name, layout
    raise TaskError(
        f"{root}: not a task folder: no task.yaml and no splits/<enmap_cdl|enmap_nlcd|desis_cdl|"
        "enmap_corine|hyperview>/ folder (see TASKS.md)"
    )


# -- registry ------------------------------------------------------------------------------------

BUILTIN_TASKS: dict[str, tuple[str, Callable[[], TaskAdapter]]] = {
    "enmap-potsdam": ("real EnMAP L2A Potsdam tiles, segmentation, split by tile; tiny test set: 729 labelled "
                      "pixels in 2 tiles", lambda: PotsdamTiles(by="tile")),
    "enmap-potsdam-pixels": (
        "real EnMAP L2A Potsdam tiles, pixel classification, split by pixel; tiny test set: 889 labelled pixels",
        lambda: PotsdamTiles(by="pixel"),
    ),
}


def list_tasks() -> dict[str, str]:
    """Built-in task names and one-line descriptions."""
    return {k: v[0] for k, v in BUILTIN_TASKS.items()}


def load_task(name_or_path: str | Path) -> TaskAdapter:
    """A built-in task by name, or a task folder in a documented layout by path."""
    key = str(name_or_path)
    if key in BUILTIN_TASKS:
        return BUILTIN_TASKS[key][1]()
    path = Path(key).expanduser()
    if path.is_dir():
        name, layout = _detect(path)
        return FolderTask(path, layout, name)
    known = ", ".join(BUILTIN_TASKS)
    raise TaskError(f"unknown task {key!r}: not a built-in task ({known}) and not a task folder")


def describe(task: TaskAdapter) -> dict[str, Any]:
    """A JSON-able summary of a task (for the report)."""
    info = task.info
    return {
        "name": info.name, "kind": info.kind, "sensor": info.sensor, "gsd_m": info.gsd_m,
        "bands": info.n_bands, "classes": list(info.classes), "data_source": info.data_source,
        "split_rule": info.split_rule, "n_train": len(task.ids("train")), "n_test": len(task.ids("test")),
        "licence": info.licence, "split_unit": info.split_unit,
    }


__all__ = [
    "BUILTIN_TASKS",
    "IGNORE",
    "FolderLayout",
    "FolderTask",
    "PotsdamTiles",
    "Sample",
    "TaskAdapter",
    "TaskError",
    "TaskInfo",
    "describe",
    "list_tasks",
    "load_task",
]
