"""SpectralEarth-FM encoder: sensor encoders -> cross-sensor fusion -> shared hierarchical encoder.

Input is a collated location batch (DESIGN.md "Model inputs")::

    {"present": bool (B, S) over cfg.sensors,
     "sensors": {name: {"data": float32 (B, C, H, W) physical units, "mask": uint8 (B, H, W),
                        "wavelength": (C,), "fwhm": (C,), "gsd": m}},
     "token_origin": (row, col)  # optional: offset of a crop in the full token grid}

Sensors missing from ``sensors`` are treated as absent for the whole batch (see sensors.py for
why they are still computed). ``forward_features`` gives the pooled (B, D) embedding for frozen
evaluation; ``forward_intermediates`` the per-stage (B, D_i, H_i, W_i) maps for dense heads.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig, ModelConfigError
from .fusion import SensorFusion
from .hierarchy import HierarchicalEncoder
from .layers import grid_coords, sincos_2d
from .sensors import SensorEmbedder


class SpectralEarthEncoder(nn.Module):
    """The SpectralEarth-FM encoder.

    Args:
        cfg: model configuration (see :func:`spectralearth_model.config.preset`).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedder = SensorEmbedder(cfg)
        self.fusion = SensorFusion(cfg.dims[0], cfg.fusion_depth, cfg.fusion_heads)
        self.encoder = HierarchicalEncoder(cfg.dims, cfg.depths, cfg.heads, cfg.mlp_ratio)
        self.apply(_init_weights)

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    def fused_tokens(self, batch: dict) -> torch.Tensor:
        """Batch -> fused token grid (B, H, W, dims[0]) with position encoding added."""
        gh, gw = self.embedder.grid_size(batch)
        unit = self.cfg.grid_unit
        if gh % unit or gw % unit:
            raise ModelConfigError(
                f"token grid {gh}x{gw} is not a multiple of {unit} (needed by the {len(self.cfg.dims)} stages "
                f"of preset {self.cfg.name!r})"
            )
        tokens, present = self.embedder(batch)  # (B, S, N, D), (B, S, N)
        x = self.fusion(tokens, present)  # (B, N, D)
        origin = tuple(float(v) for v in batch.get("token_origin", (0, 0)))
        rows, cols = grid_coords(gh, gw, origin, 1.0, x.device)
        x = x + sincos_2d(rows, cols, x.shape[-1]).to(x.dtype)
        return x.view(x.shape[0], gh, gw, -1)

    def forward_intermediates(self, batch: dict) -> list[torch.Tensor]:
        """Per-stage normalised maps, list of (B, D_i, H_i, W_i), finest first."""
        return self.encoder(self.fused_tokens(batch))

    def forward_features(self, batch: dict) -> torch.Tensor:
        """Pooled embedding (B, D): mean of the last stage map."""
        return self.forward_intermediates(batch)[-1].mean(dim=(2, 3))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.forward_features(batch)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def build_encoder(cfg: ModelConfig) -> SpectralEarthEncoder:
    """A freshly initialised encoder for ``cfg``."""
    return SpectralEarthEncoder(cfg)
