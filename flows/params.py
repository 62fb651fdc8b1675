"""Checking flow parameters against the catalog *before* any work starts.

A flow run with an unknown region or product, reversed dates or an impossible cell size fails in
its first second with one line that names the parameter, instead of after a search, half a
co-location or a partial release. These are plain functions (no Prefect) so the CLI and the tests
can call them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from spectralearth_data.catalog import load_region, load_sensor, load_sources
from spectralearth_data.errors import SpectralEarthError

_RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ParameterError(SpectralEarthError):
    """A flow parameter that cannot work; the message names the parameter and the fix."""


@dataclass(frozen=True)
class CurateRequest:
    """The checked parameters of one curate run."""

    region: str
    start: str | None
    end: str | None
    sensors: tuple[str, ...] | None
    sources: tuple[str, ...]
    release_id: str
    cell_m: int
    max_cloud: float | None
    anchors: tuple[str, ...] | None
    window_days: dict[str, float] | None
    cells: tuple[str, ...] | None


def parse_day(name: str, value: str | date | None) -> str | None:
    """An ISO date (``YYYY-MM-DD``) or None; anything else raises :class:`ParameterError`."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()[:10]
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise ParameterError(f"{name}={value!r} is not a date; use YYYY-MM-DD") from None


def check_sensors(name: str, sensors: list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Each product name must have a catalog entry (``load_sensor`` names the known ones)."""
    if sensors is None:
        return None
    if isinstance(sensors, str):
        sensors = [s for s in sensors.split(",") if s]
    if not sensors:
        raise ParameterError(f"{name}: empty list; leave it out to use every product")
    for s in sensors:
        try:
            load_sensor(s)
        except SpectralEarthError as e:
            raise ParameterError(f"{name}: {e}") from None
    return tuple(sensors)


def check_sources(source: str | list[str]) -> tuple[str, ...]:
    """Source names from catalogs/sources.yaml, or ``local:PATH``."""
    names = [source] if isinstance(source, str) else list(source)
    if not names:
        raise ParameterError("source: empty list; give a source name such as 'demo'")
    known = load_sources()
    for n in names:
        if n.startswith("local:"):
            continue
        if n not in known:
            raise ParameterError(
                f"source: unknown source {n!r}; known sources: {', '.join(sorted(known))} (or local:PATH)"
            )
    return tuple(names)


def default_release_id(region: str, cell_m: int) -> str:
    """A stable id per region and cell size, so a rerun of the same request resumes the release."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", region.rsplit("/", 1)[-1].removesuffix(".geojson"))
    return f"{stem}-{cell_m}m"


def check_cells(cells: list[str] | tuple[str, ...] | str | None, cell_m: int, region) -> tuple[str, ...] | None:
    """Cell ids of ``cell_m`` metres that lie in ``region`` (they are numbered per cell size, so an
    id of another size or region points elsewhere); known before any search or co-location."""
    from spectralearth_data.grid import parse_cell_id

    if cells is None:
        return None
    if isinstance(cells, str):
        cells = [c.strip() for c in cells.split(",") if c.strip()]
    if not cells:
        raise ParameterError("cells: empty list; leave it out to tile every cell of the plan")
    area = region.shape
    outside = []
    for c in cells:
        try:
            cell = parse_cell_id(str(c), cell_m)
        except SpectralEarthError as e:
            raise ParameterError(f"cells: {e}") from None
        if not cell.polygon_lonlat().intersects(area):
            outside.append(str(c))
    if outside:
        shown = ", ".join(outside[:3]) + (f" (+{len(outside) - 3} more)" if len(outside) > 3 else "")
        raise ParameterError(
            f"cells: {shown} not in region {region.name!r} at cell_m={cell_m} (cell ids are numbered per cell "
            "size); give ids of this region's plan (its coverage map or plan.parquet), or leave cells out")
    return tuple(map(str, cells))


