"""Typed configuration of SpectralEarth-FM: :class:`ModelConfig` and the ``tiny``/``small``/``base`` presets.

Sensor facts (bands, wavelengths, FWHM, GSD) are read from ``catalogs/`` through
:func:`spectralearth_data.catalog.sensor_spec` (the catalog's one cache) and frozen into
:class:`SensorInput` values, so a checkpoint carries everything needed to rebuild the model
without the catalog. Everything else here is a *model* choice (widths, depths, token size, input
normalisation constants, loss weights).

Width/depth choice of the presets (``spectralearth model-info --preset P`` prints the parameters):

* ``tiny``  - 2 stages (64, 128), depths (1, 2): CPU tests and the demo, well under a second per
  step at batch 4 on the 960 m demo cell (8x8 tokens).
* ``small`` - 3 stages (96, 192, 384), depths (1, 2, 5): a few-GPU-hour model, Hiera-T-like widths.
* ``base``  - 4 stages (96, 192, 384, 768), depths (2, 3, 16, 3), heads (1, 2, 4, 8): the widths and
  depths of Hiera-B (~50M encoder parameters), the "paper scale" model for the 3840 m cell
  (32x32 tokens of 120 m, pooled to 4x4 in the last stage).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from spectralearth_data.errors import PixelGridError, SpectralEarthError
from spectralearth_data.masks import INVALID, MaskFlag

#: The seven products, in the order of the batch ``present`` mask.
DEFAULT_SENSORS = ("enmap", "emit", "desis", "s2", "landsat", "lst", "s1")


class ModelConfigError(SpectralEarthError):
    """A model configuration or a batch that does not fit it."""


@dataclass(frozen=True)
class SensorInput:
    """What the model needs to know about one product (frozen from the catalog)."""

    name: str
    #: Product kind from the catalog: hsi, multispectral, thermal or sar.
    kind: str
    #: Native ground sampling distance (m).
    gsd_m: float
    #: Names of the usable bands, in channel order.
    band_names: tuple[str, ...]
    #: Centre wavelengths (nm) of the usable bands; empty for SAR.
    wavelength_nm: tuple[float, ...] = ()
    #: FWHM (nm) of the usable bands; empty for SAR.
    fwhm_nm: tuple[float, ...] = ()
    #: Input normalisation ``(x - shift) / scale`` applied in physical units (model choice).
    norm_shift: float = 0.0
    norm_scale: float = 1.0
    #: Convert linear backscatter to dB before normalising (SAR delivered in linear power).
    to_db: bool = False

    @property
    def n_bands(self) -> int:
        return len(self.band_names)


@dataclass(frozen=True)
class ModelConfig:
    """SpectralEarth-FM hyper-parameters. Build with :func:`preset`; values are frozen."""

    name: str
    sensors: tuple[SensorInput, ...]
    #: Ground size of one input token (m): 10 m -> patch 12, 30 m -> patch 4, 60 m -> patch 2.
    token_m: float = 120.0
    #: Virtual spectral bands produced by the spectral tokenizer (learned response functions).
    spectral_groups: int = 16
    #: Width of the wavelength/FWHM encoding that conditions the tokenizer.
    spectral_dim: int = 32
    #: Periods (nm) of the sinusoidal wavelength encoding, geometric from the finest to the
    #: coarsest: a few nm separates neighbouring EnMAP bands (6.5-10 nm apart).
    wl_min_period_nm: float = 4.0
    wl_max_period_nm: float = 2200.0
    #: Sub-grid (px per token side) the virtual bands are resampled to before patch embedding.
    hsi_subpatch: int = 4
    #: Non-HSI products too are area-averaged to that sub-grid before their patch embedding when
    #: their token is a multiple of it (S2/S1: 12 px -> 4x4). A 12x12-px kernel has 144 x bands
    #: inputs, so its init scale (1/sqrt(fan_in)) is far below AdamW's per-step update and a few
    #: hundred steps overwrite it (issue 17's S2 probe fell most); the 4x4 kernel also costs less.
    embed_subgrid: bool = True
    #: Cross-sensor fusion blocks (run at ``dims[0]``) and their heads.
    fusion_depth: int = 1
    fusion_heads: int = 2
    #: Hierarchical encoder: one entry per stage; tokens are 2x2 max-pooled between stages.
    dims: tuple[int, ...] = (64, 128)
    depths: tuple[int, ...] = (1, 2)
    heads: tuple[int, ...] = (2, 4)
    mlp_ratio: float = 4.0
    #: JEPA predictor.
    predictor_dim: int = 64
    predictor_depth: int = 2
    predictor_heads: int = 2
    #: JEPA views: local views per step (one sensor each) and their crop size (fraction of grid).
    n_local_views: int = 2
    local_crop: float = 0.5
    #: Multi-sensor student views per step (a random subset of >= 2 present sensors each, so
    #: fusion learns to fuse) and their crop size (fraction of grid).
    n_multi_views: int = 1
    multi_crop: float = 0.5
    #: Loss weight of target cells outside a student view's crop (inside: 1). Far cells of a
    #: scene are barely predictable from a small crop; weighting them fully pushes the target
    #: towards spatially smooth, information-poor features (issue 17's probes).
    outside_weight: float = 1.0
    #: Weight of a second, *shallow* target: the predictor also predicts the target's first-stage
    #: map (pooled to the last stage's cells), which keeps local spectral information (0: off).
    shallow_weight: float = 0.0
    #: Relative odds of each product kind being a single-sensor view's sensor (uniform odds made
    #: 1-band LST and 2-band S1 2/7 of all context views).
    view_sensor_weights: tuple[tuple[str, float], ...] = (
        ("hsi", 1.0), ("multispectral", 1.0), ("sar", 1.0), ("thermal", 0.5))
    #: EMA momentum schedule of the target encoder (cosine from start to end over training).
    ema_start: float = 0.996
    ema_end: float = 1.0
    #: Anti-collapse regulariser on context token embeddings: ``none`` (the default: the issue-17
    #: probes fell below the initialisation with VICReg and rose without it), ``vicreg`` (variance
    #: hinge + covariance, weights below) or ``sigreg`` (LeJEPA's isotropic-Gaussian test,
    #: ``sigreg_weight``; reported in the ``var_loss`` metric).
    regulariser: str = "none"
    var_weight: float = 1.0
    cov_weight: float = 0.04
    sigreg_weight: float = 1.0
    sigreg_dirs: int = 64
    #: Compute the collapse monitor (embedding std, effective rank) every N forward calls.
    monitor_every: int = 10
    #: Mask bits that make a pixel unusable for the model: ``spectralearth_data.masks.INVALID``
    #: (nodata | saturated) plus cloud and cloud shadow (they are not the surface).
    invalid_mask_bits: int = int(INVALID | MaskFlag.CLOUD | MaskFlag.CLOUD_SHADOW)
    #: A sensor's token counts as present only when at least this fraction of its pixels is valid.
    min_valid_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not (len(self.dims) == len(self.depths) == len(self.heads)):
            raise ModelConfigError("dims, depths and heads need one entry per stage")
        if self.regulariser not in ("vicreg", "sigreg", "none"):
            raise ModelConfigError(f"regulariser must be vicreg, sigreg or none, got {self.regulariser!r}")
        for d, h in zip(self.dims, self.heads):
            if d % h:
                raise ModelConfigError(f"stage width {d} is not divisible by its {h} heads")
        from spectralearth_data.grid import pixels_per_cell

        for s in self.sensors:
            try:
                pixels_per_cell(self.token_m, s.gsd_m)
            except PixelGridError:
                raise ModelConfigError(
                    f"token_m={self.token_m} is not a multiple of {s.name}'s {s.gsd_m} m GSD"
                ) from None

    @property
    def sensor_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sensors)

    @property
    def embed_dim(self) -> int:
        """Width of the pooled embedding (last stage)."""
        return self.dims[-1]

    @property
    def grid_unit(self) -> int:
        """Token grids and crops must be multiples of this (one token per last-stage cell)."""
        return 2 ** (len(self.dims) - 1)

    def sensor(self, name: str) -> SensorInput:
        for s in self.sensors:
            if s.name == name:
                return s
        raise ModelConfigError(f"sensor {name!r} is not in this model (has: {', '.join(self.sensor_names)})")

    def patch_px(self, name: str) -> int:
        """Pixels per token side for a sensor: ``token_m / gsd_m``."""
        return round(self.token_m / self.sensor(name).gsd_m)

    def tokens_for(self, cell_m: float) -> int:
        """Tokens per side for a cell of ``cell_m`` metres (e.g. 960 m -> 8, 3840 m -> 32)."""
        n = cell_m / self.token_m
        if abs(n - round(n)) > 1e-6 or round(n) % self.grid_unit:
            raise ModelConfigError(
                f"cell size {cell_m} m gives {n:g} tokens of {self.token_m:g} m; need a multiple of "
                f"{self.grid_unit} for {len(self.dims)} stages"
            )
        return round(n)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        d = dict(d)
        sensors = tuple(
            SensorInput(**{k: tuple(v) if isinstance(v, list) else v for k, v in s.items()})
            for s in d.pop("sensors")
        )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelConfigError(f"model config has unknown keys {unknown}")
        d = {k: _tuples(v) for k, v in d.items()}
        for k, v in _BEFORE_ISSUE_17.items():  # checkpoints written before these fields keep their model
            d.setdefault(k, v)
        return cls(sensors=sensors, **d)

    def view_weight(self, name: str) -> float:
        """Relative odds of sensor ``name`` being a single-sensor view's sensor."""
        kind = self.sensor(name).kind
        return next((w for k, w in self.view_sensor_weights if k == kind), 1.0)


