"""``tile``: a plan -> patches in the release store, as a Dask graph of one task per shard.

Steps, in order: read and check the plan (and keep the cells of ``partition``) -> open the release
(a folder or an object-store URL, :mod:`..release.storage`), create its root group once -> name
the batch (``<partition>-<plan digest>``), take its writer lease and write or check its record
(the tile config) -> read the committed index of every batch (resume) -> group the remaining plan
rows into tasks (one scene of one sensor, up to ``patches_per_shard`` cells of one CRS) and give
each a free shard slot of the batch -> create/grow the batch's arrays -> run the tasks on a Dask
scheduler (a LocalCluster by default, any ``distributed`` scheduler address, or
``"synchronous"`` inline). Nothing shared is rewritten at the end (layout 2: no locations table,
no root attribute updates), so writers of other partitions run at the same time.
Memory is bounded by a task (one shard plus one strip of source pixels), not by the region.
"""

from __future__ import annotations

import itertools
import os
import uuid
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import sensor_spec
from ..errors import InputDataError, SpectralEarthError
from ..grid import parse_cell_id
from ..progress import progress_bar
from ..release import reader
from ..release import store as st
from ..release.layout import batch_id, lease_key
from ..release.storage import open_location
from ..schema import PLAN_COLUMNS
from .cluster import release_free_memory
from .config import TileConfig
from .readers import SceneRef, group_dtype, stored_bands
from .tasks import CellJob, Task, TaskResult, run_task

#: Tasks kept in flight per Dask worker (enough to hide scheduling latency, few enough that
#: memory does not grow with the plan).
IN_FLIGHT_PER_WORKER = 3

#: Plan columns tiling cannot do without.
REQUIRED = ("cell_id", "cell_m", "sensor", "scene_id", "datetime", "anchor_scene_id", "source", "assets", "item", "geometry")


class TileInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during the tasks of a ``tile`` run: ``done`` of ``total`` tasks had finished.

    Still a :class:`KeyboardInterrupt` for callers that do not know it. What was committed stays
    in the store; the same run again resumes (only the remaining patches are written)."""

    def __init__(self, done: int, total: int):
        super().__init__(f"interrupted after {done} of {total} tasks")
        self.done, self.total = done, total


@dataclass
class TileSummary:
    """What a ``tile`` run did."""

    patches_written: int = 0
    patches_dropped: int = 0
    patches_skipped: int = 0  # already in the index (resume)
    cells_skipped: int = 0  # cells whose every patch was already in the index
    tasks: int = 0
    failed: list[str] = field(default_factory=list)
    suspect: list[str] = field(default_factory=list)  # scenes written whose values look wrong (tasks.TaskResult.suspect)
    drop_reasons: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    seconds: float = 0.0
    workers: int = 1
    batch: str = ""  # the batch this run wrote into

    @property
    def patches_per_second(self) -> float:
        return self.patches_written / self.seconds if self.seconds else 0.0


def _plan_frame(plan) -> object:
    """A plan GeoDataFrame from a GeoDataFrame or a GeoParquet path (read by the one plan reader,
    :func:`spectralearth_data.colocate.read_plan`), with the needed columns, in EPSG:4326."""
    if isinstance(plan, (str, Path)):
        from ..colocate import read_plan

        plan = read_plan(plan, REQUIRED)
    missing = [c for c in REQUIRED if c not in plan.columns]
    if missing:
        raise InputDataError(f"plan: missing columns {missing} (a plan has {list(PLAN_COLUMNS)})")
    if plan.crs is not None and plan.crs.to_epsg() != 4326:
        plan = plan.to_crs("EPSG:4326")
    return plan


def _dedupe(plan):
    """One row per patch id (a scene may be chosen for several anchors); best rank first."""
    sort = [c for c in ("rank", "dt_days") if c in plan.columns]
    if sort:
        plan = plan.assign(_abs=plan["dt_days"].abs() if "dt_days" in plan else 0).sort_values([c if c != "dt_days" else "_abs" for c in sort], kind="stable")
    keys = plan["sensor"].astype(str) + "/" + plan["cell_id"].astype(str) + "/" + plan["scene_id"].astype(str)
    plan = plan.assign(_pid=keys)
    return plan.drop_duplicates("_pid", keep="first")


def _references(plan) -> dict[tuple[str, str], SceneRef]:
    """(cell_id, HSI scene id) -> the S2 scene the plan pairs with it (best rank)."""
    s2 = plan[plan["sensor"] == "s2"]
    out: dict[tuple[str, str], SceneRef] = {}
    for _, r in s2.iterrows():
        key = (r["cell_id"], r["anchor_scene_id"])
        if key not in out:
            out[key] = SceneRef.from_plan_row(r)
    return out


def build_tasks(plan, cell_m: int, done: set[str], committed: dict[str, set[int]], cfg: TileConfig,
                batch: str = "all") -> tuple[list[Task], int]:
    """Tasks for the plan rows not yet attempted, each with a free shard slot of its sensor.

    The patches of a sensor are sorted by (scene, CRS, grid row north first, column) and cut into runs of
    ``patches_per_shard``: a shard is filled before the next one starts, so ``<sensor>/data``
    stays dense, and each task still reads its scenes in a few strip warps.
    """
    plan = _dedupe(plan)
    skip = plan["_pid"].isin(done)
    todo = plan[~skip]
    refs = _references(plan)
    per_sensor: list[list[Task]] = []
    k = cfg.patches_per_shard
    parsed = [parse_cell_id(c, cell_m) for c in todo["cell_id"]]
    # north row first, west to east along a row: the order strips() joins cells in, so a task's
    # cells form long strips of neighbours (a cell_id sort is column-first: strips of one cell)
    todo = todo.assign(_epsg=[c.epsg for c in parsed], _nrow=[-c.row for c in parsed], _col=[c.col for c in parsed])
    for sensor, grp in todo.groupby("sensor", sort=True):
        hsi = sensor_spec(sensor).kind == "hsi"
        grp = grp.sort_values(["scene_id", "_epsg", "_nrow", "_col"], kind="stable")
        scenes: dict[str, SceneRef] = {}
        jobs = []
        for _, r in grp.iterrows():
            sid = str(r["scene_id"])
            if sid not in scenes:
                scenes[sid] = SceneRef.from_plan_row(r)
            jobs.append(CellJob(
                scene=scenes[sid], cell_id=r["cell_id"], anchor_scene_id=str(r["anchor_scene_id"]),
                datetime=r["datetime"], geometry_wkb=r.geometry.wkb,
                reference=refs.get((r["cell_id"], sid)) if hsi else None,
            ))
        free = _free_slots(committed.get(sensor, set()))
        per_sensor.append([Task(sensor, next(free), cell_m, tuple(jobs[i : i + k]), batch) for i in range(0, len(jobs), k)])
    # run order: the sensors take turns, so the workers hold tasks of different products at once
    # (an HSI task needs several times the memory of a multispectral one)
    tasks = [t for turn in itertools.zip_longest(*per_sensor) for t in turn if t is not None]
    return tasks, int(skip.sum())


def _free_slots(used: set[int]):
    i = 0
    while True:
        if i not in used:
            yield i
        i += 1


def _prepare_groups(root, tasks: list[Task], cfg: TileConfig, cell_m: int, batch: str) -> dict:
    specs = {}
    for sensor in sorted({t.sensor for t in tasks}):
        spec = sensor_spec(sensor)
        bands = stored_bands(spec)
        layout = st.GroupLayout(
            sensor, len(bands), spec.patch_px_for(cell_m), cfg.patches_per_shard, group_dtype(bands, sensor),
            bands[0].nodata if bands[0].nodata is not None else 0,
        )
        st.ensure_group(root, spec, bands, layout, batch)
        st.reserve(root, sensor, batch, max(t.shard for t in tasks if t.sensor == sensor) + 1)
        specs[sensor] = spec
    return specs


def tile(
    plan,
    store: Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    cells: list[str] | None = None,
    config: TileConfig | None = None,
    allow_empty: bool = False,
    partition: str | None = None,
    partition_cells: set[str] | None = None,
) -> TileSummary:
    """Cut the scenes of ``plan`` onto their cells and write them into ``store``.

    ``scheduler``: None = a LocalCluster of ``workers`` single-threaded processes; a
    ``tcp://host:port`` address = an existing ``distributed`` cluster; ``"synchronous"`` or
    ``"threads"`` = Dask's local schedulers (no cluster). ``cells`` restricts the run to those cell
    ids (each must be in the plan). ``partition`` names this writer's part of the grid and
    ``partition_cells`` (if given; else the plan's ``partition`` column when it has one) its cell ids: only the plan's rows of those cells are tiled,
    into the batch ``<partition>-<plan digest>``; writers of different partitions may run at the
    same time into one release (``store``: a folder or an ``s3://``/``gs://``/``az://`` URL).
    Already-indexed patches (of any batch) are skipped (resume). Scenes that fail
    (unreadable, no CRS, all nodata) do not stop the others; after the run an
    :class:`InputDataError` lists them, and the store, holding every completed shard, still
    validates. An empty plan is an :class:`InputDataError` before the store is touched, and so is
    a run that leaves the store without a patch because the QA thresholds dropped them all
    (unless ``allow_empty``: the curate flow tiles chunk by chunk and judges the whole release).
    """
    t0 = time.perf_counter()
    cfg = config or TileConfig()
    label = f"plan {plan}" if isinstance(plan, (str, Path)) else "plan"
    plan = _plan_frame(plan)
    if plan.empty:  # before the store is touched: an empty plan must not become an empty release
        raise InputDataError(f"{label}: no rows, nothing to tile (co-location found no cells); "
                             "run `spectralearth colocate` again, e.g. with a smaller --cell-m")
    if cells:
        _check_cells(plan, cells, label)
        plan = plan[plan["cell_id"].isin(set(cells))]
    if partition_cells is None and partition and "partition" in plan.columns:
        partition_cells = set(plan.loc[plan["partition"].astype(str) == partition, "cell_id"])
    if partition_cells is not None:
        plan = plan[plan["cell_id"].isin(set(partition_cells))]
        if plan.empty:
            raise InputDataError(f"{label}: no rows in the cells of partition {partition or 'all'}; "
                                 "check the partition's cell ids against the plan")
    cell_ms = sorted({int(c) for c in plan["cell_m"]})
    if len(cell_ms) > 1:
        raise InputDataError(f"plan: mixes cell sizes {cell_ms}; a release has one cell_m")
    cell_m = cell_ms[0]
    loc = open_location(store)
    try:
        batch = batch_id(partition, st.plan_digest(_dedupe(plan)["_pid"], cell_m))
    except ValueError as e:
        raise InputDataError(str(e)) from None
    summary = TileSummary()
    summary.batch = batch
    synthesized = "source" in plan.columns and bool((plan["source"].astype(str) == "demo").any())
    root = st.open_root(loc, cell_m, cfg.release_id, synthesized=synthesized)
    from ..release.lease import batch_lease

    cfg_dict = _config_record(cfg)
    with batch_lease(loc, batch, {"partition": partition or "all", "config": cfg_dict,
                                  "config_id": cfg.config_id()}, key=lease_key(batch)):
        st.ensure_batch_record(loc, batch, partition, st.plan_digest(_dedupe(plan)["_pid"], cell_m), cfg_dict,
                               cfg.config_id())
        st.clean_temporaries(loc)
        done, committed = reader.committed(loc, batch)
        tasks, skipped = build_tasks(plan, cell_m, done, committed, cfg, batch)
        summary.patches_skipped = skipped
        summary.cells_skipped = len(set(plan["cell_id"]) - {c.cell_id for t in tasks for c in t.cells})
        summary.tasks = len(tasks)
        if tasks:
            _prepare_groups(root, tasks, cfg, cell_m, batch)
        results, failures = _execute(tasks, loc.url, cfg, scheduler, workers, progress, summary)
        for r in results:
            summary.patches_written += r.written
            summary.patches_dropped += r.dropped
            summary.bytes_written += r.bytes_written
            for k, v in r.drop_reasons.items():
                summary.drop_reasons[k] = summary.drop_reasons.get(k, 0) + v
        summary.failed = failures + [f for r in results for f in r.failures]
        summary.suspect = [w for r in results for w in r.suspect]
        failures = summary.failed
        for sensor in sorted({t.sensor for t in tasks}):
            st.consolidate_batch(root, sensor, batch)
    summary.seconds = time.perf_counter() - t0
    if failures:
        err = InputDataError(f"{len(failures)} scene(s) failed; the rest were written: " + "; ".join(failures[:5]))
        err.summary = summary  # type: ignore[attr-defined]
        raise err
    if not allow_empty and not summary.patches_written and not len(reader.read_index_columns(loc, ["row"])):
        err = InputDataError(_all_dropped(summary, cfg, loc.url))
        err.summary = summary  # type: ignore[attr-defined]
        raise err
    return summary


def _config_record(cfg: TileConfig) -> dict:
    """The settings that decide a batch's bytes (the release id is the release's, not the batch's)."""
    from dataclasses import asdict

    d = asdict(cfg)
    d.pop("release_id", None)
    return d


def _check_cells(plan, cells: list[str], label: str) -> None:
    """Every cell asked for must be in the plan: a cell id of another plan (or a typo) is named as
    such, instead of surfacing later as some other mismatch (cell size, empty run)."""
    have = set(plan["cell_id"])
    missing = sorted(set(cells) - have)
    if missing:
        sizes = sorted({int(c) for c in plan["cell_m"]})
        shown = ", ".join(missing[:3]) + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else "")
        raise InputDataError(
            f"cell {shown}: not in the {label} ({len(have)} cells of {'/'.join(map(str, sizes))} m, "
            f"e.g. {min(have)}); give cell ids from that plan")


def _all_dropped(summary: TileSummary, cfg: TileConfig, store) -> str:
    """The message for a run that leaves its store without a patch: the QA thresholds dropped them
    all (in this run, or in an earlier one: dropped patches count as attempted and are not retried)."""
    limits = (f"min_valid_fraction={cfg.min_valid_fraction:g}, max_cloud_fraction={cfg.max_cloud_fraction:g}")
    if summary.patches_dropped:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(summary.drop_reasons.items()))
        return (f"{store}: no patches written, all {summary.patches_dropped} dropped by the QA thresholds "
                f"({reasons}; {limits}): lower --min-valid or raise --max-cloud")
    return (f"{store}: holds no patches: an earlier run dropped all {summary.patches_skipped} of this plan by its "
            "QA thresholds (a store does not retry dropped patches); tile into a new --store with a lower "
            "--min-valid or a higher --max-cloud")


