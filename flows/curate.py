"""The ``curate`` flow: search -> co-locate -> tile (mapped on Dask) -> validate -> publish.

Each task calls one library function; the flow only wires them and records what happened
(artifacts: coverage map, per-product counts, quicklooks, seconds per stage). Between tasks only
paths, ids and summary dataclasses travel, never arrays or credentials.

Resuming is the engine's job: ``engine.tile`` skips the cells already in the release index, so
rerunning a crashed ``curate`` with the same release id finishes the missing cells only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.events import emit_event

from flows.artifacts import Progress, StageTimer, publish_image, publish_markdown, publish_table
from flows.params import CurateRequest, check_curate, curate_run_name, tile_run_name
from flows.retry import retry_options
from flows.settings import FlowSettings, get_settings

#: Event emitted when a release is published; ``train/after-release`` listens to it.
RELEASE_EVENT = "spectralearth.release.published"
#: How many locations get a quicklook artifact.
QUICKLOOKS = 3


@dataclass(frozen=True)
class SceneSet:
    """Scenes found by one source, written to a GeoParquet file."""

    source: str
    path: str
    count: int
    per_sensor: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanRef:
    """A co-location plan on disk and the cells it covers."""

    path: str
    cells: list[str]
    rows: int
    per_sensor: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CurateResult:
    """What one curate run produced."""

    release_id: str
    store: str
    manifest: str
    plan: str
    cells: int
    patches_written: int
    patches_dropped: int
    cells_skipped: int
    scenes: dict[str, int]


# -- tasks: one library call each -----------------------------------------------------------------


@task(name="make-demo-scenes")
def make_demo_scenes(out_dir: str) -> str:
    """Synthesize the demo scenes (once: an existing catalog is reused). Returns the catalog path."""
    from spectralearth_data.demo import make_demo_scenes as _make

    catalog = Path(out_dir) / "catalog.json"
    if not catalog.exists():
        summary = _make(Path(out_dir))
        catalog = Path(getattr(summary, "catalog", catalog))
        get_run_logger().info("synthesized demo scenes (not real observations) in %s", out_dir)
    return str(catalog)


@task(name="search", task_run_name="search-{source}", **retry_options())
def search_scenes(
    source: str,
    region: str,
    start: str | None,
    end: str | None,
    sensors: list[str] | None,
    max_cloud: float | None,
    out: str,
    demo_dir: str | None = None,
) -> SceneSet:
    """Search one source and write its scene table to ``out`` (GeoParquet)."""
    from spectralearth_data.sources import search, write_scenes

    extra = {"demo_dir": demo_dir} if demo_dir else {}
    scenes = search(source, region, start=start, end=end, sensors=sensors, max_cloud=max_cloud, **extra)
    write_scenes(scenes, out)
    counts = {str(k): int(v) for k, v in scenes["sensor"].value_counts().items()} if len(scenes) else {}
    return SceneSet(source=source, path=out, count=len(scenes), per_sensor=counts)


@task(name="colocate")
def colocate_scenes(
    scene_paths: list[str],
    cell_m: int,
    window_days: dict[str, float] | None,
    anchors: list[str] | None,
    plan_path: str,
) -> PlanRef:
    """Co-locate the scenes of every source on the grid and write the plan (GeoParquet)."""
    import geopandas as gpd
    import pandas as pd

    from spectralearth_data.colocate import colocate, explain_empty, write_plan
    from spectralearth_data.errors import SourceError

    frames = [gpd.read_parquet(p) for p in scene_paths]
    scenes = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    plan = colocate(scenes, cell_m=cell_m, window_days=window_days, anchors=anchors)
    if plan.empty:  # say why here, where the scenes are at hand (cell_m is the usual reason)
        why = explain_empty(scenes, cell_m=cell_m, anchors=anchors,
                            options={"cell_m": "cell_m={}", "anchor": "anchors=[{}]", "min_fraction": "min_fraction"})
        raise SourceError(f"no co-located cells in the {len(scenes)} scenes found: {why}")
    write_plan(plan, Path(plan_path))
    cells = sorted(set(plan["cell_id"])) if len(plan) else []
    counts = {str(k): int(v) for k, v in plan["sensor"].value_counts().items()} if len(plan) else {}
    return PlanRef(path=plan_path, cells=cells, rows=len(plan), per_sensor=counts)


@task(name="coverage-map")
def draw_coverage_map(plan_path: str, png: str, region: str) -> str:
    """The plan's coverage map PNG (cells per HSI combination over the region)."""
    from spectralearth_data.catalog import load_region
    from spectralearth_data.colocate import coverage_map, read_plan

    coverage_map(read_plan(Path(plan_path)), Path(png), region=load_region(region))
    return png


