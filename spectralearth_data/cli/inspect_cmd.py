"""``spectralearth inspect-item``: what the pipeline makes of the items in one file.

Thin: parsing and resolving are :func:`spectralearth_data.sources.inspect.inspect_items`, which
runs the same source parsers and reader look-ups as ``search`` and ``tile``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def _num(value: Any) -> str:
    if isinstance(value, dict):
        distinct = sorted({repr(v) for v in value.values()})
        return f"per band ({len(distinct)} values: {', '.join(distinct[:3])}{', ...' if len(distinct) > 3 else ''})"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _print_report(r) -> None:
    head = f"{r.product} {r.scene_id}"
    typer.echo(head)
    typer.echo(f"  source     {r.source}" + (f" (collection {r.collection})" if r.collection else ""))
    typer.echo(f"  datetime   {r.datetime or 'unknown'}")
    typer.echo(f"  epsg       {r.epsg if r.epsg is not None else 'unknown'}")
    offset = (f"- {_num(-r.offset)}" if isinstance(r.offset, (int, float)) and r.offset < 0
              else f"+ {_num(r.offset)}")
    typer.echo(f"  encoding   reflectance = DN x {_num(r.scale)} {offset}, nodata {_num(r.nodata)}  [{r.encoding}]")
    width = max((len(k) for k in r.roles), default=4)
    key_width = max((len(v["asset"]) for v in r.roles.values() if v), default=7)
    for role, res in r.roles.items():
        if res is None:
            typer.echo(f"  {role:<{width}}  missing")
        else:
            typer.echo(f"  {role:<{width}}  {res['asset']:<{key_width}}  {res['href']}")


def inspect_item(
    path: Annotated[Path, typer.Argument(help="A STAC item, ItemCollection or search page; UMM-G records or a CMR "
                                         "umm_json response; or a local product file or folder (EnMAP/DESIS "
                                         "order, METADATA.XML, EMIT L2A NetCDF, STAC catalog, stac-geoparquet).")],
    source: Annotated[str | None, typer.Option("--source", help="Parse PATH as this source of catalogs/sources.yaml "
                                               "would. Default: local for a non-JSON PATH; for JSON, earthdata-cmr "
                                               "for UMM-G records, else the STAC API the item's links, hrefs or "
                                               "collection point to (else local).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per scene row.")] = False,
) -> None:
    """Show how each item of PATH resolves: product, scene id, datetime, EPSG, the asset of every
    catalog role (data, QA layers) or `missing`, and the scene's scale/offset/nodata.

    Nothing is downloaded. Exit code 0 when every role of every item resolves; otherwise one `error: ...` line per problem on stderr and exit code 2.
    """
    from ..sources.inspect import inspect_items

    result = inspect_items(path, source)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in result.reports], indent=2))
    else:
        for i, r in enumerate(result.reports):
            if i:
                typer.echo("")
            _print_report(r)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    problems = result.problems
    for p in problems:
        typer.echo(f"error: {p}", err=True)
    if problems:
        raise typer.Exit(2)
