"""The global grid of cells (DESIGN.md, "The grid"). Pure functions, no I/O.

A cell is a ``cell_m`` x ``cell_m`` square in one projected CRS:

* the UTM zone of the ground it covers, ``zone = floor((lon + 180) / 6) + 1``,
  EPSG ``32600 + zone`` north of the equator and ``32700 + zone`` south of it;
* UPS north (EPSG:32661) for latitudes above 84 N and UPS south (EPSG:32761) below 80 S.

Inside that CRS, ``col = floor(x / cell_m)`` and ``row = floor(y / cell_m)``, so the cell edges fall
on every 10, 30 and 60 m pixel edge of the zone (3840 = 384*10 = 128*30 = 64*60). The cell id is
``f"{epsg}_{col:05d}_{row:05d}"`` (:func:`format_cell_id`, :func:`cell_ids`; read back by
:func:`parse_cell_id`): the same point, cell size and code give the same id anywhere.

A point belongs to the cell of its own zone (the zone of the point's longitude/latitude), so every
point on Earth has exactly one cell and that cell contains it. Along zone borders the squares of
the two zones overlap; :mod:`.cover` says which cells cover a geometry there.

Modules: :mod:`.zones` (UTM/UPS codes, transformers, projecting lon/lat geometry), :mod:`.cells`
(cell sizes, pixels per cell, ids, :class:`Cell`, the cell of a point, cell outlines),
:mod:`.cover` (the cells covering a geometry: one at a time, or many footprints at once) and
:mod:`.partitions` (UTM zone groups x latitude bands: the one partition of each cell, the
partitions a footprint or region reaches).
Everything public is re-exported here.
"""

from __future__ import annotations

from ..errors import PixelGridError
from .cells import (
    CELL_ID_FORMAT,
    PIXEL_TOLERANCE,
    Cell,
    cell_for,
    cell_ids,
    cell_outlines,
    check_cell_m,
    format_cell_id,
    parse_cell_id,
    pixels_per_cell,
)
from .cover import cells_covering, concave_dents, footprint_cell_arrays, footprint_cells
from .partitions import (
    Partition,
    PartitionScheme,
    cell_partition,
    footprint_partition_keys,
    partition_keys,
    partition_of,
    region_partitions,
    world_partitions,
)
from .zones import (
    UPS_NORTH,
    UPS_SOUTH,
    UTM_MAX_LAT,
    UTM_MIN_LAT,
    from_lonlat,
    is_zone_epsg,
    project,
    split_antimeridian,
    to_lonlat,
    zone_epsg,
)

__all__ = [
    "CELL_ID_FORMAT",
    "PIXEL_TOLERANCE",
    "UPS_NORTH",
    "UPS_SOUTH",
    "UTM_MAX_LAT",
    "UTM_MIN_LAT",
    "Cell",
    "Partition",
    "PartitionScheme",
    "PixelGridError",
    "cell_for",
    "cell_ids",
    "cell_outlines",
    "cell_partition",
    "cells_covering",
    "check_cell_m",
    "concave_dents",
    "footprint_cell_arrays",
    "footprint_cells",
    "footprint_partition_keys",
    "format_cell_id",
    "from_lonlat",
    "is_zone_epsg",
    "parse_cell_id",
    "partition_keys",
    "partition_of",
    "pixels_per_cell",
    "project",
    "region_partitions",
    "split_antimeridian",
    "to_lonlat",
    "world_partitions",
    "zone_epsg",
]