@task(name="tile", task_run_name="tile-{label}", **retry_options())
def tile_cells(plan_path: str, store: str, cells: list[str], label: str) -> Any:
    """Tile ``cells`` of the plan into the release; cells already indexed are skipped by the engine.

    On a Dask worker the engine's own graph goes to the same cluster (the task secedes from the
    worker's thread pool while it waits, so it does not hold a slot the shards need).
    """
    from spectralearth_data import engine

    address = _cluster_address()
    # a chunk whose patches the QA drops is no error by itself; validate judges the whole release
    if address is None:
        return engine.tile(Path(plan_path), Path(store), cells=list(cells), progress=False, allow_empty=True)
    from distributed import rejoin, secede

    secede()
    try:
        return engine.tile(Path(plan_path), Path(store), scheduler=address, cells=list(cells), progress=False,
                           allow_empty=True)
    finally:
        rejoin()


def _cluster_address() -> str | None:
    """The scheduler address when running on a Dask worker, else None."""
    try:
        from distributed import get_worker

        return get_worker().scheduler.address
    except (ImportError, ValueError):
        return None


@task(name="validate")
def validate_release(store: str) -> int:
    """Check every index row against the data; a problem fails the run before publishing."""
    from spectralearth_data.release.validate import validate_store
    from spectralearth_data.errors import ReleaseError

    problems = validate_store(Path(store), check_manifest=False)  # publish rewrites release.json next
    if problems:
        shown = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        raise ReleaseError(f"{store}: {len(problems)} problem(s): {shown}")
    return 0


@task(name="publish")
def publish_release(store: str, release_id: str) -> str:
    """Write the release manifest and announce the release with the ``spectralearth.release.published`` event."""
    from spectralearth_data.release.publish import publish

    manifest = publish(Path(store), release_id)
    emit_event(
        event=RELEASE_EVENT,
        resource={"prefect.resource.id": f"spectralearth.release.{release_id}", "prefect.resource.name": release_id},
        payload={"release_id": release_id, "location": str(Path(store).resolve()), "manifest": str(manifest)},
    )
    return str(manifest)


@task(name="quicklook", task_run_name="quicklook-{cell_id}")
def draw_quicklook(store: str, cell_id: str, png: str) -> str:
    """A PNG of one location across products."""
    from spectralearth_data.release.quicklook import quicklook

    quicklook(Path(store), cell_id, Path(png))
    return png


# -- the tiling sub-flow, on Dask ------------------------------------------------------------------


