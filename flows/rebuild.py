"""The ``rebuild`` flow: each region's release rebuilt partition by partition into its next version.

A region is cut into partitions of the grid (:mod:`spectralearth_data.grid.partitions`: UTM zone
groups x latitude bands; every cell has exactly one). Each partition is one unit of work:

    search (the partition's part of the region, per source) -> co-locate (its own cells) -> tile
    (into its own batch of the release)

so the driver holds one partition's scenes and plan at a time, never the world's. Partitions run
``concurrent_partitions`` at a time (tasks on a thread pool; tiling goes to one Dask cluster for
the run: ``SPECTRALEARTH_DASK_ADDRESS`` or a LocalCluster), and each source is searched by at most
its ``max_concurrency`` (catalogs/sources.yaml) tasks at once across every run, through Prefect's
global concurrency limits ``spectralearth-source-<name>``.

Incremental by construction: the release is one store per region and cell size, and the engine
skips every patch already committed (by any batch), so a week with new scenes tiles only their
patches, and publishing makes the next immutable version. A week with nothing new publishes
nothing and emits no release event. A failed partition is retried alone (transient errors, task
retries) and then reported; the others still tile and publish.

Progress in the UI: a table artifact of the partitions (done / failed / empty, patches, seconds)
and a map of them, updated as each finishes; runs are named after the week and the partitions.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.task_runners import ThreadPoolTaskRunner

from flows.artifacts import publish_image, publish_table
from flows.curate import RELEASE_EVENT
from flows.params import check_curate, default_release_id, rebuild_run_name
from flows.retry import retry_options
from flows.settings import get_settings

#: Prefix of the Prefect global concurrency limit of each source.
SOURCE_LIMIT_PREFIX = "spectralearth-source-"


@dataclass(frozen=True)
class PartitionResult:
    """What one partition of one region's rebuild did."""

    region: str
    partition: str
    status: str  # "done", "empty" (no co-located cell), "failed"
    scenes: int = 0
    cells: int = 0
    patches: int = 0
    seconds: float = 0.0
    message: str = ""
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class RebuildResult:
    """One region's rebuild: its release, the version published (None when nothing was new)."""

    region: str
    release_id: str
    store: str
    version: str | None
    patches_written: int
    partitions: list[PartitionResult]


def source_limit(source: str) -> str:
    """The name of ``source``'s Prefect global concurrency limit."""
    base = source.split(":", 1)[0]  # local:PATH shares the "local" limit
    return SOURCE_LIMIT_PREFIX + "".join(c if c.isalnum() or c == "-" else "-" for c in base)


def ensure_source_limits(sources: list[str]) -> dict[str, int]:
    """Create (or update) the global concurrency limit of each source with its ``max_concurrency``."""
    from prefect import get_client

    from spectralearth_data.catalog import load_sources

    specs = load_sources()
    limits = {}
    with get_client(sync_client=True) as client:
        for src in sources:
            spec = specs.get(src.split(":", 1)[0])
            limit = int(getattr(spec, "max_concurrency", 4) or 4)
            client.upsert_global_concurrency_limit_by_name(source_limit(src), limit)
            limits[source_limit(src)] = limit
    return limits


