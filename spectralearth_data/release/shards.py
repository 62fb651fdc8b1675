"""Read single patches of a sharded Zarr v3 array on local disk with one ``pread`` each.

The loader reads one inner chunk (one patch) per product and sample. Through zarr each such
read costs about 1 ms of CPU on this machine: a range read of the shard index and one of the
chunk, each handed between the caller, zarr's event loop and its thread pool. On a 2-core
machine that (with the hand-over of 29 tensors per batch, see ``spectralearth_model.data.Collate``)
left the tiny preset waiting for data 27 % of the time. A :class:`ChunkReader`
parses the array's ``zarr.json`` once, reads each shard's index once (kept in a bounded cache,
checked against its crc32c), and then serves a patch with one ``pread`` and one zstd decode.

It reads the layout the writer (:mod:`.store`) creates, from its definitions
(:func:`.layout.patch_array_spec`, :data:`.layout.COMPRESSORS`, :data:`.layout.SHARD_INDEX_LOCATION`):
``sharding_indexed`` with inner codecs ``bytes`` (+ ``zstd``), index codecs ``bytes`` +
``crc32c``, the index at the start or end, default chunk keys, one patch per inner chunk along
the first axis. :func:`open_chunk_reader` returns None for anything else (another codec, a store
that is not a local folder), and the caller reads through zarr; :func:`reads_writer_layout` says
whether the writer's definitions are still a layout this reader serves (a test asserts it, so a
codec change in the writer fails a test instead of silently sending the loader to zarr).

Imports neither torch nor zarr (zarr only in :func:`reads_writer_layout`).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from ..errors import ReleaseError
from .layout import patch_array_spec

#: Shard indexes kept per array (each is 16 bytes per patch of the shard).
INDEX_CACHE = 4096
_MISSING = np.uint64(2**64 - 1)


class ChunkReader:
    """Patch ``i`` (``array[i]``) of one local sharded Zarr v3 array; see the module docstring."""

    def __init__(self, folder: Path, meta: dict) -> None:
        cfg = meta["codecs"][0]["configuration"]
        self.folder = Path(folder)
        self.shape = tuple(meta["shape"])
        self.shard_len = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
        self.patch_shape = self.shape[1:]
        inner = cfg["codecs"]
        endian = (inner[0].get("configuration") or {}).get("endian", "little")
        self.dtype = np.dtype(meta["data_type"]).newbyteorder("<" if endian == "little" else ">")
        self.zstd = len(inner) == 2  # the only compressor _supported lets through
        self.index_at_end = cfg.get("index_location", "end") == "end"
        self.index_nbytes = 16 * self.shard_len + 4
        fill = meta["fill_value"]
        self.fill = float(fill) if isinstance(fill, str) else fill
        sep = meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/")
        self._key_tail = sep.join("0" for _ in self.patch_shape)
        self._sep = sep
        self._index = functools.lru_cache(maxsize=INDEX_CACHE)(self._read_index)

    def shard_path(self, shard: int) -> Path:
        return self.folder / f"c{self._sep}{shard}{self._sep}{self._key_tail}"

    def _read_index(self, shard: int) -> np.ndarray:
        """(shard_len, 2) uint64 (offset, nbytes) of shard ``shard``. Raises FileNotFoundError for
        a shard never written (not cached: it may be written later)."""
        import google_crc32c  # zarr's own crc32c dependency

        fd = os.open(self.shard_path(shard), os.O_RDONLY)
        try:
            start = os.fstat(fd).st_size - self.index_nbytes if self.index_at_end else 0
            raw = os.pread(fd, self.index_nbytes, start)
        finally:
            os.close(fd)
        body, crc = raw[:-4], raw[-4:]
        if len(raw) != self.index_nbytes or google_crc32c.value(body) != int.from_bytes(crc, "little"):
            raise ReleaseError(f"{self.shard_path(shard)}: shard index does not match its crc32c (torn or foreign file)")
        return np.frombuffer(body, dtype="<u8").reshape(self.shard_len, 2)

    def read(self, i: int) -> np.ndarray:
        """A new, writable array holding patch ``i`` (the fill value where it was never written)."""
        if not 0 <= i < self.shape[0]:
            raise IndexError(f"{self.folder}: patch {i} outside 0..{self.shape[0] - 1}")
        out = np.empty(self.patch_shape, dtype=self.dtype)
        try:
            index = self._index(i // self.shard_len)
        except FileNotFoundError:
            index = None
        if index is None or (index[i % self.shard_len] == _MISSING).all():
            out[...] = self.fill
            return out
        offset, nbytes = (int(v) for v in index[i % self.shard_len])
        fd = os.open(self.shard_path(i // self.shard_len), os.O_RDONLY)
        try:
            buf = os.pread(fd, nbytes, offset)
        finally:
            os.close(fd)
        if self.zstd:
            _zstd().decode(buf, out=out)
        else:
            out[...] = np.frombuffer(buf, dtype=self.dtype).reshape(self.patch_shape)
        return out


@functools.cache
def _zstd():
    from numcodecs import Zstd

    return Zstd()


def open_chunk_reader(folder: Path | str) -> ChunkReader | None:
    """A :class:`ChunkReader` for the array in ``folder``, or None when its layout is not the one
    it reads (the caller then reads through zarr)."""
    meta_path = Path(folder) / "zarr.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    return ChunkReader(Path(folder), meta) if _supported(meta) else None


def _supported(meta: dict) -> bool:
    codecs = meta.get("codecs") or []
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "array" or len(codecs) != 1:
        return False
    if codecs[0].get("name") != "sharding_indexed" or meta.get("chunk_key_encoding", {}).get("name") != "default":
        return False
    if (meta.get("chunk_grid") or {}).get("name") != "regular":
        return False
    cfg = codecs[0].get("configuration") or {}
    shape, outer = meta["shape"], meta["chunk_grid"]["configuration"]["chunk_shape"]
    inner_shape = cfg.get("chunk_shape")
    # one patch per inner chunk, each shard a run of whole patches
    if inner_shape != [1, *shape[1:]] or outer[1:] != shape[1:]:
        return False
    inner = [c.get("name") for c in cfg.get("codecs") or []]
    if inner not in (["bytes"], ["bytes", "zstd"]):
        return False
    index = [(c.get("name"), (c.get("configuration") or {}).get("endian", "little")) for c in cfg.get("index_codecs") or []]
    if index != [("bytes", "little"), ("crc32c", "little")]:
        return False
    try:
        np.dtype(meta["data_type"])
    except TypeError:
        return False
    return True


def reads_writer_layout(patch_shape: tuple[int, ...] = (3, 4, 4), dtype: str = "uint16",
                        patches_per_shard: int = 2) -> bool:
    """Whether an array created from the writer's definitions (:func:`.layout.patch_array_spec`)
    is one :func:`open_chunk_reader` serves; False means the loader would read through zarr."""
    import tempfile

    import zarr

    with tempfile.TemporaryDirectory() as d:
        zarr.create_array(d, shape=(0, *patch_shape), dtype=dtype, fill_value=0, zarr_format=3,
                          **patch_array_spec(patch_shape, patches_per_shard))
        return _supported(json.loads((Path(d) / "zarr.json").read_text()))