def _execute(tasks, store, cfg, scheduler, workers, progress, summary) -> tuple[list[TaskResult], list[str]]:
    if not tasks:
        return [], []
    if scheduler in ("synchronous", "sync", "threads"):
        summary.workers = 1 if scheduler != "threads" else (workers or os.cpu_count() or 1)
        return _run_local(tasks, store, cfg, scheduler, workers, progress)
    from distributed import Client, as_completed

    from .cluster import local_cluster

    cluster = None
    interrupted = False
    if scheduler is None:
        n = workers or min(os.cpu_count() or 1, len(tasks))
        cluster = local_cluster(n)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    results: list[TaskResult] = []
    failures: list[str] = []  # one line per failed task
    inflight: set = set()  # submitted, result not yet taken
    try:
        summary.workers = len(client.scheduler_info().get("workers", {})) or 1
        # a bounded window of tasks in flight: the scheduler and this process hold O(workers)
        # tasks and results, not O(plan), whatever the size of the region
        window = max(4, IN_FLIGHT_PER_WORKER * summary.workers)
        todo = iter(tasks)

        def submit(t: Task):
            fut = client.submit(_guarded, t, str(store), cfg, key=f"tile-{t.batch}-{t.sensor}-{t.shard}-{os.getpid()}-{uuid.uuid4().hex[:8]}", pure=False)
            inflight.add(fut)
            return fut

        pending = as_completed([submit(t) for t in itertools.islice(todo, window)])
        with progress_bar(progress, len(tasks), "tiling") as advance:
            for fut in pending:
                ok, val = fut.result()
                (results if ok else failures).append(val)
                inflight.discard(fut)
                fut.release()
                advance()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.add(submit(nxt))
        return results, failures
    except KeyboardInterrupt:  # Ctrl-C: the committed tasks stay; the same run again resumes
        interrupted = True
        finished = sum(1 for f in inflight if f.status == "finished")  # done, result not yet taken
        raise TileInterrupted(len(results) + len(failures) + finished, len(tasks)) from None
    finally:
        if interrupted:
            _close_quietly(client, cluster)
        else:
            client.close()
            if cluster is not None:
                cluster.close()