@task(name="partition", task_run_name="partition-{release_id}-{partition_id}", **retry_options())
def build_partition(region: str, release_id: str, partition_id: str, partition_key: int, scheme: dict,
                    sources: list[str],
                    start: str | None, end: str | None, sensors: list[str] | None, cell_m: int,
                    store: str, run_dir: str, scheduler: str | None) -> PartitionResult:
    """Search, co-locate and tile one partition of ``region`` into its own batch of the release."""
    import geopandas as gpd
    import pandas as pd
    from prefect.concurrency.sync import concurrency

    from spectralearth_data import engine
    from spectralearth_data.catalog import load_region
    from spectralearth_data.colocate import colocate_partitions, write_plan
    from spectralearth_data.grid.partitions import PartitionScheme, partition_of
    from spectralearth_data.sources import search

    t0 = time.perf_counter()
    sch = PartitionScheme(**scheme)
    part = partition_of(partition_key, sch)
    reg = load_region(region)
    # the partition's part of the region, padded by a cell: a scene reaching a border cell is found
    pad_deg = 2.0 * cell_m / 100_000
    area = reg.shape.intersection(part.geometry.buffer(pad_deg))
    sub = reg.model_copy(update={"name": f"{reg.name}:{partition_id}", "geometry": area.__geo_interface__})
    frames = []
    demo_dir = str(get_settings().demo_dir)
    for src in sources:
        with concurrency(source_limit(src), occupy=1, strict=False):
            frames.append(search(src, sub, start=start, end=end, sensors=sensors,
                                 demo_dir=demo_dir if src == "demo" else None))
    frames = [f for f in frames if len(f)]
    if not frames:
        return PartitionResult(region, partition_id, "empty", seconds=round(time.perf_counter() - t0, 2),
                               message="no scenes", bounds=part.bounds)
    scenes = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    plan = next((p for q, p in colocate_partitions(scenes, sch, cell_m=cell_m) if q.id == partition_id), None)
    if plan is None or plan.empty:
        return PartitionResult(region, partition_id, "empty", scenes=len(scenes),
                               seconds=round(time.perf_counter() - t0, 2), message="no co-located cell",
                               bounds=part.bounds)
    plan_path = Path(run_dir) / f"plan-{partition_id}.parquet"
    write_plan(plan, plan_path)
    summary = engine.tile(plan_path, Path(store), scheduler=scheduler, progress=False, allow_empty=True,
                          partition=partition_id)
    return PartitionResult(region, partition_id, "done", scenes=len(scenes), cells=int(plan["cell_id"].nunique()),
                           patches=int(getattr(summary, "patches_written", 0) or 0),
                           seconds=round(time.perf_counter() - t0, 2), bounds=part.bounds)


@task(name="publish-version", task_run_name="publish-{release_id}")
def publish_version(store: str, release_id: str) -> dict:
    """Validate the release, publish its next version and announce it."""
    from prefect.events import emit_event

    from spectralearth_data.release.publish import publish

    manifest = publish(store, release_id)
    version = _latest_version(store)
    emit_event(
        event=RELEASE_EVENT,
        resource={"prefect.resource.id": f"spectralearth.release.{release_id}", "prefect.resource.name": release_id},
        payload={"release_id": release_id, "location": str(Path(store).resolve()), "manifest": str(manifest),
                 "version": version},
    )
    return {"manifest": str(manifest), "version": version}


def _latest_version(store: str) -> str | None:
    from spectralearth_data.release.api import open_release

    try:
        return open_release(store).version
    except Exception:  # noqa: BLE001 - a release without versions: report none
        return None


def _progress(region: str, rows: list[PartitionResult], png: Path) -> None:
    """The partitions table and map artifacts (a new version of each as partitions finish)."""
    publish_table([{k: v for k, v in asdict(r).items() if k != "bounds"} for r in rows],
                  f"partitions-{region}", f"Partitions of {region}: status, patches, seconds")
    draw_partition_map(rows, png)
    publish_image(png, f"partition-map-{region}", f"Partitions of {region} by status")


