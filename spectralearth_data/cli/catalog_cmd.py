"""``spectralearth catalog``: what the sensor catalog holds, as a table or JSON.

Thin: the facts come from :mod:`spectralearth_data.catalog`; rich is imported inside the
functions so ``spectralearth --help`` stays fast. (``demo-scenes`` lives in ``demo_cmd``.)
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer


def product_summary(spec: Any) -> dict[str, Any]:
    """One row of ``spectralearth catalog --json``: the headline facts of a product."""
    return {
        "name": spec.name,
        "title": spec.title,
        "kind": spec.kind,
        "bands": len(spec.bands),
        "usable_bands": len(spec.usable_bands),
        "gsd_m": spec.gsd_m,
        "patch_px": spec.patch_px,
        "qa": spec.qa.asset if spec.qa else None,
        "licence": spec.licence.id,
        "redistributable": spec.licence.redistributable,
        "providers": [p.source for p in spec.providers],
        "time_window_days": spec.time_window_days,
    }


def band_rows(spec: Any) -> list[dict[str, Any]]:
    """The bands of one product as plain dicts (``--sensor NAME``)."""
    return [b.model_dump(exclude_none=True) for b in spec.bands]


def _print_products(rows: list[dict[str, Any]]) -> None:
    from .output import console
    from rich.table import Table

    table = Table(title="SpectralEarth sensor catalog (patch_px for the 3840 m cell)")
    for col in (
        "name",
        "kind",
        "bands",
        "usable",
        "gsd_m",
        "patch_px",
        "qa",
        "licence",
        "redistributable",
        "providers",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            str(r["bands"]),
            str(r["usable_bands"]),
            f"{r['gsd_m']:g}",
            str(r["patch_px"]),
            str(r["qa"] or "-"),
            r["licence"],
            "yes" if r["redistributable"] else "no",
            ", ".join(dict.fromkeys(r["providers"])),
        )
    console().print(table)


def _print_bands(spec: Any) -> None:
    from .output import console
    from rich.table import Table

    table = Table(
        title=f"{spec.name}: {spec.title} ({len(spec.bands)} bands, {len(spec.usable_bands)} usable)"
    )
    for col in (
        "#",
        "name",
        "asset/index",
        "wavelength_nm",
        "fwhm_nm",
        "dtype",
        "scale",
        "offset",
        "nodata",
        "usable",
    ):
        table.add_column(col)
    for i, b in enumerate(spec.bands):
        where = b.asset if b.asset is not None else f"{spec.data_asset}[{b.index}]"
        wl = f"{b.wavelength_nm:g}" if b.wavelength_nm is not None else (b.polarisation or "-")
        fw = f"{b.fwhm_nm:g}" if b.fwhm_nm is not None else "-"
        table.add_row(
            str(i),
            b.name,
            where,
            wl,
            fw,
            b.dtype,
            f"{b.scale:g}",
            f"{b.offset:g}",
            "-" if b.nodata is None else f"{b.nodata:g}",
            "yes" if b.usable else "no",
        )
    console().print(table)


def catalog(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    sensor: Annotated[str | None, typer.Option("--sensor", help="Show the bands of one product.")] = None,
) -> None:
    """List the products of the sensor catalog (or one product's bands with --sensor)."""
    from ..catalog import load_catalog, load_sensor

    if sensor is not None:
        spec = load_sensor(sensor)
        if as_json:
            typer.echo(
                json.dumps({**product_summary(spec), "band_list": band_rows(spec)}, indent=1)
            )
        else:
            _print_bands(spec)
        return
    rows = [product_summary(s) for s in load_catalog().values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    else:
        _print_products(rows)
