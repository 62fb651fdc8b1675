"""User-facing errors.

Every error a user can cause (bad input, a missing file, an unreachable source once the retry
budget is spent) is a :class:`SpectralEarthError`. The CLI prints it as one line, with no
traceback unless ``--debug`` is given. Bugs stay ordinary exceptions.
"""

from __future__ import annotations


class SpectralEarthError(Exception):
    """An error the user can fix; its message says what and where."""


class CatalogError(SpectralEarthError):
    """A catalog file (sensor YAML, sources.yaml, region GeoJSON) is missing or malformed."""


class GridError(SpectralEarthError):
    """A cell id, cell size or geometry that the global grid cannot take."""


class SourceError(SpectralEarthError):
    """A data source failed (after its retries) or answered something unusable."""


class InputDataError(SpectralEarthError):
    """A scene, raster or plan is unreadable or inconsistent with the catalog."""


class ReleaseError(SpectralEarthError):
    """A release store is missing, locked, read-only or inconsistent."""