def draw_partition_map(rows: list[PartitionResult], png: Path) -> Path:
    """A lon/lat map of the partitions coloured by status, with a graticule (nothing fetched)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    colours = {"done": "#2a9d8f", "empty": "#bbbbbb", "failed": "#e63946", "pending": "#f4a261"}
    fig, ax = plt.subplots(figsize=(6, 4), dpi=80)
    for r in rows:
        x0, y0, x1, y1 = r.bounds
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=colours.get(r.status, "#999"),
                               edgecolor="k", linewidth=0.5, alpha=0.8))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, f"{r.partition}\n{r.patches}", ha="center", va="center", fontsize=6)
    if rows:
        xs = [b for r in rows for b in (r.bounds[0], r.bounds[2])]
        ys = [b for r in rows for b in (r.bounds[1], r.bounds[3])]
        ax.set_xlim(min(xs) - 1, max(xs) + 1)
        ax.set_ylim(min(ys) - 1, max(ys) + 1)
    ax.grid(True, linewidth=0.3)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    handles = [Rectangle((0, 0), 1, 1, facecolor=c) for c in colours.values()]
    ax.legend(handles, list(colours), fontsize=6, loc="upper right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


@flow(name="rebuild", flow_run_name=rebuild_run_name, log_prints=True)
def rebuild(
    regions: list[str],
    source: str | list[str] = "demo",
    cell_m: int = 3840,
    sensors: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    partition_zones: int = 1,
    partition_band_deg: float = 8.0,
    concurrent_partitions: int = 2,
) -> list[RebuildResult]:
    """Rebuild each region's release (``<region>-<cell_m>m``) partition by partition into its next
    version; every parameter is checked before any work.

    Args:
        regions: catalog region names or GeoJSON paths.
        source: a source of catalogs/sources.yaml, ``local:PATH``, or a list of them.
        cell_m: grid cell size in metres.
        sensors, start, end: as for ``curate``.
        partition_zones, partition_band_deg: the partition scheme (adjacent UTM zones x degrees of
            latitude per partition).
        concurrent_partitions: partitions searched, co-located and tiled at once.
    """
    from spectralearth_data.errors import GridError
    from spectralearth_data.grid.partitions import PartitionScheme

    from flows.params import ParameterError

    try:
        scheme = PartitionScheme(zones=partition_zones, band_deg=partition_band_deg)
    except GridError as e:
        raise ParameterError(f"partition_zones/partition_band_deg: {e}") from None
    if concurrent_partitions < 1:
        raise ParameterError(f"concurrent_partitions={concurrent_partitions}: expected at least 1")
    reqs = {r: check_curate(r, start, end, sensors, source, default_release_id(r, cell_m), cell_m) for r in regions}
    settings = get_settings()
    logger = get_run_logger()
    sources = list(next(iter(reqs.values())).sources) if reqs else []
    ensure_source_limits(sources)
    if "demo" in sources:
        from flows.curate import make_demo_scenes

        make_demo_scenes(str(settings.demo_dir))

    results = []
    with _cluster(settings) as scheduler:
        for region, req in reqs.items():
            results.append(_rebuild_region(region, req, scheme, cell_m, sources, settings, scheduler,
                                           concurrent_partitions, logger))
    return results


def _rebuild_region(region, req, scheme, cell_m, sources, settings, scheduler, concurrent, logger) -> RebuildResult:
    from spectralearth_data.catalog import load_region
    from spectralearth_data.grid.partitions import region_partitions

    store = settings.releases_dir / f"{req.release_id}.zarr"
    run_dir = settings.runs_dir / req.release_id / "rebuild"
    run_dir.mkdir(parents=True, exist_ok=True)
    parts = region_partitions(load_region(req.region).shape, cell_m, scheme)
    logger.info("%s: %d partitions into %s", region, len(parts), store)
    rows = {p.id: PartitionResult(region, p.id, "pending", bounds=p.bounds) for p, _ in parts}
    png = run_dir / "partitions.png"
    _progress(region, list(rows.values()), png)
    sch = {"zones": scheme.zones, "band_deg": scheme.band_deg}
    runner = ThreadPoolTaskRunner(max_workers=concurrent)
    with runner:
        futures = {p.id: runner.submit(build_partition, parameters=dict(
            region=req.region, release_id=req.release_id, partition_id=p.id, partition_key=p.key, scheme=sch, sources=sources,
            start=req.start, end=req.end, sensors=list(req.sensors) if req.sensors else None, cell_m=cell_m,
            store=str(store), run_dir=str(run_dir), scheduler=scheduler)) for p, _ in parts}
        for pid, fut in futures.items():
            state = fut.wait() or fut.state
            if fut.state.is_completed():
                rows[pid] = fut.result()
            else:
                rows[pid] = PartitionResult(region, pid, "failed", message=_state_message(fut.state),
                                            bounds=rows[pid].bounds)
            del state
            _progress(region, list(rows.values()), png)
    written = sum(r.patches for r in rows.values())
    failed = [r for r in rows.values() if r.status == "failed"]
    version = None
    if written:
        version = publish_version(str(store), req.release_id)["version"]
        logger.info("%s: published %s (%d new patches)", req.release_id, version, written)
    else:
        logger.info("%s: nothing new in %d partitions; no version published, no release event",
                    req.release_id, len(rows))
    for r in failed:
        logger.error("partition %s failed: %s", r.partition, r.message)
    return RebuildResult(region, req.release_id, str(store), version, written, list(rows.values()))


def _state_message(state: Any) -> str:
    msg = getattr(state, "message", "") or str(getattr(state, "type", "failed"))
    return msg.splitlines()[0][:300]


class _cluster:
    """The Dask scheduler every partition's tiling uses: the configured address, or a LocalCluster
    for the run (closed at the end)."""

    def __init__(self, settings) -> None:
        self.settings, self.cluster = settings, None

    def __enter__(self) -> str:
        if self.settings.dask_address:
            return self.settings.dask_address
        from spectralearth_data.engine.cluster import local_cluster

        self.cluster = local_cluster(self.settings.dask_workers, self.settings.dask_threads_per_worker,
                                     processes=True, dashboard_address=":0")
        return self.cluster.scheduler_address

    def __exit__(self, *exc) -> None:
        if self.cluster is not None:
            self.cluster.close()
