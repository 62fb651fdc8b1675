"""The release (DESIGN.md, "The release store"): a sharded Zarr v3 store and its GeoParquet index.

* :mod:`.store` - the writer (the only code that writes a store's arrays and index parts) and the
  layout's definitions (paths, codecs, :data:`~.store.PIPELINE_VERSION`);
* :mod:`.reader` - the one reader: opens the store, reads the index, the per-product layout and
  the CF decoding (re-exported here);
* :mod:`.shards` - single-patch reads of a local store with one ``pread`` (the loader's fast path);
* the commands on a tiled store: :func:`.validate.validate_store`, :func:`.publish.publish`,
  :func:`.export.export`, :func:`.upload.upload`, :func:`.quicklook.quicklook`.

Tiling (reading scenes onto cells) is :mod:`spectralearth_data.engine`, which writes through
:mod:`.store`. This package imports neither torch, Prefect, the flows, the model nor the search
package (:mod:`spectralearth_data.sources`).
"""

from __future__ import annotations

from .reader import (
    LOADER_COLUMNS,
    CFCoding,
    ProductLayout,
    Release,
    cf_coding,
    committed,
    decode,
    decode_stored,
    empty_pixels,
    iter_parts,
    nodata_pixels,
    open_group,
    open_release,
    part_paths,
    product_layout,
    read_index,
    read_index_columns,
    read_patch_index,
    sensor_groups,
)
from .shards import ChunkReader, open_chunk_reader

__all__ = [
    "LOADER_COLUMNS", "CFCoding", "ChunkReader", "ProductLayout", "Release", "cf_coding", "committed",
    "decode", "decode_stored", "empty_pixels", "iter_parts", "nodata_pixels", "open_chunk_reader",
    "open_group", "open_release", "part_paths", "product_layout", "read_index", "read_index_columns",
    "read_patch_index", "sensor_groups",
]
