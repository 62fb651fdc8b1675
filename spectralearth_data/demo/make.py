"""Build the whole demo: surface -> per-scene sky -> files per product -> STAC catalog."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pystac

from ..catalog import load_region, load_sensor
from ..errors import InputDataError
from .emit import write_emit_scene
from .scenes import GROUPS, SCHEDULE, SceneOut, write_raster_scene
from .sky import make_sky
from .spectra import reference_spectra
from .stac_items import SYNTHETIC_PROP, make_collection, make_item
from .surface import make_surface

#: The region the demo covers and the UTM zone of its surface.
DEMO_REGION = "demo"
SURFACE_EPSG = 32633

README = """SYNTHESIZED DEMO DATA - NOT REAL ACQUISITIONS
==============================================
Written by `spectralearth demo-scenes` (seed {seed}) for the SpectralEarth offline demo.
Every scene in this folder was synthesized over the demo region (near Potsdam, Germany): a
seeded land-cover surface whose class spectra were derived from real EnMAP L2A example tiles
(EnMAP data (c) DLR, via EnMAP-Box), convolved to each product's bands (catalog FWHM or the
Sentinel-2 / Landsat spectral response functions), with synthetic clouds, shadows and footprint
edges. Files use each product's native grid, dtype, scale/offset, nodata and QA encoding, and the
STAC items in catalog.json mimic the real providers' items, but no pixel here was measured by a
satellite. Do not use these files for science.
"""


@dataclass
class DemoSummary:
    """What :func:`make_demo_scenes` wrote."""

    out_dir: Path
    catalog: Path
    items: dict[str, int] = field(default_factory=dict)  # product -> number of items
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    synthetic: bool = True


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to write into a folder holding anything but a previous demo (nothing gets lost)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputDataError(f"--out {out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        readme = out_dir / "README.txt"
        if not (readme.exists() and readme.read_text().startswith("SYNTHESIZED DEMO DATA")):
            raise InputDataError(
                f"--out {out_dir}: folder is not empty and is not a previous demo; choose an empty or new folder")


def make_demo_scenes(out_dir: Path, seed: int = 0) -> DemoSummary:
    """Synthesize every product's demo scenes under ``out_dir`` and a static STAC catalog.

    Same ``seed`` -> identical arrays. A previous demo in ``out_dir`` is replaced; any other
    non-empty folder is refused (:class:`InputDataError`).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    if out_dir.is_dir():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    region = load_region(DEMO_REGION)
    n_classes = len(reference_spectra()[1])
    surface = make_surface(region.shape.bounds, SURFACE_EPSG, n_classes, seed)
    sensors = {name: load_sensor(name) for group in GROUPS.values() for name in group}
    items: dict[str, list[pystac.Item]] = {name: [] for name in sensors}
    for n, scene in enumerate(SCHEDULE):
        rng = np.random.default_rng([seed, 2, n])
        sky = make_sky(surface, rng, scene.cloud_fraction, scene.cut_fraction)
        group = [sensors[name] for name in GROUPS[scene.group]]
        folder = out_dir / scene.group / scene.scene_id
        out: SceneOut
        if scene.group == "emit":
            out = write_emit_scene(scene, group[0], surface, sky, folder, rng)
        else:
            out = write_raster_scene(scene, group, surface, sky, folder, rng)
        for sensor in group:
            items[sensor.name].append(make_item(scene, sensor, out))
    catalog = pystac.Catalog(
        id="spectralearth-demo",
        title="SYNTHESIZED SpectralEarth demo scenes",
        description=f"SYNTHESIZED demo scenes (seed {seed}) for every SpectralEarth product over the "
                    "demo region; not real acquisitions.",
        extra_fields={SYNTHETIC_PROP: True},
    )
    for name, its in items.items():
        col = make_collection(sensors[name], its)
        col.add_items(its)
        catalog.add_child(col)
    catalog.normalize_hrefs(str(out_dir))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    (out_dir / "README.txt").write_text(README.format(seed=seed))
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    return DemoSummary(out_dir=out_dir, catalog=out_dir / "catalog.json",
                       items={k: len(v) for k, v in items.items()}, files=len(files),
                       bytes=sum(p.stat().st_size for p in files),
                       seconds=round(time.perf_counter() - t0, 2))
