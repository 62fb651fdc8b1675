"""``spectralearth search`` and ``spectralearth colocate``: thin commands over
:mod:`spectralearth_data.sources` and :mod:`spectralearth_data.colocate`."""

from __future__ import annotations

from pathlib import Path

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
    source: str = typer.Option(..., "--source", help="Source name from catalogs/sources.yaml, or local:PATH "
                               "(STAC ItemCollection/catalog JSON, stac-geoparquet, or a folder of EnMAP/DESIS orders)."),
    region: str = typer.Option(..., "--region", help="Region name from catalogs/regions or a GeoJSON file."),
    start: str = typer.Option(None, "--start", help="First day (YYYY-MM-DD, inclusive)."),
    end: str = typer.Option(None, "--end", help="Last day (YYYY-MM-DD, inclusive)."),
    sensors: list[str] = typer.Option(None, "--sensors", help="Products to search (repeat or comma-separate); default all the source serves."),
    max_cloud: float = typer.Option(None, "--max-cloud", help="Maximum cloud cover in percent."),
    demo_dir: Path = typer.Option(None, "--demo-dir", envvar="SPECTRALEARTH_DEMO_DIR",
                                  help="Folder with the demo's catalog.json (default ./out/demo/scenes)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output scene table (GeoParquet)."),
) -> None:
    """Search a source for scenes over a region and period; write the scene table."""
    from ..sources import search, write_scenes

    scenes = search(source, region, start=start, end=end, sensors=_split(sensors), max_cloud=max_cloud,
                    demo_dir=demo_dir)
    write_scenes(scenes, out)
    counts = scenes.groupby("sensor").size().to_dict() if len(scenes) else {}
    note = " (synthesized demo scenes)" if source == "demo" else ""
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none found"
    typer.echo(f"{len(scenes)} scenes from {source}{note} -> {out} [{detail}]")


def colocate_cmd(
    scenes_path: Path = typer.Argument(..., help="Scene table written by `spectralearth search`."),
    out: Path = typer.Option(..., "-o", "--out", help="Output plan (GeoParquet); the summary JSON and coverage "
                             "map PNG are written next to it."),
    cell_m: int = typer.Option(3840, "--cell-m", help="Grid cell size in metres."),
    window_days: list[str] = typer.Option(None, "--window-days", help="Per-product window, PRODUCT=DAYS (e.g. s2=30,s1=15); "
                                          "defaults from catalogs/sensors time_window_days."),
    anchor: list[str] = typer.Option(None, "--anchor", help="Anchor product(s); default every HSI product (e.g. --anchor s2 "
                                     "builds an S2-anchored plan)."),
    min_fraction: float = typer.Option(1.0, "--min-fraction", help="Share of a cell a footprint must cover (1 = fully)."),
    region: str = typer.Option(None, "--region", help="Region to outline on the coverage map."),
) -> None:
    """Pair scenes on the global grid: write the plan, its summary JSON and a coverage map."""
    from ..catalog import load_region
    from ..colocate import colocate, coverage_map, summarize, write_plan
    from ..sources import read_scenes

    scenes = read_scenes(scenes_path)
    plan = colocate(scenes, cell_m=cell_m, window_days=parse_windows(window_days), anchors=_split(anchor),
                    min_fraction=min_fraction)
    write_plan(plan, out)
    summary = summarize(plan)
    summary_path = out.with_suffix(".summary.json")
    summary_path.write_text(summary.to_json() + "\n")
    png = coverage_map(plan, out.with_suffix(".coverage.png"), region=load_region(region) if region else None)
    typer.echo(summary.table())
    if plan.empty:
        have = ", ".join(sorted(scenes["sensor"].unique())) or "none"
        typer.echo(f"no co-located cells: no anchor scenes covering a whole cell (products present: {have}); "
                   "try --anchor s2 or a smaller --cell-m")
    typer.echo(f"plan -> {out}; summary -> {summary_path}; map -> {png}")


def register(app: typer.Typer) -> None:
    app.command("search")(search_cmd)
    app.command("colocate")(colocate_cmd)
