"""``spectralearth check-access``: is each source reachable, and are its reads authorised?

Thin: the checks are :func:`spectralearth_data.sources.access.check_access` (one search and one
asset header read per source, nothing retried).
"""

from __future__ import annotations

from typing import Annotated

import typer


def check_access_cmd(
    source: Annotated[list[str] | None, typer.Option(
        "--source", help="A source of catalogs/sources.yaml (repeatable); all of them when omitted.")] = None,
) -> None:
    """One line per source: reachable and authorised, or which credential is missing or refused,
    or that it cannot be reached. Exits 1 when any source is not usable."""
    from ..sources.access import check_access

    results = check_access(source)
    for r in results:
        typer.echo(r.line())
    if not all(r.ok for r in results):
        raise typer.Exit(1)
