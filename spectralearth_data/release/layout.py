"""The release layout's definition: where the index lives and how every per-patch array is chunked
and compressed. The writer (:mod:`.store`) creates arrays from it; the readers (:mod:`.reader`,
:mod:`.shards`) read by it, so a change here is seen by both (and by the fast reader's test).
"""

from __future__ import annotations

PARTS_DIR = "index/patches"
LOCATIONS = "index/locations.parquet"
#: Parquet key-value metadata of a part: the task's shard and every patch id it attempted.
PART_META_KEY = b"spectralearth:part"

#: Compressor of each inner chunk (one patch) of every array the writer creates, after the
#: ``bytes`` serializer: zarr 3's default for numbers, stated here so that a change is a change
#: of this definition, which the fast reader's test (tests/engine/test_release_reader.py) sees.
COMPRESSORS: tuple[dict, ...] = ({"name": "zstd", "configuration": {"level": 0, "checksum": False}},)
#: Where each shard keeps its index of inner chunks (zarr's default; the index codecs are zarr's
#: fixed ``bytes`` + ``crc32c``).
SHARD_INDEX_LOCATION = "end"


def patch_array_spec(patch_shape: tuple[int, ...], patches_per_shard: int) -> dict:
    """Chunking and codecs of a per-patch array ``(N, *patch_shape)``: one patch per inner chunk,
    ``patches_per_shard`` patches per shard (keyword arguments of ``create_array``)."""
    return {
        "chunks": (1, *patch_shape),
        "shards": {"shape": (patches_per_shard, *patch_shape), "index_location": SHARD_INDEX_LOCATION},
        "compressors": COMPRESSORS,
    }


def part_name(sensor: str, shard: int) -> str:
    """File name of the index part of one shard of one sensor."""
    return f"part-{sensor}-{shard:06d}.parquet"