#: Loggers (of this process and of the workers) that say nothing while a run shuts down after Ctrl-C.
LOGGERS_SILENCED_ON_INTERRUPT = ("distributed", "tornado", "asyncio")


def _silence_logs(names) -> None:
    import logging

    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL + 1)


def _close_quietly(client, cluster) -> None:
    """Shut the client and cluster down after Ctrl-C: no log records or tracebacks of the tasks
    cut short, and a second Ctrl-C does not interrupt the shutdown half-way."""
    import logging
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    loggers = [logging.getLogger(n) for n in LOGGERS_SILENCED_ON_INTERRUPT]
    levels = [lg.level for lg in loggers]
    _silence_logs(LOGGERS_SILENCED_ON_INTERRUPT)
    try:
        if cluster is not None:  # our own workers log the tasks the shutdown cancels (an existing
            try:                 # cluster's workers are left as they are)
                client.run(_silence_logs, LOGGERS_SILENCED_ON_INTERRUPT)
            except Exception:  # noqa: BLE001 - a worker already gone: nothing of it to silence
                pass
        for close in (client.close, getattr(cluster, "close", None)):
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - already interrupted; the rerun resumes
                    pass
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if main:
            signal.signal(signal.SIGINT, previous)


def _guarded(task: Task, store: str, cfg: TileConfig):
    """Run a task; a user-fixable failure of the whole task comes back as (False, message)."""
    try:
        return True, run_task(task, store, cfg)
    except SpectralEarthError as e:
        msg = " ".join(str(e).split())  # one line, whatever the library said
        return False, f"{task.sensor} shard {task.shard} ({', '.join(task.scene_ids[:3])}): {msg}"
    finally:
        release_free_memory()


def _run_local(tasks, store, cfg, scheduler, workers, progress):
    import dask
    from dask.callbacks import Callback

    delayed = [dask.delayed(_guarded, pure=False)(t, str(store), cfg) for t in tasks]
    with progress_bar(progress, len(tasks), "tiling") as advance:

        ticks = [0]  # tasks finished, for TileInterrupted

        class _Tick(Callback):
            def _posttask(self, key, result, dsk, state, id):
                if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool):
                    ticks[0] += 1
                    advance()

        kw = {"num_workers": workers} if scheduler == "threads" and workers else {}
        try:
            with _Tick():
                out = dask.compute(*delayed, scheduler="sync" if scheduler in ("synchronous", "sync") else "threads", **kw)
        except KeyboardInterrupt:
            raise TileInterrupted(ticks[0], len(tasks)) from None
    results = [v for ok, v in out if ok]
    failures = [v for ok, v in out if not ok]
    return results, failures
