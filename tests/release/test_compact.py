"""The compacted index (issue 18, item 4): GeoParquet 1.1 objects per partition, sorted by cell with
a bbox covering column and row groups for range reads, and a partitions table that lets geopandas
and DuckDB read only the objects of the region asked for. Synthetic index rows, no tiling."""

from __future__ import annotations

import json

import fsspec.implementations.local
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from shapely.geometry import box

from spectralearth_data.release import compact as cp

#: Three partitions far apart: two UTM zones of batch "all" and a named partition.
ZONES = {"utm32633": (13.0, 52.0), "utm32617": (-81.0, 35.0), "west": (-120.0, 40.0)}


def _rows(n_per: int = 3000) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for part, (lon, lat) in ZONES.items():
        epsg = part[3:] if part.startswith("utm") else "32610"
        batch = "all-0123456789" if part.startswith("utm") else "west-0123456789"
        cols, rws = rng.integers(0, 60, n_per), rng.integers(0, 60, n_per)
        cells = [f"{epsg}_{c:05d}_{r:05d}" for c, r in zip(cols, rws, strict=True)]
        geoms = [box(lon + c * 0.01, lat + r * 0.01, lon + c * 0.01 + 0.01, lat + r * 0.01 + 0.01)
                 for c, r in zip(cols, rws, strict=True)]
        frames.append(gpd.GeoDataFrame({
            "patch_id": [f"s2/{c}/{i}" for i, c in enumerate(cells)], "cell_id": cells, "sensor": "s2",
            "datetime": pd.Timestamp("2024-06-01", tz="UTC"), "row": np.arange(n_per), "batch": batch,
            "sha256": "0" * 64, "part": "index/patches/x/part-s2-000000.parquet"}, geometry=geoms, crs="EPSG:4326"))
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")


@pytest.fixture(scope="module")
def compacted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compacted")
    rows = _rows()
    rows["partition"] = cp.partitions(rows)
    entries = []
    for part, grp in rows.groupby("partition"):
        for obj in cp.compact(grp.drop(columns=["partition"]), str(part), row_group_rows=500, file_rows=2000):
            key = cp.object_key("v000001", str(part), obj.number)
            (folder / key).parent.mkdir(parents=True, exist_ok=True)
            (folder / key).write_bytes(obj.data)
            entries.append(obj.entry(key, "x", "v000001"))
    (folder / cp.partitions_key("v000001")).write_bytes(cp.partitions_table(entries))
    return folder, rows, entries


