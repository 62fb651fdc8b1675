"""One unit of tiling work: one scene of one sensor over up to ``k`` cells -> one shard + index part.

:func:`run_task` is a plain function (no Dask inside) so it can run on any worker, in a thread or
inline. It reads the scene once per strip of neighbouring cells (one warp per strip rather than
per patch), cuts patches, computes QA fractions, drops patches under the thresholds, writes its
shard and then commits its index part.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..catalog import SensorSpec, sensor_spec
from ..credentials import install_log_redaction
from ..errors import InputDataError, SpectralEarthError
from ..grid import Cell, parse_cell_id, pixels_per_cell
from ..masks import INVALID, MaskFlag
from ..release.store import PIPELINE_VERSION, commit_part, patch_sha256, write_shard
from . import coreg
from .config import TileConfig
from .readers import SceneRef, group_dtype, read_scene, stored_bands
from .readers.cog import keep_open

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellJob:
    """One patch of a task: the scene, the cell, anchor, time, footprint (WKB) and optional S2
    reference (for the co-registration check of HSI patches)."""

    scene: SceneRef
    cell_id: str
    anchor_scene_id: str
    datetime: object
    geometry_wkb: bytes
    reference: SceneRef | None = None

    def patch_id(self, sensor: str) -> str:
        return patch_id(sensor, self.cell_id, self.scene.scene_id)


@dataclass(frozen=True)
class Task:
    """Up to ``patches_per_shard`` patches of one sensor -> one shard. The jobs are sorted by
    (scene, CRS, grid row, column), so consecutive jobs of one scene and CRS are read together
    in long strips, each raster opened once (:func:`~.readers.cog.keep_open`); packing
    several scenes into a shard keeps ``<sensor>/data`` dense (no shard per small scene)."""

    sensor: str
    shard: int
    cell_m: int
    cells: tuple[CellJob, ...]
    batch: str = "all"

    @property
    def patch_ids(self) -> list[str]:
        return [c.patch_id(self.sensor) for c in self.cells]

    @property
    def scene_ids(self) -> list[str]:
        return list(dict.fromkeys(c.scene.scene_id for c in self.cells))


@dataclass
class TaskResult:
    sensor: str
    shard: int
    scene_ids: list[str]
    written: int = 0
    dropped: int = 0
    seconds: float = 0.0
    bytes_written: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)
    #: one line per scene of the task that could not be read (its patches stay unattempted)
    failures: list[str] = field(default_factory=list)
    #: one line per scene that was written but whose values look wrong (e.g. an offset applied
    #: twice: :meth:`~.readers.encoding.ClearSample.verdict`); also logged as a warning
    suspect: list[str] = field(default_factory=list)


def patch_id(sensor: str, cell_id: str, scene_id: str) -> str:
    return f"{sensor}/{cell_id}/{scene_id}"


def strips(cells: list[Cell]) -> list[list[int]]:
    """Indexes of ``cells`` grouped into runs of horizontally adjacent cells on one grid row, so
    each run is read with a single warp onto a (P, n*P) strip."""
    order = sorted(range(len(cells)), key=lambda i: (-cells[i].row, cells[i].col))
    out: list[list[int]] = []
    for i in order:
        if out and cells[out[-1][-1]].row == cells[i].row and cells[out[-1][-1]].col + 1 == cells[i].col and len(out[-1]) < 16:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def strip_geobox(cells: list[Cell], gsd: float):
    """The pixel grid covering a run of adjacent cells of one row at ``gsd``."""
    from affine import Affine
    from odc.geo.geobox import GeoBox

    x0, _, _, y1 = cells[0].bounds
    P = pixels_per_cell(cells[0].cell_m, gsd)
    return GeoBox((P, P * len(cells)), Affine(gsd, 0.0, x0, 0.0, -gsd, y1), f"EPSG:{cells[0].epsg}")


def physical(spec_bands, data: np.ndarray, band_idx: int) -> np.ndarray:
    """One band in physical units with NaN where it is the fill value."""
    b = spec_bands[band_idx]
    x = data[band_idx].astype(np.float32) * b.scale + b.offset
    if b.nodata is not None:
        x[data[band_idx] == b.nodata] = np.nan
    return x


def _nearest_band(bands, wavelength: float) -> int:
    return int(np.argmin([abs((b.wavelength_nm or math.inf) - wavelength) for b in bands]))


def _reference_bands():
    s2 = sensor_spec("s2")
    return s2, tuple(b for b in s2.bands if b.common_name in coreg.REFERENCE_COMMON_NAMES)


def _read_reference(ref: SceneRef, cells: list[Cell]):
    """The S2 reference bands (and QA) of ``ref`` over a strip of cells, or None without any."""
    s2, ref_bands = _reference_bands()
    if not ref_bands:
        return None
    return read_scene(s2, ref, strip_geobox(cells, s2.gsd_m), ref_bands)


def _coreg_for(spec: SensorSpec, bands, data: np.ndarray, ref_raster, j: int, cell_m: int) -> float:
    """Co-registration shift of an HSI patch against cell ``j`` of a strip's S2 reference."""
    s2, ref_bands = _reference_bands()
    if ref_raster is None:
        return float("nan")
    P = pixels_per_cell(cell_m, s2.gsd_m)
    ref_data = ref_raster.data[:, :, j * P : (j + 1) * P]
    ref_invalid = (ref_raster.mask[:, j * P : (j + 1) * P] & int(INVALID)) != 0
    factor = round(spec.gsd_m / s2.gsd_m)
    hsi, refs = [], []
    for i, rb in enumerate(ref_bands):
        r = physical(ref_bands, ref_data, i)
        r[ref_invalid] = np.nan
        refs.append(coreg.block_mean(r, factor))
        hsi.append(physical(bands, data, _nearest_band(bands, rb.wavelength_nm)))
    return coreg.coreg_shift_px(hsi, refs)


