"""Sensor-specific encoders: each product's native-GSD patch -> one shared token grid.

Every product maps onto tokens of ``cfg.token_m`` metres (120 m: S2/S1 10 m with patch 12,
EnMAP/DESIS/Landsat/LST 30 m with patch 4, EMIT 60 m with patch 2). Hyperspectral products go
through the shared :class:`~spectralearth_model.tokenizer.SpectralTokenizer`; S2, Landsat, LST and
S1 have a plain strided-convolution patch embedding over their catalog bands. Each token gets a
learned sensor embedding plus a GSD embedding (sinusoidal in log GSD) of the batch's ``gsd`` for
that sensor (the catalog's when the batch gives none), so a task at another GSD is not fed as if
it were the catalog's. Pixels flagged by ``cfg.invalid_mask_bits`` (nodata, saturated, cloud,
cloud shadow) or non-finite are zeroed, and a sensor's token is present only where at least
``cfg.min_valid_fraction`` of its pixels are valid.

DDP safety: :class:`SensorEmbedder` runs *every* sensor's encoder in *every* forward. A sensor
missing from the batch dict is replaced by zeros of its catalog shape and all its tokens are
flagged absent, so fusion gives them zero attention weight: every parameter stays in the autograd
graph (receiving a zero gradient where a sensor is absent), and DDP never needs
``find_unused_parameters``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig, ModelConfigError, SensorInput, gsd_encoding
from .tokenizer import SpectralTokenizer

Batch = dict


def normalise_input(x: torch.Tensor, s: SensorInput) -> torch.Tensor:
    """Physical units -> network units: optional linear->dB for SAR, then ``(x - shift) / scale``."""
    if s.to_db:
        x = 10.0 * torch.log10(x.clamp(min=1e-5))
    if s.norm_shift == 0.0 and s.norm_scale == 1.0:  # reflectance: skip two passes over the cube
        return x
    return (x - s.norm_shift) / s.norm_scale


class SensorEmbedder(nn.Module):
    """All sensors of a batch -> tokens (B, S, N, D) and token presence (B, S, N).

    Args:
        cfg: the model configuration (its ``sensors`` fix the order and the band counts).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.dims[0]
        hsi = [s for s in cfg.sensors if s.kind == "hsi"]
        self.tokenizer = (
            SpectralTokenizer(cfg.spectral_groups, cfg.spectral_dim, dim, cfg.hsi_subpatch,
                              cfg.wl_min_period_nm, cfg.wl_max_period_nm) if hsi else nn.Identity()
        )
        self._pool = {s.name: self._subgrid_pool(cfg, s.name) for s in cfg.sensors if s.kind != "hsi"}
        self.patch_embed = nn.ModuleDict(
            {
                s.name: nn.Conv2d(s.n_bands, dim, cfg.patch_px(s.name) // self._pool[s.name],
                                  stride=cfg.patch_px(s.name) // self._pool[s.name])
                for s in cfg.sensors
                if s.kind != "hsi"
            }
        )
        self.sensor_embed = nn.Parameter(torch.randn(len(cfg.sensors), dim) * 0.02)
        self.gsd_embed = nn.Linear(16, dim)
        self.register_buffer(
            "gsd_features",
            torch.tensor([gsd_encoding(s.gsd_m, 16) for s in cfg.sensors], dtype=torch.float32),
            persistent=False,
        )

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _subgrid_pool(cfg: ModelConfig, name: str) -> int:
        """Pixels averaged per sub-grid cell before a non-HSI patch embedding (1: none)."""
        p, sub = cfg.patch_px(name), cfg.hsi_subpatch
        return p // sub if cfg.embed_subgrid and p > sub and p % sub == 0 else 1

    def grid_size(self, batch: Batch) -> tuple[int, int]:
        """Token grid (rows, cols) implied by the sensors in the batch; they must agree."""
        sizes = {}
        for name, entry in batch["sensors"].items():
            p = self.cfg.patch_px(name)
            H, W = entry["data"].shape[-2:]
            if H % p or W % p:
                raise ModelConfigError(
                    f"batch sensor {name!r}: patch {H}x{W} px is not a multiple of its {p} px token"
                )
            sizes[name] = (H // p, W // p)
        if not sizes:
            raise ModelConfigError("batch has no sensors")
        if len(set(sizes.values())) > 1:
            raise ModelConfigError(f"batch sensors cover different footprints (tokens per sensor: {sizes})")
        return next(iter(sizes.values()))

    def _placeholder(self, s: SensorInput, B: int, grid: tuple[int, int], device) -> dict:
        p = self.cfg.patch_px(s.name)
        H, W = grid[0] * p, grid[1] * p
        return {
            "data": torch.zeros(B, s.n_bands, H, W, device=device),
            "mask": torch.ones(B, H, W, dtype=torch.uint8, device=device),  # all nodata
            "wavelength": torch.tensor(s.wavelength_nm or [0.0] * s.n_bands, device=device),
            "fwhm": torch.tensor(s.fwhm_nm or [0.0] * s.n_bands, device=device),
        }

    def _embed_one(self, s: SensorInput, entry: dict, x: torch.Tensor) -> torch.Tensor:
        p = self.cfg.patch_px(s.name)
        if s.kind == "hsi":
            wl = torch.as_tensor(entry["wavelength"], device=x.device, dtype=torch.float32)
            fwhm = torch.as_tensor(entry["fwhm"], device=x.device, dtype=torch.float32)
            if wl.shape[0] != x.shape[1] or fwhm.shape[0] != x.shape[1]:
                raise ModelConfigError(
                    f"batch sensor {s.name!r}: {x.shape[1]} channels but {wl.shape[0]} wavelengths "
                    f"and {fwhm.shape[0]} FWHM values"
                )
            band_valid = entry.get("band_valid")
            band_valid = torch.isfinite(wl) & torch.isfinite(fwhm) & (fwhm > 0) & (
                torch.as_tensor(band_valid, device=x.device, dtype=torch.bool) if band_valid is not None else True
            )
            return self.tokenizer(x, wl.nan_to_num(1000.0), fwhm.nan_to_num(10.0).clamp(min=0.1), p, band_valid)
        if x.shape[1] != s.n_bands:
            raise ModelConfigError(
                f"batch sensor {s.name!r}: {x.shape[1]} channels, the model expects its {s.n_bands} "
                f"catalog bands ({', '.join(s.band_names)})"
            )
        pool = self._pool[s.name]
        return self.patch_embed[s.name](F.avg_pool2d(x, pool) if pool > 1 else x)

    # -- forward --------------------------------------------------------------------------------

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """-> tokens (B, S, N, D), present (B, S, N) bool."""
        present = batch["present"].bool()  # (B, S)
        B = present.shape[0]
        grid = self.grid_size(batch)
        device = present.device
        tokens, ok = [], []
        feats = self.gsd_features
        gsds = [float((batch["sensors"].get(s.name) or {}).get("gsd", s.gsd_m)) for s in self.cfg.sensors]
        if any(g != s.gsd_m for g, s in zip(gsds, self.cfg.sensors)):  # a task at another GSD says so
            feats = torch.tensor([gsd_encoding(g, 16) for g in gsds], dtype=feats.dtype, device=feats.device)
        sensor_emb = self.sensor_embed + self.gsd_embed(feats)  # (S, D), once per batch
        for i, s in enumerate(self.cfg.sensors):
            entry = batch["sensors"].get(s.name) or self._placeholder(s, B, grid, device)
            p = self.cfg.patch_px(s.name)
            x = normalise_input(entry["data"].float(), s)  # (B, C, H, W)
            # No data-dependent branch (a host sync per sensor on GPU): flagged and non-finite
            # pixels (a NaN would reach its token through every weight) are always zeroed.
            invalid = (entry["mask"].to(torch.int32) & self.cfg.invalid_mask_bits) != 0  # (B, H, W)
            invalid = invalid | ~torch.isfinite(x.sum(dim=1))  # NaN/Inf survive the band sum: one cheap pass
            x = torch.where(invalid[:, None], 0.0, x)
            t = self._embed_one(s, entry, x)  # (B, D, gh, gw)
            t = t.flatten(2).transpose(1, 2)  # (B, N, D)
            t = t + sensor_emb[i]
            tokens.append(t)
            # a token is usable if enough of its pixels are
            valid = F.avg_pool2d((~invalid)[:, None].float(), p).flatten(1) >= self.cfg.min_valid_fraction
            ok.append(present[:, i, None] & valid)  # (B, N)
        return torch.stack(tokens, 1), torch.stack(ok, 1)
