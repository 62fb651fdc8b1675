"""Encoder checkpoints: a torch file ``{"format", "preset", "config", "state_dict"}``.

The config is stored as plain data (:meth:`ModelConfig.to_dict`, including the sensors' band
facts), so :func:`load_encoder` rebuilds the model without the catalog and without pickled code.
"""

from __future__ import annotations

from pathlib import Path

import torch

from spectralearth_data.atomic import atomic_path
from spectralearth_data.errors import SpectralEarthError

from .config import ModelConfig
from .model import SpectralEarthEncoder, build_encoder

FORMAT = "spectralearth-encoder/1"


class CheckpointError(SpectralEarthError):
    """A file that is not a readable SpectralEarth encoder checkpoint."""


def save_encoder(path: Path, encoder: SpectralEarthEncoder, cfg: ModelConfig) -> Path:
    """Write ``encoder``'s weights and ``cfg`` to ``path`` (written to a temp file, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "preset": cfg.name,
        "config": cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_encoder(path: Path, map_location: str | torch.device = "cpu") -> tuple[SpectralEarthEncoder, ModelConfig]:
    """Rebuild the encoder saved by :func:`save_encoder`; returns (encoder in eval mode, config)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 -- torch raises several types for corrupt/foreign files
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: format is {got!r}, expected {FORMAT!r}")
    cfg = ModelConfig.from_dict(payload["config"])
    encoder = build_encoder(cfg)
    try:
        encoder.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match its config ({e})") from None
    return encoder.eval(), cfg
