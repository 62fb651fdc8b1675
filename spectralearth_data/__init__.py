"""SpectralEarth data: curation of SpectralEarth-MM (search, co-location, tiling) and its release.

The one Python entry point for reading a release is :func:`open_release` (imported lazily, so
``import spectralearth_data`` stays light)::

    import spectralearth_data as se
    r = se.open_release("s3://bucket/releases/demo.zarr", version="v000001")
    r.index, r.dataset("s2")
"""

from __future__ import annotations

from typing import Any

__all__ = ["open_release"]


def __getattr__(name: str) -> Any:
    if name == "open_release":
        from .release.api import open_release

        return open_release
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
