"""The mask bit flags every product's QA layer is translated into (DESIGN.md, "The release store").

Stored as ``uint8`` per pixel in ``<sensor>/mask``.
"""

from __future__ import annotations

import enum


class MaskFlag(enum.IntFlag):
    """Per-pixel quality flags shared by all products."""

    NODATA = 1
    CLOUD = 2
    CLOUD_SHADOW = 4
    SNOW_ICE = 8
    WATER = 16
    SATURATED = 32

    @classmethod
    def from_name(cls, name: str) -> MaskFlag:
        """Flag for a lower-case name as written in the sensor YAML files (``cloud_shadow``)."""
        try:
            return cls[name.upper()]
        except KeyError:
            allowed = ", ".join(f.name.lower() for f in cls)  # type: ignore[union-attr]
            raise ValueError(f"unknown mask flag {name!r}; allowed: {allowed}") from None


#: Flags that make a pixel unusable for the valid fraction of a patch.
INVALID = MaskFlag.NODATA | MaskFlag.SATURATED
#: Flags counted in the cloud fraction of a patch.
CLOUDY = MaskFlag.CLOUD | MaskFlag.CLOUD_SHADOW
