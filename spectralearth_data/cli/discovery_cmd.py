"""``spectralearth search`` and ``spectralearth colocate``: thin commands over
:mod:`spectralearth_data.sources` and :mod:`spectralearth_data.colocate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _split(values: list[str] | None) -> list[str] | None:
    """Accept both ``--sensors s2 --sensors s1`` and ``--sensors s2,s1``."""
    if not values:
        return None
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def parse_windows(values: list[str] | None) -> dict[str, float] | None:
    """``["s2=30", "s1=15"]`` or ``["s2=30,s1=15"]`` -> ``{"s2": 30.0, "s1": 15.0}``."""
    from ..errors import InputDataError

    items = _split(values)
    if not items:
        return None
    out: dict[str, float] = {}
    for item in items:
        name, sep, days = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(days)
        except ValueError:
            raise InputDataError(f"--window-days {item!r}: expected PRODUCT=DAYS, e.g. s2=30") from None
    return out


def search_cmd(
    source: Annotated[str, typer.Option("--source", help="Source name from catalogs/sources.yaml, or local:PATH "
                                        "(STAC ItemCollection/catalog JSON, stac-geoparquet, or a folder of "
                                        "EnMAP/DESIS orders).")],
    region: Annotated[str, typer.Option("--region", help="Region name from catalogs/regions or a GeoJSON file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output scene table (GeoParquet).")],
    start: Annotated[str | None, typer.Option("--start", help="First day (YYYY-MM-DD, inclusive).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day (YYYY-MM-DD, inclusive).")] = None,
    sensors: Annotated[list[str] | None, typer.Option("--sensors", help="Products to search (repeat or "
                                                      "comma-separate); default all the source serves.")] = None,
    max_cloud: Annotated[float | None, typer.Option("--max-cloud", help="Maximum cloud cover in percent.")] = None,
    demo_dir: Annotated[Path | None, typer.Option("--demo-dir", envvar="SPECTRALEARTH_DEMO_DIR",
                                                  help="Folder with the demo's catalog.json "
                                                  "(default ./out/demo/scenes).")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Override the API root of a STAC or CMR source "
                                            "(a mirror, a local server).")] = None,
    feature: Annotated[str | None, typer.Option("--feature", help="With a region file of several features: search "
                                                "only the one whose `name` property is this (default: their "
                                                "union).")] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries on HTTP 429/5xx, timeouts and dropped "
                                         "connections (exponential backoff with jitter, honouring Retry-After); a "
                                         "host name that does not resolve or a refused connection is not retried.")] = 5,
) -> None:
    """Search a source for scenes over a region and period; write the scene table.

    Every source gives the same table: scene_id, sensor, datetime, footprint, cloud_cover, unsigned
    asset hrefs, source. Cloud cover is filtered on the server where the API supports it and always
    again on the client. Credentials are not needed to search and never written. A region file of
    several features searches their union (or, with --feature, one of them). A search that finds
    nothing writes no table and exits 2, saying whether the region misses the catalogue's coverage
    (coordinates in lat, lon order, say) or the period does.
    """
    from ..catalog import load_region
    from ..errors import SourceError
    from ..sources import RetryPolicy, explain_no_scenes, search, write_scenes

    reg = load_region(region, feature=feature)
    scenes = search(source, reg, start=start, end=end, sensors=_split(sensors), max_cloud=max_cloud,
                    demo_dir=demo_dir, url=url, retry=RetryPolicy(attempts=retries))
    if scenes.empty:  # an empty table would only fail later, in colocate, without saying why
        raise SourceError(explain_no_scenes(source, reg, start, end, _split(sensors), max_cloud,
                                            demo_dir=demo_dir) + "; no scene table written")
    write_scenes(scenes, out)
    counts = scenes.groupby("sensor").size().to_dict() if len(scenes) else {}
    note = " (synthesized demo scenes)" if source == "demo" else ""
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none found"
    typer.echo(f"{len(scenes)} scenes from {source}{note} -> {out} [{detail}]")


def colocate_cmd(
    scenes_path: Annotated[Path, typer.Argument(help="Scene table written by `spectralearth search`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output plan (GeoParquet); the summary JSON and coverage "
                                      "map PNG are written next to it.")],
    cell_m: Annotated[int, typer.Option("--cell-m", help="Grid cell size in metres.")] = 3840,
    window_days: Annotated[list[str] | None, typer.Option(
        "--window-days", help="Per-product window, +/- PRODUCT=DAYS around the anchor (e.g. s2=20,s1=10); default: "
        "time_window_days in catalogs/sensors (30 d optical and thermal, 15 d SAR, 1 d between HSI products).")] = None,
    anchor: Annotated[list[str] | None, typer.Option("--anchor", help="Anchor product(s); default every HSI product "
                                                     "(e.g. --anchor s2 builds an S2-anchored plan).")] = None,
    min_fraction: Annotated[float, typer.Option("--min-fraction", help="Share of a cell a footprint must cover "
                                                "(1 = fully).")] = 1.0,
    region: Annotated[str | None, typer.Option("--region", help="Region to outline on the coverage map.")] = None,
) -> None:
    """Pair scenes on the global grid: write the plan, its summary JSON and a coverage map.

    Each anchor scene claims the grid cells its footprint covers; for every cell and anchor
    acquisition, each other product gets its best scene inside the time window that covers the cell,
    ranked by cloud cover (unknown last), then |time offset|.
    """
    from ..catalog import load_region
    from ..colocate import colocate, coverage_map, explain_empty, summarize, time_windows, write_plan
    from ..errors import InputDataError
    from ..sources import read_scenes

    scenes = read_scenes(scenes_path)
    windows = parse_windows(window_days)
    plan = colocate(scenes, cell_m=cell_m, window_days=windows, anchors=_split(anchor), min_fraction=min_fraction)
    if plan.empty:  # an empty plan would only become an empty release further down
        why = explain_empty(scenes, cell_m=cell_m, anchors=_split(anchor), min_fraction=min_fraction)
        raise InputDataError(f"{scenes_path}: no co-located cells, no plan written: {why}")
    write_plan(plan, out)
    summary = summarize(plan, time_windows(sorted(scenes["sensor"].unique()), windows))
    summary_path = out.with_suffix(".summary.json")
    summary_path.write_text(summary.to_json() + "\n")
    png = coverage_map(plan, out.with_suffix(".coverage.png"), region=load_region(region) if region else None)
    typer.echo(summary.table())
    typer.echo(f"plan -> {out}; summary -> {summary_path}; map -> {png}")
