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
    """A data source failed (after its retries) or answered something unusable.

    ``retryable`` is False when retrying the whole task cannot help: the library already spent
    its own retry budget, or the failure is permanent (a name that does not resolve, a refused
    connection). None means the raiser did not say (callers treat it as transient).
    """

    def __init__(self, *args: object, retryable: bool | None = None) -> None:
        super().__init__(*args)
        self.retryable = retryable


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


def shorten(text: object, limit: int = 300) -> str:
    """``text`` on one line (whitespace collapsed), at most ``limit`` characters: a longer text is
    cut at the last word boundary before the limit and ends in ``...``, never mid-word."""
    line = " ".join(str(text).split())
    if len(line) <= limit:
        return line
    cut = line[: max(limit - 3, 1)]
    space = cut.rfind(" ")
    if space > 0 and not line[len(cut)].isspace():
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "..."


def connection_failure(exc: BaseException | None) -> tuple[str, str] | None:
    """``(host, cause)`` when ``exc`` (or anything it was raised from, or a urllib3
    ``MaxRetryError.reason`` in that chain) is a failure that waiting does not fix: the host name
    does not resolve, or the host refuses the connection. None for anything else (timeouts, resets,
    HTTP status errors stay transient)."""
    try:
        from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError
    except ImportError:  # pragma: no cover - urllib3 comes with requests
        return None
    todo: list[BaseException] = [exc] if exc is not None else []
    seen: set[int] = set()
    while todo and len(seen) < 32:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NameResolutionError):
            reason = getattr(e, "_reason", None)
            detail = getattr(reason, "strerror", None) or str(reason or "") or "unknown host"
            return getattr(e, "_host", None) or _conn_host(e), f"the host name does not resolve ({detail})"
        if isinstance(e, NewConnectionError) and _refused(e):
            return _conn_host(e), "connection refused (nothing listens on that port)"
        if isinstance(e, MaxRetryError) and isinstance(e.reason, BaseException):
            todo.append(e.reason)
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return None


def _refused(e: BaseException) -> bool:
    cause = e.__cause__ or e.__context__
    return isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(e)


def _conn_host(e: BaseException) -> str:
    conn = getattr(e, "conn", None)
    host, port = getattr(conn, "host", None), getattr(conn, "port", None)
    if host is None:
        return "the host"
    return f"{host}:{port}" if port else str(host)
