"""The data engine: read scenes onto grid cells, QA them and tile them into the release store.

Public API: :func:`tile`, :class:`TileConfig`, :class:`TileSummary`, :data:`PIPELINE_VERSION`.
The store itself (its writer and reader) and the commands on a finished release (validate,
publish, export, upload, quicklook) are :mod:`spectralearth_data.release`.
"""

from __future__ import annotations

from ..release.store import PIPELINE_VERSION
from .config import TileConfig
from .tile import TileSummary, tile

__all__ = ["PIPELINE_VERSION", "TileConfig", "TileSummary", "tile"]
