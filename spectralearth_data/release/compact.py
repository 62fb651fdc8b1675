"""The compacted index of a version: a few GeoParquet 1.1 objects per partition.

The commit log holds one small Parquet object per shard (about 390,000 at 25M patches); a query by
region would open every one. ``publish`` therefore writes, per partition, the rows of its
committed parts as GeoParquet 1.1 objects sorted by ``cell_id`` with a ``bbox`` covering column and
row groups of :data:`ROW_GROUP_ROWS` rows (whose min/max statistics let a reader skip row groups
by range reads), plus ``partitions.parquet``: one row per object with its partition, bbox, patch
count and key, so a reader picks the objects of a region before opening any.

The partition of a row is the partition prefix of its ``batch`` (``<partition>-<plan digest>``,
see the writer) or, when the batch has none (``all``, or the layout before batches), the UTM/UPS
zone of its cell (the EPSG code that starts a cell id). A partition whose commit-log parts did
not change since the parent version keeps the parent's objects (listed again, never rewritten).
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

#: Rows per Parquet row group of a compacted object (a range read of a few MB).
ROW_GROUP_ROWS = 65_536
#: Rows per compacted object; a larger partition is split into several, in cell order.
FILE_ROWS = 4_000_000
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]")


def partition_of(batch: str, cell_id: str) -> str:
    """The partition of a row of batch ``batch`` at ``cell_id``."""
    prefix = batch.rsplit("-", 1)[0] if "-" in batch else ""
    if prefix and prefix != "all":
        return _SAFE.sub("_", prefix)
    return f"utm{cell_id.split('_', 1)[0]}"


def partitions(rows) -> list[str]:
    """The partition of every row of ``rows`` (columns ``batch`` and ``cell_id``)."""
    cache: dict[tuple[str, str], str] = {}
    out = []
    for batch, cell in zip(rows["batch"].astype(str), rows["cell_id"].astype(str), strict=True):
        zone = cell.split("_", 1)[0]
        k = (batch, zone)
        if k not in cache:
            cache[k] = partition_of(batch, cell)
        out.append(cache[k])
    return out


def inputs_digest(part_hashes: list[tuple[str, str]]) -> str:
    """sha256 over the sorted (key, sha256) of the commit-log parts a partition is made of."""
    text = "\n".join(f"{k} {h}" for k, h in sorted(part_hashes))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Compacted:
    """One compacted object: its bytes and the facts its version record and table list."""

    partition: str
    number: int
    data: bytes
    rows: int
    bbox: tuple[float, float, float, float]

    def entry(self, key: str, inputs: str, version: str) -> dict:
        return {"key": key, "partition": self.partition, "rows": self.rows, "bbox": list(self.bbox),
                "sha256": hashlib.sha256(self.data).hexdigest(), "size": len(self.data),
                "inputs_sha256": inputs, "written_by": version}


def sort_rows(rows):
    """Rows in the compacted order: cell, product, time, patch id."""
    return rows.sort_values(["cell_id", "sensor", "datetime", "patch_id"], kind="stable").reset_index(drop=True)


def compact(rows, partition: str, row_group_rows: int = ROW_GROUP_ROWS, file_rows: int = FILE_ROWS) -> list[Compacted]:
    """The compacted objects of one partition's rows (a GeoDataFrame; ``part`` is dropped)."""
    rows = sort_rows(rows.drop(columns=[c for c in ("part",) if c in rows.columns]))
    out = []
    for i, start in enumerate(range(0, max(len(rows), 1), file_rows)):
        chunk = rows.iloc[start:start + file_rows]
        buf = io.BytesIO()
        chunk.to_parquet(buf, index=False, compression="zstd", schema_version="1.1.0",
                         write_covering_bbox=True, row_group_size=row_group_rows)
        xmin, ymin, xmax, ymax = (float(v) for v in chunk.total_bounds)
        out.append(Compacted(partition=partition, number=i, data=buf.getvalue(), rows=len(chunk),
                             bbox=(xmin, ymin, xmax, ymax)))
    return out


def object_key(version: str, partition: str, number: int) -> str:
    return f"versions/{version}/index/{partition}-{number:03d}.parquet"


def partitions_key(version: str) -> str:
    return f"versions/{version}/partitions.parquet"


def partitions_table(entries: list[dict]) -> bytes:
    """``partitions.parquet``: one row per compacted object, as GeoParquet (geometry = its bbox),
    so ``geopandas.read_parquet(..., bbox=...)`` or DuckDB find a region's objects first."""
    import geopandas as gpd
    from shapely.geometry import box

    gdf = gpd.GeoDataFrame(
        {"partition": [e["partition"] for e in entries], "key": [e["key"] for e in entries],
         "n_patches": [int(e["rows"]) for e in entries],
         "xmin": [e["bbox"][0] for e in entries], "ymin": [e["bbox"][1] for e in entries],
         "xmax": [e["bbox"][2] for e in entries], "ymax": [e["bbox"][3] for e in entries],
         "sha256": [e["sha256"] for e in entries], "written_by": [e["written_by"] for e in entries]},
        geometry=[box(*e["bbox"]) for e in entries], crs="EPSG:4326")
    buf = io.BytesIO()
    gdf.to_parquet(buf, index=False, schema_version="1.1.0", write_covering_bbox=True)
    return buf.getvalue()