#: Values that rebuild a model saved before issue 17 added these fields (they change its weights or
#: its function): plain patch embeddings and the coarse wavelength encoding.
_BEFORE_ISSUE_17: dict[str, Any] = {"embed_subgrid": False, "wl_min_period_nm": 2200.0, "wl_max_period_nm": 140800.0}


def _tuples(v: Any) -> Any:
    """JSON lists (at any depth) back to the tuples the frozen config holds."""
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v


# -- sensors from the catalog ----------------------------------------------------------------------

#: Normalisation constants by product kind (model choices, not sensor facts):
#: reflectance is used as is; LST (K) is centred on 290 K; SAR in dB is centred on -15 dB.
_NORM = {"hsi": (0.0, 1.0), "multispectral": (0.0, 1.0), "thermal": (290.0, 20.0), "sar": (-15.0, 6.0)}


def sensor_input(name: str) -> SensorInput:
    """Freeze one product's usable bands from the catalog into a :class:`SensorInput` (the spec
    comes from the catalog's one cache, :func:`spectralearth_data.catalog.sensor_spec`)."""
    from spectralearth_data.catalog import sensor_spec

    spec = sensor_spec(name)
    bands = spec.usable_bands
    shift, scale = _NORM.get(spec.kind, (0.0, 1.0))
    units = {b.unit.lower() for b in bands}
    to_db = spec.kind == "sar" and not any("db" in u for u in units)
    has_wl = all(b.wavelength_nm is not None for b in bands)
    return SensorInput(
        name=spec.name,
        kind=spec.kind,
        gsd_m=float(spec.gsd_m),
        band_names=tuple(b.name for b in bands),
        wavelength_nm=tuple(float(b.wavelength_nm) for b in bands) if has_wl else (),
        fwhm_nm=tuple(float(b.fwhm_nm) for b in bands) if has_wl else (),
        norm_shift=shift,
        norm_scale=scale,
        to_db=to_db,
    )


