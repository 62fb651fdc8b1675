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
        _refuse_training_checkpoint(path, _stored_format(path))
        first = (str(e).strip().splitlines() or [""])[0]  # torch's advice (weights_only=False) is not for us
        raise CheckpointError(f"{path}: not a SpectralEarth encoder checkpoint ({type(e).__name__}: {first}); "
                              "pass the encoder.pt that `spectralearth train` writes") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        _refuse_training_checkpoint(path, got)
        raise CheckpointError(f"{path}: format is {got!r}, expected {FORMAT!r}")
    cfg = ModelConfig.from_dict(payload["config"])
    encoder = build_encoder(cfg)
    try:
        encoder.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match its config ({e})") from None
    return encoder.eval(), cfg


def _stored_format(path: Path) -> str | None:
    """The ``format`` string of a torch zip file, read from its pickle *without* unpickling it
    (the opcodes are only scanned, no object is built); None when there is none to read."""
    import io
    import pickletools
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
            data = z.read(name)
        after_key = False
        for _, arg, _ in pickletools.genops(io.BytesIO(data)):
            if isinstance(arg, str):
                if after_key:
                    return arg
                after_key = arg == "format"
    except Exception:  # noqa: BLE001 -- not a zip, no pickle, truncated: nothing to tell
        return None
    return None


def _refuse_training_checkpoint(path: Path, fmt: object) -> None:
    """A training checkpoint (``checkpoint.pt``: weights, optimizer and RNG state, for
    ``--resume``) given where an encoder is expected: name the run's ``encoder.pt`` instead."""
    from .train import CHECKPOINT_FORMAT, ENCODER_NAME

    if fmt != CHECKPOINT_FORMAT:
        return
    encoder = path.parent / ENCODER_NAME
    hint = (f"pass {encoder}" if encoder.is_file()
            else f"pass the {ENCODER_NAME} its run writes when training finishes (not there yet: {encoder})")
    raise CheckpointError(f"{path}: this is a training checkpoint (for `spectralearth train --resume`), "
                          f"not an encoder; {hint}")
