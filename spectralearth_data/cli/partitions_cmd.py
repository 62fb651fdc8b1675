"""``spectralearth partitions``: the partitions of the grid over a region, with their cell counts.

Thin: the partitions come from :mod:`spectralearth_data.grid.partitions`; rich is imported inside
the function so ``spectralearth --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer


def partitions_cmd(
    region: Annotated[str, typer.Argument(help="Region name from catalogs/regions or a GeoJSON file.")],
    cell_m: Annotated[int, typer.Option("--cell-m", help="Grid cell size in metres.")] = 3840,
    zones: Annotated[int, typer.Option("--zones", help="Adjacent UTM zones per partition (1..60).")] = 1,
    band_deg: Annotated[float, typer.Option("--band-deg", help="Latitude band of a partition, in degrees.")] = 8.0,
    min_fraction: Annotated[float, typer.Option("--min-fraction", help="Share of a cell the region must cover to "
                                                "count it (0 = every cell it touches).")] = 0.0,
    feature: Annotated[str | None, typer.Option("--feature", help="With a region file of several features: the "
                                                "feature (properties.name or id) to use.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the partitions of the grid (UTM zone groups x latitude bands) over a region.

    Every cell of the grid belongs to exactly one partition (its zone's group and the band of its
    centre's latitude); a partition is the unit a large build co-locates and tiles on its own.
    For each partition: its id, the region's cells it owns, and its lon/lat box.
    """
    from ..catalog import load_region
    from ..errors import GridError
    from ..grid import PartitionScheme, check_cell_m, region_partitions

    try:
        scheme = PartitionScheme(zones=zones, band_deg=band_deg)
        check_cell_m(cell_m)
    except GridError as e:
        raise GridError(f"--zones/--band-deg/--cell-m: {e}") from None
    reg = load_region(region, feature=feature)
    parts = region_partitions(reg.shape, cell_m, scheme, min_fraction)
    rows = [{"id": p.id, "cells": n, "bounds": [round(v, 6) for v in p.bounds]} for p, n in parts]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    from rich.table import Table

    from .output import console

    table = Table(title=f"Partitions of {reg.name} ({zones} zone(s) x {band_deg:g} deg, cells of {cell_m} m)",
                  caption=f"{len(rows)} partitions, {sum(r['cells'] for r in rows)} cells", caption_justify="left")
    for col in ("partition", "cells", "lon0", "lat0", "lon1", "lat1"):
        table.add_column(col, justify="left" if col == "partition" else "right")
    for r in rows:
        table.add_row(r["id"], str(r["cells"]), *(f"{v:g}" for v in r["bounds"]))
    console().print(table)