def chunk_cells(cells: list[str], size: int) -> list[list[str]]:
    """Split the plan's cells into consecutive chunks of ``size`` (the unit mapped over Dask)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [list(cells[i : i + size]) for i in range(0, len(cells), size)]


def dask_task_runner(settings: FlowSettings):
    """A prefect-dask runner: the cluster at ``settings.dask_address`` or a new LocalCluster."""
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_class="spectralearth_data.engine.cluster.local_cluster",
        cluster_kwargs={
            "n_workers": settings.dask_workers,
            "threads_per_worker": settings.dask_threads_per_worker,
            "processes": settings.dask_processes,
            "dashboard_address": ":0",  # a free port: several flow runs may share a machine
        },
    )


@flow(name="tile-release", flow_run_name=tile_run_name)
def tile_release(plan_path: str, store: str, chunks: list[list[str]]) -> list[Any]:
    """Tile the chunks as a chain of tasks on the flow's (Dask) task runner.

    The engine allows one writer per store (a ``flock`` on the store folder, see
    :mod:`spectralearth_data.lock`), so chunk *k+1* waits for chunk *k*;
    the parallelism is inside each chunk, where the engine spreads shards over the same cluster.
    A chunk is the unit of retry and of progress in the UI (the ``tiling-<release>`` progress
    artifact advances as each chunk finishes); a failed chunk stops the chain, and a rerun resumes
    from the release index.
    """
    release = Path(store).name.removesuffix(".zarr")
    progress = Progress(len(chunks), f"tiling-{release}", f"Chunks of cells tiled into {release}")
    futures = []
    for i, chunk in enumerate(chunks):
        label = f"{release}-chunk{i + 1:04d}of{len(chunks):04d}"
        futures.append(tile_cells.submit(plan_path, store, chunk, label, wait_for=futures[-1:]))
    results = []
    for f in futures:
        results.append(f.result())
        progress.advance()
    return results


# -- the flow ---------------------------------------------------------------------------------------


def _sum(summaries: list[Any], name: str) -> int:
    return int(sum(int(getattr(s, name, 0) or 0) for s in summaries))


@flow(name="curate", flow_run_name=curate_run_name, log_prints=True)
def curate(
    region: str = "demo",
    start: str | None = None,
    end: str | None = None,
    sensors: list[str] | None = None,
    source: str | list[str] = "demo",
    release: str | None = None,
    cell_m: int = 960,
    max_cloud: float | None = None,
    anchors: list[str] | None = None,
    window_days: dict[str, float] | None = None,
    cells: list[str] | None = None,
) -> CurateResult:
    """Build (or resume) the release ``release`` of ``region``: search, co-locate, tile, validate, publish.

    Args:
        region: catalog region name (``demo``) or a GeoJSON path.
        start, end: period (ISO dates); default the region's suggested period.
        sensors: products to search (default: all).
        source: a source of catalogs/sources.yaml, ``local:PATH``, or a list of them.
        release: release id (default ``<region>-<cell_m>m``; the same id resumes that release).
        cell_m: grid cell size in metres (3840 for production, 960 for the demo).
        max_cloud: scene cloud-cover limit in percent.
        anchors: products that anchor co-location (default: every HSI product).
        window_days: co-location windows per product, +/- days.
        cells: only these cell ids of the plan (default: all).
    """
    req = check_curate(region, start, end, sensors, source, release, cell_m, max_cloud, anchors, window_days, cells)
    settings = get_settings()
    return run_curate(req, settings)


def run_curate(req: CurateRequest, settings: FlowSettings) -> CurateResult:
    """The body of :func:`curate` for an already-checked request."""
    logger = get_run_logger()
    timer = StageTimer()
    run_dir = settings.runs_dir / req.release_id
    store = settings.releases_dir / f"{req.release_id}.zarr"
    run_dir.mkdir(parents=True, exist_ok=True)

    with timer.stage("search"):
        if "demo" in req.sources:
            make_demo_scenes(str(settings.demo_dir))
        futures = [
            search_scenes.submit(
                src, req.region, req.start, req.end, list(req.sensors) if req.sensors else None, req.max_cloud,
                str(run_dir / f"scenes-{_slug(src)}.parquet"),
                str(settings.demo_dir) if src == "demo" else None,
            )
            for src in req.sources
        ]
        scene_sets: list[SceneSet] = [f.result() for f in futures]
    scenes = {s.source: s.count for s in scene_sets}
    logger.info("scenes found: %s", scenes)

    with timer.stage("colocate"):
        plan = colocate_scenes(
            [s.path for s in scene_sets if s.count],
            req.cell_m,
            req.window_days,
            list(req.anchors) if req.anchors else None,
            str(run_dir / "plan.parquet"),
        ) if any(s.count for s in scene_sets) else None
    if plan is None or not plan.cells:
        from spectralearth_data.errors import SourceError

        raise SourceError(f"no co-located scenes for region {req.region!r} in {req.start}..{req.end} from {scenes}")
    if req.cells is not None:  # in the region, yet maybe in no scene's footprint: say so before tiling
        missing = sorted(set(req.cells) - set(plan.cells))
        if missing:
            from flows.params import ParameterError

            raise ParameterError(
                f"cells: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} not in the plan of "
                f"{req.region!r} ({len(plan.cells)} cells of {req.cell_m} m, e.g. {plan.cells[0]}); "
                "give cell ids from the plan, or leave cells out")
    with timer.stage("coverage map"):
        png = draw_coverage_map(plan.path, str(run_dir / "coverage.png"), req.region)
        publish_image(Path(png), f"coverage-{req.release_id}", f"Coverage of {req.region}")

    chosen = [c for c in plan.cells if req.cells is None or c in set(req.cells)]
    chunks = chunk_cells(chosen, settings.chunk_cells)
    logger.info("tiling %d cells in %d chunks into %s", len(chosen), len(chunks), store)
    with timer.stage("tile"):
        runner = dask_task_runner(settings)
        tiles = tile_release.with_options(task_runner=runner)(plan.path, str(store), chunks)

    with timer.stage("validate"):
        validate_release(str(store))
    published = _published_manifest(store)
    if published is not None and _sum(tiles, "patches_written") == 0:
        # a rerun that adds nothing: the published release stands, and no event starts training again
        logger.info("release %s: nothing new to tile; %s stays as published, no release event", req.release_id,
                    published)
        manifest = str(published)
    else:
        with timer.stage("publish"):
            manifest = publish_release(str(store), req.release_id)
    with timer.stage("quicklooks"):
        for cell in chosen[:QUICKLOOKS]:
            ql = draw_quicklook(str(store), cell, str(run_dir / f"quicklook-{cell}.png"))
            publish_image(Path(ql), f"quicklook-{req.release_id}-{cell}", f"Quicklook of {cell}")

    result = CurateResult(
        release_id=req.release_id,
        store=str(store),
        manifest=manifest,
        plan=plan.path,
        cells=len(chosen),
        patches_written=_sum(tiles, "patches_written"),
        patches_dropped=_sum(tiles, "patches_dropped"),
        cells_skipped=_sum(tiles, "cells_skipped"),
        scenes=scenes,
    )
    _publish_counts(req, scene_sets, plan, store)
    timer.publish(f"timings-{req.release_id}")
    publish_markdown(
        "```json\n" + json.dumps(asdict(result), indent=2) + "\n```", f"release-{req.release_id}", "Release summary"
    )
    logger.info("release %s: %s (%d patches written, %d cells already done)",
                req.release_id, store, result.patches_written, result.cells_skipped)
    return result


def _published_manifest(store: Path) -> Path | None:
    """The release manifest of ``store`` when it has been published, else None."""
    from spectralearth_data.release.layout import MANIFEST

    path = Path(store) / MANIFEST
    return path if path.exists() else None


def _publish_counts(req: CurateRequest, scene_sets: list[SceneSet], plan: PlanRef, store: Path) -> None:
    """Per-product counts: scenes found, plan rows, patches in the release index."""
    from spectralearth_data.release import read_index_columns

    idx = read_index_columns(store, ["sensor"])
    patches = {str(k): int(v) for k, v in idx["sensor"].value_counts().items()}
    found: dict[str, int] = {}
    for s in scene_sets:
        for k, v in s.per_sensor.items():
            found[k] = found.get(k, 0) + v
    names = sorted(set(found) | set(plan.per_sensor) | set(patches))
    rows = [
        {"product": n, "scenes": found.get(n, 0), "plan rows": plan.per_sensor.get(n, 0), "patches": patches.get(n, 0)}
        for n in names
    ]
    publish_table(rows, f"counts-{req.release_id}", "Scenes, plan rows and patches per product")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:60]
