"""The data engine: read scenes onto grid cells, QA them and write the sharded Zarr release.

Public API: :func:`tile`, :func:`validate`, :func:`publish`, :func:`upload`, :func:`export`,
:func:`quicklook`, :class:`TileConfig`, :class:`TileSummary`.

The submodules that share a name with a function (``validate``, ``upload``, ``export``,
``quicklook``) are
imported here first: importing a submodule later would otherwise replace the package attribute,
and ``engine.validate`` would turn from the function into the module.
"""

from __future__ import annotations

from . import export as _export_module  # noqa: F401  (see the module docstring)
from . import quicklook as _quicklook_module  # noqa: F401
from . import upload as _upload_module  # noqa: F401
from . import validate as _validate_module  # noqa: F401
from .config import PIPELINE_VERSION, TileConfig
from .tile import TileSummary, tile


def validate(store, check_hashes: bool = True) -> list[str]:
    """Problems found in a release store (empty list = valid); see :mod:`.validate`."""
    from .validate import validate_store

    return validate_store(store, check_hashes=check_hashes)


def publish(store, release_id: str):
    """Validate and write the release manifest JSON; see :mod:`.release`."""
    from .release import publish as _publish

    return _publish(store, release_id)


def upload(store, url: str, storage_options: dict | None = None, progress: bool = True):
    """Copy a published release to object storage (fsspec URL); see :mod:`.upload`."""
    from .upload import upload as _upload

    return _upload(store, url, storage_options, progress=progress)


def export(store, out, redistributable_only: bool = True):
    """Copy the redistributable part of a release; see :mod:`.export`."""
    from .export import export as _export

    return _export(store, out, redistributable_only=redistributable_only)


def quicklook(store, cell_id: str, out_png):
    """PNG of one location across products; see :mod:`.quicklook`."""
    from .quicklook import quicklook as _quicklook

    return _quicklook(store, cell_id, out_png)


__all__ = ["PIPELINE_VERSION", "TileConfig", "TileSummary", "export", "publish", "quicklook", "tile", "upload", "validate"]
