"""The demo source: the static catalog of synthesized scenes written by ``spectralearth demo-scenes``.

It runs the same code path as :mod:`.local` on ``<demo_dir>/catalog.json``. The folder is the
``demo_dir`` argument, else ``$SPECTRALEARTH_DEMO_DIR``, else ``./out/demo/scenes``. Every scene it
returns is synthesized (source ``demo``), never a real acquisition.
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd

from ..errors import SourceError
from .base import SearchRequest
from .local import items_to_scenes, read_stac_file

#: Environment variable naming the folder that holds the demo's catalog.json.
DEMO_DIR_ENV = "SPECTRALEARTH_DEMO_DIR"
DEFAULT_DEMO_DIR = Path("out/demo/scenes")


def demo_dir(explicit: Path | str | None = None) -> Path:
    return Path(explicit or os.environ.get(DEMO_DIR_ENV) or DEFAULT_DEMO_DIR)


class DemoSource:
    """Synthesized scenes over the demo region (``kind: demo`` in sources.yaml)."""

    def __init__(self, folder: Path | str | None = None, name: str = "demo"):
        self.folder = demo_dir(folder)
        self.name = name

    def search(self, request: SearchRequest) -> gpd.GeoDataFrame:
        catalog = self.folder / "catalog.json"
        if not catalog.exists():
            raise SourceError(
                f"demo source: {catalog} not found; run `spectralearth demo-scenes --out {self.folder}` "
                f"first (or point --demo-dir / ${DEMO_DIR_ENV} at its folder)"
            )
        return items_to_scenes(read_stac_file(catalog), request, self.name, f"demo catalog {catalog}")