def run_task(task: Task, store: str | Path, cfg: TileConfig) -> TaskResult:
    """Read, QA, write the shard and commit the index part of one task (see module docstring).

    A scene that cannot be read (a :class:`SpectralEarthError`: unreadable file, no CRS, all
    nodata) is reported in ``failures`` and its patches are left out of the part, so a later run
    retries them; the other scenes of the shard are written and committed. When every scene
    fails, nothing is written and the shard slot stays free.
    """
    t0 = time.perf_counter()
    install_log_redaction()  # this may be a Dask worker process: GDAL's log lines name signed URLs
    spec = sensor_spec(task.sensor)
    bands = stored_bands(spec)
    P = spec.patch_px_for(task.cell_m)
    k = cfg.patches_per_shard
    dtype = group_dtype(bands, spec.name)
    fill = bands[0].nodata if bands[0].nodata is not None else 0
    # filled slot by slot; the slots left empty get the fill value before the write
    block = np.empty((k, len(bands), P, P), dtype=dtype)
    mblock = np.empty((k, P, P), dtype=np.uint8)
    res = TaskResult(task.sensor, task.shard, task.scene_ids)
    rows: list[dict] = []
    attempted: list[str] = []
    for _, group in itertools.groupby(task.cells, key=lambda j: (j.scene.scene_id, _epsg(j, task.cell_m))):
        jobs = list(group)
        try:
            # each asset opened once for the scene's strips (and the S2 references of its
            # co-registration checks), so GDAL decodes each source block once
            with keep_open():
                got, dropped, warning = _read_scene_patches(spec, bands, jobs, task.cell_m, cfg, fill, P)
        except SpectralEarthError as e:
            msg = " ".join(str(e).split())
            sid = jobs[0].scene.scene_id
            res.failures.append(msg if sid in msg else f"{task.sensor} scene {sid}: {msg}")
            continue
        if warning:
            log.warning("%s", warning)
            res.suspect.append(warning)
        for reason in dropped:
            res.dropped += 1
            res.drop_reasons[reason] = res.drop_reasons.get(reason, 0) + 1
        for job, data, mask, vf, cf, shift in got:
            slot = len(rows)
            block[slot], mblock[slot] = data, mask
            rows.append(_index_row(task, spec, job, slot, block[slot], vf, cf, shift, k))
        attempted += [j.patch_id(task.sensor) for j in jobs]
    if not attempted:
        return _finish(res, t0)
    if rows:
        block[len(rows) :] = fill
        mblock[len(rows) :] = int(MaskFlag.NODATA)
        write_shard(store, task.sensor, task.batch, task.shard, block, mblock)
    commit_part(store, task.sensor, task.batch, task.shard, rows, attempted)
    res.written = len(rows)
    res.bytes_written = len(rows) * block[0].nbytes
    return _finish(res, t0)


