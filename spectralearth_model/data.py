"""Release loader: index -> locations -> one acquisition per product -> batches for the model.

A *sample* is a location (DESIGN.md "Model inputs"): for every product present in a cell, the one
acquisition nearest in time to the cell's hyperspectral anchor, decoded from the release's native
integers to physical units with the CF attributes written beside each ``<sensor>/data`` array.
Only the catalog's usable bands reach the model; native fill values become 0 and set the NODATA
mask bit, so the model never sees a fill number. Opening the release, its index, each product's
layout and the CF decoding are :mod:`spectralearth_data.release` (torch-free); this module adds
the torch dataset, sampler, collation and loader.

Reading is built for many workers and many ranks:

* :class:`ReleaseDataset` holds only paths and small tables; each worker process opens the Zarr
  arrays lazily the first time it reads (a fork after opening would share file handles).
* :class:`ShardSampler` orders samples shard by shard, so consecutive reads hit the same shard
  file, and is an endless, seeded stream: the sample at global position ``p`` is a pure function
  of ``(seed, p)``. Ranks take every ``world_size``-th position, and a resume restarts the stream at
  the number of samples already consumed, which is what makes a resumed run exact.
* Augmentations (:class:`AlignedAugment`) draw one crop/flip/rotation per sample and apply it on
  every product's own pixel grid, so the products stay co-registered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from spectralearth_data.atomic import atomic_path
from spectralearth_data.errors import ReleaseError
from spectralearth_data.masks import MaskFlag
from spectralearth_data.release import ChunkReader, decode, open_release

#: Products that anchor a location (hyperspectral); the first present one in a cell is the anchor.
HSI_PRODUCTS: tuple[str, ...] = ("enmap", "emit", "desis")

STATS_FORMAT = "spectralearth-norm-stats/1"


# -- locations: one acquisition per product -------------------------------------------------------


def build_locations(index: pd.DataFrame, sensors: Sequence[str]) -> pd.DataFrame:
    """One row per cell: for every product, the ``row`` of the patch nearest in time to the anchor.

    The anchor is the cell's first hyperspectral acquisition (earliest, then by scene id); a cell
    without any HSI patch is anchored on its earliest patch. Returns columns ``cell_id``,
    ``anchor_datetime`` and one integer column per product (-1 where absent).
    """
    hsi = index[index["sensor"].isin(HSI_PRODUCTS)]
    base = hsi if len(hsi) else index
    anchors = (
        base.sort_values(["cell_id", "datetime", "scene_id"], kind="stable")
        .groupby("cell_id", sort=True)
        .head(1)[["cell_id", "datetime"]]
        .rename(columns={"datetime": "anchor_datetime"})
    )
    # cells with no HSI patch still count, anchored on their earliest patch
    rest = index[~index["cell_id"].isin(anchors["cell_id"])]
    if len(rest):
        extra = (rest.sort_values(["cell_id", "datetime"]).groupby("cell_id").head(1)[["cell_id", "datetime"]]
                 .rename(columns={"datetime": "anchor_datetime"}))
        anchors = pd.concat([anchors, extra]).sort_values("cell_id")
    joined = index.merge(anchors, on="cell_id")
    joined["dt"] = (joined["datetime"] - joined["anchor_datetime"]).abs()
    best = joined.sort_values(["cell_id", "sensor", "dt", "scene_id"], kind="stable").groupby(
        ["cell_id", "sensor"]).head(1)
    table = best.pivot(index="cell_id", columns="sensor", values="row")
    out = anchors.set_index("cell_id")
    for s in sensors:
        out[s] = table[s].fillna(-1).astype(np.int64) if s in table else -1
    return out.reset_index()


# -- augmentation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignedAugment:
    """One random crop, flip and 90-degree rotation per sample, applied identically on every grid.

    The crop is chosen in metres on a lattice every product's pixel grid shares (the least common
    multiple of their GSDs), so a 30 m and a 10 m patch are cut over exactly the same ground.

    Args:
        crop_m: side of the crop in metres (None: no crop); a multiple of the products' common step.
        flip: random horizontal and vertical flips.
        rot90: random multiples of 90 degrees.
    """

    crop_m: float | None = None
    flip: bool = True
    rot90: bool = True

    def draw(self, rng: np.random.Generator, extent_m: float, step_m: float) -> dict[str, Any]:
        """The augmentation parameters for one sample (pure function of ``rng``)."""
        p: dict[str, Any] = {"x0": 0.0, "y0": 0.0, "size": extent_m}
        if self.crop_m is not None and self.crop_m < extent_m:
            slots = round((extent_m - self.crop_m) / step_m) + 1
            p.update(x0=float(rng.integers(slots)) * step_m, y0=float(rng.integers(slots)) * step_m,
                     size=self.crop_m)
        p["flip_h"] = bool(self.flip and rng.integers(2))
        p["flip_v"] = bool(self.flip and rng.integers(2))
        p["k"] = int(rng.integers(4)) if self.rot90 else 0
        return p

    @staticmethod
    def apply(arr: np.ndarray, gsd: float, p: dict[str, Any]) -> np.ndarray:
        """Apply parameters ``p`` to ``arr`` (..., H, W) on a grid of ``gsd`` metres."""
        x0, y0, n = (round(p[k] / gsd) for k in ("x0", "y0", "size"))
        arr = arr[..., y0 : y0 + n, x0 : x0 + n]
        if p["flip_h"]:
            arr = arr[..., :, ::-1]
        if p["flip_v"]:
            arr = arr[..., ::-1, :]
        if p["k"]:
            arr = np.rot90(arr, p["k"], axes=(-2, -1))
        return np.ascontiguousarray(arr)


# -- the dataset ----------------------------------------------------------------------------------


class ReleaseDataset(torch.utils.data.Dataset):
    """Map-style dataset of locations in a release (see the module docstring).

    ``dataset[i]`` or ``dataset[(i, seed)]`` is a sample ``{sensor: {"data", "mask", "wavelength",
    "fwhm", "gsd"}}`` for the products present at location ``i``; ``seed`` drives the augmentation,
    so a sample is the same in any worker, on any rank and after a resume.

    Args:
        release: path to ``<release>.zarr``.
        sensors: the products to load (the model's ``cfg.sensors``); all must be in the release.
        augment: aligned augmentation, or None for the plain patches.
        normalize: per-band statistics (:func:`load_or_compute_stats`) to standardise the
            physical values with; None keeps physical units (the model input contract).
        direct_reads: read patches of a local release with :mod:`spectralearth_data.release.shards` (False: through zarr
            only; the same arrays, for comparison).
    """

    def __init__(
        self,
        release: Path | str,
        sensors: Sequence[str],
        augment: AlignedAugment | None = None,
        normalize: dict[str, dict[str, list[float]]] | None = None,
        direct_reads: bool = True,
    ) -> None:
        self.release = open_release(release, sensors, direct_reads=direct_reads)
        self.sensors = tuple(sensors)
        self.locations = build_locations(self.release.index, self.sensors)
        self.augment = augment
        self.normalize = normalize
        self.direct_reads = direct_reads
        self._rows = self.locations[list(self.sensors)].to_numpy()
        self._arrays: dict[str, tuple[Any, Any]] = {}
        self._pid: int | None = None
        layouts = self.release.products.values()
        self.extent_m = min(p.size_px * p.gsd for p in layouts)
        self.step_m = float(np.lcm.reduce([round(p.gsd) for p in layouts]))
        crop_m = augment.crop_m if augment is not None else None
        if crop_m is not None and (crop_m % self.step_m or crop_m > self.extent_m):
            raise ReleaseError(
                f"crop of {crop_m} m must be a multiple of {self.step_m:g} m and at most "
                f"{self.extent_m:g} m for products {', '.join(self.sensors)}"
            )

    def __len__(self) -> int:
        return len(self.locations)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_arrays"], state["_pid"] = {}, None  # never ship open handles to another process
        return state

    def _opened(self) -> dict[Any, Any]:
        """This process's open arrays and readers (fork-safe: a new process opens its own)."""
        if self._pid != os.getpid():
            self._arrays, self._pid = {}, os.getpid()
        return self._arrays

    def _readers(self, sensor: str) -> tuple[ChunkReader, ChunkReader] | None:
        """pread readers of ``sensor``'s (data, mask) in its first batch
        (:mod:`spectralearth_data.release.shards`), or None: reads disabled (``direct_reads=False``),
        a remote release or a layout they do not read; reads then go through zarr."""
        batches = self.release.offsets.get(sensor, (None, [""]))[1]
        return self.release.chunk_readers(sensor, batches[0] if batches else "")

    def crop_px(self, sensor: str) -> int:
        """Side in pixels of ``sensor``'s patches as this dataset returns them."""
        lay = self.release.products[sensor]
        if self.augment is None or self.augment.crop_m is None:
            return lay.size_px
        return round(self.augment.crop_m / lay.gsd)

    def read_raw(self, patches: Sequence[tuple[str, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Stored (data, mask) arrays of ``(sensor, row)`` patches (``row``: the index's position).

        :meth:`spectralearth_data.release.Release.read_raw` does the reading: patches of a local
        release in the writer's layout directly (one ``pread`` each, measured 0.15 ms of CPU
        against 1.0 ms per zarr call), any others through zarr's event loop as one ``gather``.
        """
        return self.release.read_raw(list(patches))

    def decode_patch(self, sensor: str, raw: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stored arrays -> (float32 (C,H,W) physical units of the usable bands, uint8 (H,W) mask)."""
        phys, nodata = decode(raw, self.release.products[sensor])  # selects the usable bands
        if nodata.any():
            mask = np.where(nodata, mask | np.uint8(MaskFlag.NODATA), mask).astype(np.uint8)
        return phys, mask

    def read_patch(self, sensor: str, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(float32 (C,H,W) physical units of usable bands, uint8 (H,W) mask) of one patch."""
        return self.decode_patch(sensor, *self.read_raw([(sensor, row)])[0])

    def _plan(self, key: int | tuple[int, int]) -> tuple[list[tuple[str, int]], dict[str, Any] | None]:
        """The ``(sensor, row)`` patches of sample ``key`` and its augmentation parameters."""
        idx, seed = key if isinstance(key, tuple) else (key, idx_seed(key))
        params = None
        if self.augment is not None:
            params = self.augment.draw(np.random.default_rng(seed), self.extent_m, self.step_m)
        return [(s, int(r)) for s, r in zip(self.sensors, self._rows[idx]) if r >= 0], params

    def _sample(self, patches, raws, params) -> dict[str, dict[str, Any]]:
        """Stored arrays of one sample -> its tensors. The augmentation (a crop, flips, a rotation:
        pixel moves only) runs on the stored integers before decoding, which works per pixel, so
        the result is the same as augmenting the decoded floats, for less copying."""
        sample: dict[str, dict[str, Any]] = {}
        for (sensor, _), (raw, mask) in zip(patches, raws):
            lay = self.release.products[sensor]
            if params is not None:
                raw, mask = AlignedAugment.apply(raw, lay.gsd, params), AlignedAugment.apply(mask, lay.gsd, params)
            data, mask = self.decode_patch(sensor, raw, mask)
            if self.normalize is not None:
                st = self.normalize[sensor]
                mean = np.asarray(st["mean"], np.float32)[:, None, None]
                std = np.asarray(st["std"], np.float32)[:, None, None]
                data = np.where(mask & MaskFlag.NODATA, 0.0, (data - mean) / std).astype(np.float32)
            sample[sensor] = {
                "data": torch.from_numpy(data),
                "mask": torch.from_numpy(mask),
                "wavelength": torch.from_numpy(lay.wavelength),
                "fwhm": torch.from_numpy(lay.fwhm),
                "gsd": lay.gsd,
            }
        return sample

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, dict[str, Any]]:
        patches, params = self._plan(key)
        return self._sample(patches, self.read_raw(patches), params)

    def __getitems__(self, keys: Sequence[int | tuple[int, int]]) -> list[dict[str, dict[str, Any]]]:
        """``[self[k] for k in keys]`` with every patch of the batch read in one gather (the
        DataLoader calls this for a whole batch): one hand-off to zarr's event loop per batch."""
        plans = [self._plan(k) for k in keys]
        raws = self.read_raw([p for patches, _ in plans for p in patches])
        out, i = [], 0
        for patches, params in plans:
            out.append(self._sample(patches, raws[i : i + len(patches)], params))
            i += len(patches)
        return out


def idx_seed(idx: int, base: int = 0) -> int:
    """A well-mixed 63-bit seed for position/index ``idx`` (SplitMix64 of ``base`` and ``idx``)."""
    z = (base * 0x9E3779B97F4A7C15 + idx + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


# -- sampling -------------------------------------------------------------------------------------


class ShardSampler(torch.utils.data.Sampler):
    """Endless, seeded, shard-ordered stream of ``(index, augmentation seed)`` keys.

    Each epoch visits every location once: shards (of the anchor product's patch rows) in a random
    order, locations inside a shard in a random order, so reads stay inside one shard file for
    ``patches_per_shard`` samples. Global position ``p`` belongs to rank ``p % world_size``; the
    stream starts at global position ``start`` (the number of samples already consumed by all
    ranks), so a resumed run reads exactly what the interrupted one would have.
    """

    def __init__(self, dataset: ReleaseDataset, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start: int = 0) -> None:
        self.seed, self.rank, self.world_size, self.start = seed, rank, world_size, start
        self.n = len(dataset)
        if self.n == 0:
            raise ReleaseError(f"release {dataset.release.path} has no locations for {dataset.sensors}")
        self.shard_of = _shard_keys(dataset)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The order of location indices in ``epoch`` (a pure function of seed and epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        shards = np.unique(self.shard_of)
        order = []
        for s in rng.permutation(shards):
            members = np.flatnonzero(self.shard_of == s)
            order.append(rng.permutation(members))
        return np.concatenate(order)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        pos = self.start + self.rank
        epoch, order = -1, None
        while True:
            e, i = divmod(pos, self.n)
            if e != epoch:
                epoch, order = e, self.epoch_order(e)
            yield int(order[i]), idx_seed(pos, self.seed)
            pos += self.world_size


def _shard_keys(dataset: ReleaseDataset) -> np.ndarray:
    """Per location, the shard (product, row // patches_per_shard) of its first present product."""
    keys = np.empty(len(dataset), dtype=np.int64)
    for i, rows in enumerate(dataset._rows):
        j = int(np.argmax(rows >= 0))
        pps = dataset.release.products[dataset.sensors[j]].patches_per_shard
        keys[i] = j * 1_000_000_000 + int(rows[j]) // pps
    return keys


# -- collation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collate:
    """Stack samples into the model's batch format (DESIGN "Model inputs").

    ``present`` is (B, S) in ``sensors`` order; an absent product gets zeros for data and the
    NODATA flag in its mask, with its (C, H, W) taken from ``shapes``.
    """

    sensors: tuple[str, ...]
    shapes: dict[str, tuple[int, int, int]]
    wavelength: dict[str, np.ndarray] = field(repr=False)
    fwhm: dict[str, np.ndarray] = field(repr=False)
    gsd: dict[str, float]

    @classmethod
    def for_dataset(cls, ds: ReleaseDataset) -> Collate:
        prods = ds.release.products
        return cls(
            sensors=ds.sensors,
            shapes={s: (prods[s].channels, ds.crop_px(s), ds.crop_px(s)) for s in ds.sensors},
            wavelength={s: prods[s].wavelength for s in ds.sensors},
            fwhm={s: prods[s].fwhm for s in ds.sensors},
            gsd={s: prods[s].gsd for s in ds.sensors},
        )

    def __call__(self, samples: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
        """The batch. Every float tensor of it (data, wavelength, fwhm of every product) is a view
        of one float32 buffer, and every mask a view of one uint8 buffer: handing a batch from a
        loader worker to the training process then moves two shared-memory blocks instead of
        one per tensor (29 for seven products), which was most of the time the loop waited."""
        B = len(samples)
        present = torch.tensor([[s in smp for s in self.sensors] for smp in samples], dtype=torch.bool)
        n_float = sum(B * C * H * W + 2 * C for C, H, W in (self.shapes[s] for s in self.sensors))
        n_mask = sum(B * H * W for _, H, W in (self.shapes[s] for s in self.sensors))
        floats, masks = torch.empty(n_float, dtype=torch.float32), torch.empty(n_mask, dtype=torch.uint8)
        out: dict[str, Any] = {"present": present, "sensors": {}}
        f = m = 0
        for s in self.sensors:
            C, H, W = self.shapes[s]
            data = floats[f : f + B * C * H * W].view(B, C, H, W)
            mask = masks[m : m + B * H * W].view(B, H, W)
            f, m = f + B * C * H * W, m + B * H * W
            for i, smp in enumerate(samples):
                if s in smp:
                    data[i].copy_(smp[s]["data"])
                    mask[i].copy_(smp[s]["mask"])
                else:  # an absent product: zeros, every pixel NODATA
                    data[i].zero_()
                    mask[i].fill_(int(MaskFlag.NODATA))
            wavelength, fwhm = floats[f : f + C], floats[f + C : f + 2 * C]
            f += 2 * C
            wavelength.copy_(torch.from_numpy(self.wavelength[s]))
            fwhm.copy_(torch.from_numpy(self.fwhm[s]))
            out["sensors"][s] = {"data": data, "mask": mask, "wavelength": wavelength, "fwhm": fwhm, "gsd": self.gsd[s]}
        return out


def make_loader(
    dataset: ReleaseDataset,
    batch_size: int,
    *,
    workers: int = 0,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    start: int = 0,
) -> torch.utils.data.DataLoader:
    """An endless DataLoader over ``dataset`` starting at global sample position ``start``.

    The loader gets its own torch generator so creating it never draws from the global RNG (which
    the model uses for its views): resume stays exact.
    """
    sampler = ShardSampler(dataset, seed=seed, rank=rank, world_size=world_size, start=start)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=Collate.for_dataset(dataset),
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
        multiprocessing_context="fork" if workers > 0 and os.name == "posix" else None,
    )


# -- normalisation statistics ---------------------------------------------------------------------


def stats_path(store: Path | str) -> Path:
    """Where a release's normalisation statistics live: a JSON file beside ``<release>.zarr``."""
    store = Path(store)
    return store.with_name(store.name + ".norm.json")


def compute_stats(dataset: ReleaseDataset, max_patches: int = 256) -> dict[str, Any]:
    """Per product and usable band: mean and std in physical units over valid pixels.

    Uses up to ``max_patches`` indexed patches per product, evenly spaced over the rows
    (deterministic), so the result is the same for every run on a release.
    """
    out: dict[str, Any] = {"format": STATS_FORMAT, "release_id": dataset.release.release_id, "sensors": {}}
    index = dataset.release.index
    for s in dataset.sensors:
        lay = dataset.release.products[s]
        indexed = np.sort(index.loc[index["sensor"] == s, "row"].to_numpy())  # committed patches only
        pick = np.unique(np.linspace(0, len(indexed) - 1, min(max_patches, len(indexed))).astype(int))
        rows = indexed[pick]
        total = np.zeros(lay.channels)
        total_sq = np.zeros(lay.channels)
        count = 0
        for r in rows:
            data, mask = dataset.read_patch(s, int(r))
            valid = (mask & MaskFlag.NODATA) == 0
            v = data[:, valid].astype(np.float64)
            total += v.sum(axis=1)
            total_sq += (v * v).sum(axis=1)
            count += v.shape[1]
        mean = total / max(count, 1)
        std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0.0))
        out["sensors"][s] = {
            "mean": mean.tolist(),
            "std": np.where(std > 1e-12, std, 1.0).tolist(),
            "wavelength": lay.wavelength.tolist(),
            "n_pixels": int(count),
            "n_patches": len(rows),
        }
    return out


def load_or_compute_stats(dataset: ReleaseDataset, path: Path | None = None) -> dict[str, Any]:
    """The release's statistics: read from ``path`` (default :func:`stats_path`) or computed once
    and written there atomically. Products missing from the file are computed and added."""
    path = Path(path) if path else stats_path(dataset.release.path)
    have: dict[str, Any] = {}
    if path.exists():
        doc = json.loads(path.read_text())
        if doc.get("format") == STATS_FORMAT and doc.get("release_id") == dataset.release.release_id:
            have = doc
            if all(s in doc["sensors"] for s in dataset.sensors):
                return doc
    doc = compute_stats(dataset)
    if have:
        doc["sensors"] = {**have["sensors"], **doc["sensors"]}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    return doc