def check_curate(
    region: str,
    start: str | date | None = None,
    end: str | date | None = None,
    sensors: list[str] | None = None,
    source: str | list[str] = "demo",
    release: str | None = None,
    cell_m: int = 960,
    max_cloud: float | None = None,
    anchors: list[str] | None = None,
    window_days: dict[str, float] | None = None,
    cells: list[str] | None = None,
) -> CurateRequest:
    """Check every curate parameter against the catalog; raise :class:`ParameterError` on the first bad one."""
    try:
        reg = load_region(region)
    except SpectralEarthError as e:
        raise ParameterError(f"region: {e}") from None
    start_s = parse_day("start", start) or reg.start
    end_s = parse_day("end", end) or reg.end
    if start_s and end_s and start_s > end_s:
        raise ParameterError(f"start={start_s} is after end={end_s}; swap them")
    sensor_t = check_sensors("sensors", sensors)
    anchor_t = check_sensors("anchors", anchors)
    if window_days:
        check_sensors("window_days", list(window_days))
        bad = {k: v for k, v in window_days.items() if not float(v) > 0}
        if bad:
            raise ParameterError(f"window_days: windows must be > 0 days, got {bad}")
    if not isinstance(cell_m, int) or cell_m <= 0:
        raise ParameterError(f"cell_m={cell_m!r}: expected a positive whole number of metres")
    for s in sensor_t or ():
        try:
            load_sensor(s).patch_px_for(cell_m)
        except SpectralEarthError as e:
            raise ParameterError(f"cell_m: {e}") from None
    cells_t = check_cells(cells, cell_m, reg)
    if max_cloud is not None and not 0 <= max_cloud <= 100:
        raise ParameterError(f"max_cloud={max_cloud}: expected a percentage within [0, 100]")
    release_id = release or default_release_id(reg.name, cell_m)
    if not _RELEASE_ID.match(release_id):
        raise ParameterError(
            f"release={release_id!r}: use letters, digits, '.', '_' or '-' (it becomes a folder name)"
        )
    return CurateRequest(
        region=str(region),
        start=start_s,
        end=end_s,
        sensors=sensor_t,
        sources=check_sources(source),
        release_id=release_id,
        cell_m=cell_m,
        max_cloud=max_cloud,
        anchors=anchor_t,
        window_days=dict(window_days) if window_days else None,
        cells=cells_t,
    )


# -- flow run names (from the parameters, so runs read as what they do in the UI) ---------------------


def _run_parameters() -> dict:
    from prefect.runtime import flow_run

    return dict(flow_run.parameters or {})


def _slug(text: object) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")[:80] or "run"


def curate_run_name() -> str:
    """``curate-<release>`` (the default release id when none is given), plus the number of cells
    when only some are asked for."""
    p = _run_parameters()
    release = p.get("release") or default_release_id(str(p.get("region") or "demo"), int(p.get("cell_m") or 960))
    cells = p.get("cells")
    return f"curate-{_slug(release)}" + (f"-{len(cells)}cells" if isinstance(cells, list | tuple) else "")


def tile_run_name() -> str:
    """``tile-<release>-<chunks>chunks``: the tiling sub-flow of one release."""
    p = _run_parameters()
    store = str(p.get("store") or "release").rstrip("/").rsplit("/", 1)[-1].removesuffix(".zarr")
    return f"tile-{_slug(store)}-{len(p.get('chunks') or [])}chunks"


def train_run_name() -> str:
    """``train-<release>-<preset>``."""
    p = _run_parameters()
    release = str(p.get("release") or "release").rstrip("/").rsplit("/", 1)[-1].removesuffix(".zarr")
    return f"train-{_slug(release)}-{_slug(p.get('preset') or 'tiny')}"


def evaluate_run_name() -> str:
    """``evaluate-<model run>-<head>`` (the model run is the checkpoint's folder)."""
    p = _run_parameters()
    run = str(p.get("checkpoint") or "model").rstrip("/").rsplit("/", 2)[-2:][0]
    return f"evaluate-{_slug(run)}-{_slug(p.get('head') or 'linear')}"


def rebuild_run_name() -> str:
    """``rebuild-<YYYY>w<WW>-<n>regions``."""
    from datetime import UTC, datetime

    year, week, _ = datetime.now(UTC).isocalendar()
    return f"rebuild-{year}w{week:02d}-{len(_run_parameters().get('regions') or [])}regions"