class CountingFS(fsspec.implementations.local.LocalFileSystem):
    """The local filesystem, recording every file opened (what a bbox query touches)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.opened: list[str] = []

    def _open(self, path, *a, **kw):
        self.opened.append(str(path))
        return super()._open(path, *a, **kw)


def test_partitions_are_the_batch_prefix_or_the_utm_zone():
    assert cp.partition_of("all-0e1ceeb951", "32633_00382_06049") == "utm32633"
    assert cp.partition_of("", "32717_00001_00002") == "utm32717"
    assert cp.partition_of("z33n-b12-0e1ceeb951", "32633_00382_06049") == "z33n-b12"


def test_objects_are_geoparquet_1_1_sorted_by_cell_with_a_bbox_covering(compacted):
    folder, rows, entries = compacted
    assert sorted({e["partition"] for e in entries}) == sorted(ZONES)
    assert len(entries) == 6  # 3000 rows per partition in objects of at most 2000
    for e in entries:
        f = pq.ParquetFile(folder / e["key"])
        geo = json.loads(f.schema_arrow.metadata[b"geo"])
        assert geo["version"] == "1.1.0" and "covering" in geo["columns"]["geometry"]
        assert "bbox" in f.schema_arrow.names and "part" not in f.schema_arrow.names
        assert all(f.metadata.row_group(i).num_rows <= 500 for i in range(f.num_row_groups))
        cells = f.read(columns=["cell_id"])["cell_id"].to_pylist()
        assert cells == sorted(cells) and len(cells) == e["rows"]
    assert sum(e["rows"] for e in entries) == len(rows)


def test_a_bbox_query_opens_only_the_objects_of_its_region(compacted):
    folder, rows, _ = compacted
    lon, lat = ZONES["utm32617"]
    q = (lon + 0.1, lat + 0.1, lon + 0.2, lat + 0.2)
    table = gpd.read_parquet(folder / cp.partitions_key("v000001"), bbox=q)
    assert set(table["partition"]) == {"utm32617"}
    fs = CountingFS()
    got = gpd.read_parquet([str(folder / k) for k in table["key"]], bbox=q, filesystem=fs)
    want = rows[rows.intersects(box(*q))]
    assert sorted(got["patch_id"]) == sorted(want["patch_id"]) and len(want) > 0
    assert {p.rsplit("/", 1)[-1] for p in fs.opened} <= {k.rsplit("/", 1)[-1] for k in table["key"]}
    assert len(set(fs.opened)) <= 2 < 7  # of 6 objects + the table
    # inside one object, the row-group statistics of the bbox column rule out most row groups
    f = pq.ParquetFile(folder / table["key"].iloc[0])
    bbox_idx = {f.schema_arrow.field(i).name: i for i in range(len(f.schema_arrow))}
    assert "bbox" in bbox_idx
    meets = 0
    for i in range(f.num_row_groups):
        stats = {f.metadata.row_group(i).column(j).path_in_schema: f.metadata.row_group(i).column(j).statistics
                 for j in range(f.metadata.num_columns)}
        if stats["bbox.xmin"].min <= q[2] and stats["bbox.xmax"].max >= q[0]:
            meets += 1
    assert 0 < meets < f.num_row_groups


def test_duckdb_reads_the_region_through_the_partitions_table(compacted):
    import duckdb

    folder, rows, _ = compacted
    lon, lat = ZONES["utm32633"]
    q = (lon + 0.1, lat + 0.1, lon + 0.2, lat + 0.2)
    con = duckdb.connect()
    keys = [k for k, in con.execute(
        f"SELECT key FROM read_parquet('{folder / cp.partitions_key('v000001')}') "
        f"WHERE xmin <= {q[2]} AND xmax >= {q[0]} AND ymin <= {q[3]} AND ymax >= {q[1]}").fetchall()]
    assert keys and all("/utm32633-" in k for k in keys)
    files = ", ".join(f"'{folder / k}'" for k in keys)
    got = {p for p, in con.execute(
        f"SELECT patch_id FROM read_parquet([{files}]) WHERE bbox.xmin <= {q[2]} AND bbox.xmax >= {q[0]} "
        f"AND bbox.ymin <= {q[3]} AND bbox.ymax >= {q[1]}").fetchall()}
    want = rows[rows.intersects(box(*q))]
    assert got == set(want["patch_id"])


def test_ranged_reads_fetch_a_small_part_of_a_large_object(tmp_path):
    from spectralearth_data.release.storage import open_location
    from spectralearth_data.release.versions import RangeFile

    rows = _rows(20_000)
    rows = rows[rows["batch"].str.startswith("all")]
    rows = rows[rows["cell_id"].str.startswith("32633")]
    (obj,) = cp.compact(rows, "utm32633", row_group_rows=1000)
    loc = open_location(tmp_path)
    loc.put("x.parquet", obj.data)
    lon, lat = ZONES["utm32633"]
    q = (lon + 0.1, lat + 0.1, lon + 0.12, lat + 0.12)
    f = RangeFile(loc, "x.parquet")
    got = gpd.read_parquet(f, bbox=q, columns=["patch_id", "geometry"])
    assert sorted(got["patch_id"]) == sorted(rows[rows.intersects(box(*q))]["patch_id"]) and len(got)
    assert f.bytes_read < len(obj.data) / 3, (f.bytes_read, len(obj.data))
