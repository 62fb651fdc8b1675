"""``spectralearth_data.open_release``: one release, one version, read from a folder or a URL.

    >>> r = open_release("s3://bucket/releases/demo.zarr")          # the latest version
    >>> r.version, r.versions()
    >>> r.index                        # GeoDataFrame of that version's committed patches
    >>> r.dataset("s2")                # xarray.Dataset of its S2 patches

A version is a fixed set of committed commit-log objects (:mod:`.versions`), so a version opened
today reads the same patches, bytes for bytes, after later versions were added. A release never
published is read from its committed commit log as it stands (``version`` is then None).

:meth:`PublishedRelease.dataset` concatenates the product's batches along ``patch`` and keeps only
the rows the version's index commits (no padded rows), with the coordinates ``patch_id``,
``cell_id``, ``time``, ``epsg``, ``row`` and ``batch`` along ``patch`` and ``wavelength``/``fwhm``
along ``band``. Values are decoded by xarray's CF decoding (scale, offset, fill -> NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ReleaseError
from . import versions as vs
from .catalogue import group_path
from .storage import Location, open_location


@dataclass
class PublishedRelease:
    """One version of a release (see :func:`open_release`)."""

    location: Location
    version: str | None
    record: dict | None
    _index: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.location.url

    def versions(self) -> list[str]:
        """Ids of every published version of the release, oldest first."""
        return vs.version_ids(self.location)

    @property
    def index(self):
        """The version's committed patches (a GeoDataFrame, sorted by cell, product, time)."""
        if self._index is None:
            self._index = self.read_index()
        return self._index

    def read_index(self, bbox: tuple[float, float, float, float] | None = None, columns: list[str] | None = None):
        """The version's patches inside ``bbox`` (lon/lat; only the compacted objects of the
        partitions that meet it are read), or all of them."""
        if self.record is None:
            from .compact import sort_rows

            _, rows = vs.read_commit_log(self.location)
            rows = sort_rows(rows.drop(columns=["part"]))
            if bbox is not None:
                rows = rows[rows.intersects(_box(bbox))]
            return rows[columns + ["geometry"]] if columns else rows
        return vs.version_index(self.location, self.record, columns=columns, bbox=bbox)

    def products(self) -> list[str]:
        return sorted(set(self.index["sensor"]))

    def dataset(self, product: str, decode: bool = True):
        """An ``xarray.Dataset`` of ``product``'s patches of this version (``data`` and ``mask``)."""
        import numpy as np
        import pandas as pd
        import xarray as xr

        idx = self.index
        rows = idx[idx["sensor"] == product]
        if not len(rows):
            raise ReleaseError(f"{self.url} ({self.version or 'unpublished'}): no {product!r} patches "
                               f"(products: {', '.join(self.products()) or 'none'})")
        store = self.location.zarr_store(read_only=True)
        parts = []
        batches = rows["batch"].astype(str) if "batch" in rows.columns else pd.Series("", index=rows.index)
        for batch in sorted(set(batches)):
            sel = rows[batches == batch].sort_values("row", kind="stable")
            ds = xr.open_zarr(store, group=group_path(product, batch), consolidated=False,
                              mask_and_scale=decode, zarr_format=3)
            ds = ds.isel(patch=sel["row"].to_numpy(dtype=np.int64))
            epsg = np.array([int(str(c).split("_", 1)[0]) for c in sel["cell_id"]], dtype=np.int32)
            ds = ds.assign_coords(
                patch_id=("patch", sel["patch_id"].astype(str).to_numpy()),
                cell_id=("patch", sel["cell_id"].astype(str).to_numpy()),
                time=("patch", pd.to_datetime(sel["datetime"], utc=True).dt.tz_localize(None).to_numpy()),
                epsg=("patch", epsg),
                row=("patch", sel["row"].to_numpy(dtype=np.int64)),
                batch=("patch", np.array([batch] * len(sel), dtype=object)),
            )
            parts.append(ds)
        out = parts[0] if len(parts) == 1 else xr.concat(parts, dim="patch", data_vars="minimal", coords="minimal",
                                                         compat="override", join="override")
        for c in ("wavelength", "fwhm"):
            if c in out.data_vars:
                out = out.set_coords(c)
        out.attrs.update({"release": self.url, "version": self.version or "unpublished", "product": product})
        if self.record is not None and self.record.get("synthesized"):
            out.attrs["note"] = "SYNTHESIZED demo data - not real acquisitions"
        return out


def _box(bbox):
    from shapely.geometry import box

    return box(*bbox)


def open_release(path_or_url, version: str | int | None = None) -> PublishedRelease:
    """Open one version of the release at ``path_or_url`` (a folder or an ``s3://``/``gs://``/``az://``
    URL): ``version`` (``"v000001"`` or ``1``), else the latest; a release never published opens
    its committed commit log. A clear error for a missing release or version."""
    loc = open_location(path_or_url, create=False)
    if not loc.exists("zarr.json"):
        raise ReleaseError(f"{loc.url}: not a release (no zarr.json); check the path or URL")
    if version is None:
        record = vs.latest(loc)
    else:
        record = vs.read_record(loc, vs.normalize_version(version))
    return PublishedRelease(location=loc, version=record["id"] if record else None, record=record)
