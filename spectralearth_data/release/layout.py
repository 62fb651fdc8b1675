"""The release layout's definition: where the index lives and how every per-patch array is chunked
and compressed. The writer (:mod:`.store`) creates arrays from it; the readers (:mod:`.reader`,
:mod:`.shards`) read by it, so a change here is seen by both (and by the fast reader's test).
"""

from __future__ import annotations

#: The release manifest (the latest published version; written by publish, checked by validate).
MANIFEST = "release.json"
PARTS_DIR = "index/patches"
#: Writer leases (``<batch>.json``; locally also ``<batch>.lock`` for the ``flock``).
LEASES_DIR = "index/leases"
#: One record per batch, written once: the tile config (+ config_id), partition and plan digest.
BATCHES_DIR = "index/batches"
#: Layout 1 wrote a locations table here (a shared object rewritten by every run); layout 2 never
#: writes it (publish derives locations per version). Only ``upload`` still knows the name.
LOCATIONS = "index/locations.parquet"
#: The layout version in the root attributes.
LAYOUT_VERSION = 2
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


def part_key(batch: str, sensor: str, shard: int) -> str:
    """Key of the commit-log object of one shard of one sensor in ``batch``."""
    return f"{PARTS_DIR}/{batch}/{part_name(sensor, shard)}"


def lease_key(batch: str) -> str:
    return f"{LEASES_DIR}/{batch}.json"


def batch_record_key(batch: str) -> str:
    return f"{BATCHES_DIR}/{batch}.json"


def batch_id(partition: str | None, plan_digest: str) -> str:
    """``<partition>-<plan_digest[:10]>`` (partition ``all`` for an unpartitioned run)."""
    part = partition or "all"
    if any(c in part for c in "/\\ .:"):
        raise ValueError(f"partition {partition!r}: use a name without slashes, dots or spaces")
    return f"{part}-{plan_digest[:10]}"
