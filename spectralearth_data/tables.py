"""Reading and writing the GeoParquet tables passed between stages (scene table, plan).

Writes go to a temporary file that is renamed into place, so a crash never leaves half a table;
reads check the column contract of :mod:`.schema` and turn any decoding failure into one clear
:class:`~.errors.InputDataError` naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd

from .atomic import atomic_path
from .errors import InputDataError


def write_table(table: gpd.GeoDataFrame, path: Path | str) -> Path:
    """Write ``table`` as GeoParquet at ``path`` (temp file, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return path


def read_table(path: Path | str, columns: Sequence[str], what: str, made_by: str) -> gpd.GeoDataFrame:
    """Read the GeoParquet ``what`` (e.g. "plan") at ``path`` and check it has ``columns``.

    ``made_by`` names the command that writes such a table, for the "not found" hint.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: {what} not found (write one with `{made_by}`)")
    try:
        table = gpd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - pyarrow/geopandas raise several types for a non-GeoParquet file
        raise InputDataError(f"{path}: not a GeoParquet {what} ({type(e).__name__}: {e})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputDataError(f"{path}: missing {what} columns {missing}")
    return table
