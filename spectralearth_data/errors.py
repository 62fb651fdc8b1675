"""User-facing errors.

Every error a user can cause (bad input, a missing file, an unreachable source once the retry
budget is spent) is a :class:`SpectralEarthError`. The CLI prints it as one line, with no
traceback unless ``--debug`` is given. Bugs stay ordinary exceptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class SpectralEarthError(Exception):
    """An error the user can fix; its message says what and where."""


class CatalogError(SpectralEarthError):
    """A catalog file (sensor YAML, sources.yaml, region GeoJSON) is missing or malformed."""


class GridError(SpectralEarthError):
    """A cell id, cell size or geometry that the global grid cannot take."""


class PixelGridError(GridError):
    """A cell size ``cell_m`` that is not a positive whole number of ``gsd`` m pixels
    (:func:`spectralearth_data.grid.pixels_per_cell`); ``cell_m`` and ``gsd`` are attributes, so a
    caller can restate the error in its own terms (a sensor's GSD, a model's token size)."""

    def __init__(self, cell_m: float, gsd: float) -> None:
        self.cell_m, self.gsd = cell_m, gsd
        super().__init__(f"cell size {cell_m} m is not a whole multiple of the {gsd} m pixel size")

    def __reduce__(self):  # picklable (raised on Dask workers): rebuilt from cell_m and gsd
        return type(self), (self.cell_m, self.gsd)


class SourceError(SpectralEarthError):
    """A data source failed (after its retries) or answered something unusable."""


class InputDataError(SpectralEarthError):
    """A scene, raster or plan is unreadable or inconsistent with the catalog."""


class ReleaseError(SpectralEarthError):
    """A release store is missing, locked, read-only or inconsistent."""


def describe_validation(err: ValidationError, where: str, loc_prefix: str = "") -> str:
    """One line for a pydantic ``ValidationError``: ``<where>: <field path>: <message>``, naming
    the first error and counting the others (``(+2 more)``). ``loc_prefix`` goes before the field
    path (the item of a list being validated, e.g. ``sources.3.``)."""
    first = err.errors()[0]
    loc = loc_prefix + ".".join(str(p) for p in first["loc"])
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {loc or '(top level)'}: {first['msg']}{more}"