def _finish(res: TaskResult, t0: float) -> TaskResult:
    res.seconds = time.perf_counter() - t0
    return res


def _epsg(job: CellJob, cell_m: int) -> int:
    return parse_cell_id(job.cell_id, cell_m).epsg


def _read_scene_patches(spec, bands, jobs: list[CellJob], cell_m: int, cfg: TileConfig, fill, P: int):
    """Patches of one scene over ``jobs`` (one CRS): ([(job, data, mask, vf, cf, shift)] kept,
    [drop reason] dropped, a warning when its clear pixels decode implausibly, else None).
    Raises :class:`InputDataError` when every pixel is nodata."""
    from .qa import fractions
    from .readers.encoding import ClearSample

    scene = jobs[0].scene
    cells = [parse_cell_id(j.cell_id, cell_m) for j in jobs]
    kept, dropped, any_valid = [], [], False
    sample, encoding = ClearSample(bands), ()
    for run in strips(cells):
        raster = read_scene(spec, scene, strip_geobox([cells[i] for i in run], spec.gsd_m), bands)
        sample.add(raster.data, raster.mask)
        encoding = raster.encoding or encoding
        if raster.data.dtype.kind == "f":  # NaN/Inf are already flagged in the mask; store the fill
            raster.data[~np.isfinite(raster.data)] = fill
        refs: dict[str, object] = {}  # S2 reference scene id -> its raster over this strip
        for j, i in enumerate(run):
            data = raster.data[:, :, j * P : (j + 1) * P]
            mask = raster.mask[:, j * P : (j + 1) * P]
            vf, cf = fractions(mask)
            any_valid |= vf > 0
            reason = "valid" if vf < max(cfg.min_valid_fraction, 1e-12) else "cloud" if cf > cfg.max_cloud_fraction else None
            if reason:
                dropped.append(reason)
                continue
            shift = float("nan")
            ref = jobs[i].reference
            if cfg.coreg and spec.kind == "hsi" and ref is not None:
                # the S2 reference is read once per strip (one warp), not once per patch
                if ref.scene_id not in refs:
                    refs[ref.scene_id] = _read_reference(ref, [cells[n] for n in run])
                shift = _coreg_for(spec, bands, data, refs[ref.scene_id], j, cell_m)
            kept.append((jobs[i], data, mask, vf, cf, shift))
    if not any_valid:
        raise InputDataError(
            f"{spec.name} scene {scene.scene_id}: every pixel is nodata over its {len(cells)} "
            f"planned cell(s) (first {jobs[0].cell_id}); check the scene footprint and its nodata value"
        )
    return kept, dropped, sample.verdict(spec.name, scene.scene_id, encoding)


def _index_row(task: Task, spec: SensorSpec, job: CellJob, slot: int, data, vf, cf, shift, k) -> dict:
    import shapely

    cell = parse_cell_id(job.cell_id, task.cell_m)
    x0, _, _, y1 = cell.bounds
    gsd = float(spec.gsd_m)
    return {
        "patch_id": job.patch_id(task.sensor),
        "cell_id": job.cell_id,
        "sensor": task.sensor,
        "datetime": job.datetime,
        "row": task.shard * k + slot,
        "scene_id": job.scene.scene_id,
        "anchor_scene_id": job.anchor_scene_id,
        "assets": _json(job.scene.assets),
        "valid_fraction": float(vf),
        "cloud_fraction": float(cf),
        "coreg_shift_px": float(shift),
        "sha256": patch_sha256(data),
        "pipeline_version": PIPELINE_VERSION,
        "licence": spec.licence.id,
        "redistributable": bool(spec.licence.redistributable),
        "batch": task.batch,
        "epsg": int(cell.epsg),
        "transform": _json_list([gsd, 0.0, float(x0), 0.0, -gsd, float(y1)]),
        "geometry": shapely.from_wkb(job.geometry_wkb),
    }


def _json_list(v: list[float]) -> str:
    import json

    return json.dumps(v)


def _json(d: dict) -> str:
    import json

    return json.dumps(d, sort_keys=True)
