"""Typed settings of a tiling run (what to keep, how to shard), with defaults from DESIGN.md."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

@dataclass(frozen=True)
class TileConfig:
    """How a plan is cut into patches and written.

    Attributes:
        patches_per_shard: patches per Zarr shard (``k``); one Dask task writes one shard.
        min_valid_fraction: patches with a smaller share of valid pixels are dropped (counted).
        max_cloud_fraction: patches with a larger share of cloud/shadow among valid pixels are
            dropped (counted).
        coreg: run the phase-correlation co-registration check of HSI patches against S2.
        release_id: release id written to the root attributes (default: the store's name).
    """

    patches_per_shard: int = 64
    min_valid_fraction: float = 0.05
    max_cloud_fraction: float = 1.0
    coreg: bool = True
    release_id: str | None = None

    def __post_init__(self) -> None:
        from ..errors import SpectralEarthError

        if self.patches_per_shard < 1:
            raise SpectralEarthError(f"patches_per_shard must be >= 1, got {self.patches_per_shard}")
        for name in ("min_valid_fraction", "max_cloud_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise SpectralEarthError(f"{name} must be within [0, 1], got {v}")

    def config_id(self) -> str:
        """sha256 of the sorted-key JSON of the settings (identifies a run's configuration)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

