"""The ``rebuild`` flow: curate a list of regions into new dated releases (run on a schedule).

Each region becomes its own release ``<region>-<cell_m>m-<ISO week>``, so a weekly rebuild never
touches last week's store, and a rebuild that crashed mid-week resumes its own release when rerun.
Every published release emits ``spectralearth.release.published`` and so starts a training run.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger

from flows.curate import CurateResult, curate
from flows.params import check_curate, default_release_id, rebuild_run_name


def weekly_release_id(region: str, cell_m: int, now: datetime | None = None) -> str:
    """``<region>-<cell_m>m-<YYYY>w<WW>`` (ISO week of ``now``, UTC)."""
    year, week, _ = (now or datetime.now(UTC)).isocalendar()
    return f"{default_release_id(region, cell_m)}-{year}w{week:02d}"


@flow(name="rebuild", flow_run_name=rebuild_run_name, log_prints=True)
def rebuild(
    regions: list[str],
    source: str | list[str] = "demo",
    cell_m: int = 3840,
    sensors: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> list[CurateResult]:
    """Curate every region in ``regions`` (one release each); all parameters are checked first."""
    ids = {r: weekly_release_id(r, cell_m) for r in regions}
    for r in regions:  # fail before any work if one region's parameters are wrong
        check_curate(r, start, end, sensors, source, ids[r], cell_m)
    results = []
    for r in regions:
        results.append(curate(region=r, start=start, end=end, sensors=sensors, source=source,
                              release=ids[r], cell_m=cell_m))
    get_run_logger().info("rebuilt %s", ", ".join(x.release_id for x in results))
    return results