_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "spectral_groups": 16, "spectral_dim": 32, "fusion_depth": 1, "fusion_heads": 2,
        "dims": (64, 128), "depths": (1, 2), "heads": (2, 4),
        "predictor_dim": 64, "predictor_depth": 2, "predictor_heads": 2, "monitor_every": 10,
    },
    "small": {
        "spectral_groups": 32, "spectral_dim": 64, "fusion_depth": 1, "fusion_heads": 3,
        "dims": (96, 192, 384), "depths": (1, 2, 5), "heads": (1, 2, 6),
        "predictor_dim": 192, "predictor_depth": 4, "predictor_heads": 6, "monitor_every": 50,
    },
    "base": {
        "spectral_groups": 64, "spectral_dim": 64, "fusion_depth": 2, "fusion_heads": 2,
        "dims": (96, 192, 384, 768), "depths": (2, 3, 16, 3), "heads": (1, 2, 4, 8),
        "predictor_dim": 384, "predictor_depth": 6, "predictor_heads": 6, "monitor_every": 100,
    },
}

PRESETS = tuple(_PRESETS)


def preset(name: str, sensors: tuple[str, ...] | list[str] | None = None, **overrides: Any) -> ModelConfig:
    """The named preset (``tiny``, ``small``, ``base``) over ``sensors`` (default: the seven products).

    ``overrides`` replace individual fields, e.g. ``preset("tiny", n_local_views=1)``.
    """
    if name not in _PRESETS:
        raise ModelConfigError(f"unknown model preset {name!r}; choose one of: {', '.join(PRESETS)}")
    names = tuple(sensors) if sensors is not None else DEFAULT_SENSORS
    if not names:
        raise ModelConfigError("a model needs at least one sensor")
    values = {**_PRESETS[name], **overrides}
    try:
        return ModelConfig(name=name, sensors=tuple(sensor_input(n) for n in names), **values)
    except TypeError as e:  # an unknown override key
        raise ModelConfigError(f"preset {name!r}: {e}") from None


def gsd_encoding(gsd_m: float, dim: int) -> list[float]:
    """Sinusoidal features of log2(GSD) (used to condition sensor embeddings on resolution)."""
    x = math.log2(gsd_m)
    half = dim // 2
    freqs = [math.exp(-math.log(100.0) * i / max(half - 1, 1)) for i in range(half)]
    return [math.sin(x * f) for f in freqs] + [math.cos(x * f) for f in freqs]
