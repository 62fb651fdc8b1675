"""Offline demo data: SYNTHESIZED, physically plausible scenes of every product over the demo region.

``make_demo_scenes(out_dir, seed)`` writes COGs / EMIT-shaped NetCDF and a static STAC catalog
(``out_dir/catalog.json``) that the pipeline searches with ``source="demo"`` exactly like a real
catalogue. Nothing it writes is a real acquisition, and every item, collection, file and the
README in ``out_dir`` says so.
"""

from .make import DemoSummary, make_demo_scenes

__all__ = ["DemoSummary", "make_demo_scenes"]
