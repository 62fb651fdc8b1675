"""Where a model runs and what its weights are: the one device resolution and the one weights digest
used by training and evaluation."""

from __future__ import annotations

import hashlib

import torch


def resolve_device(name: str | None = "auto") -> str:
    """``"auto"`` (or None) becomes ``"cuda"`` when a CUDA device is available, else ``"cpu"``;
    any other name (``cpu``, ``cuda``, ``cuda:1`` ...) is returned as given."""
    if name is None or name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 (hex) of every parameter and buffer of ``module``, by sorted name: equal for equal
    weights on any device (a DDP rank check, and the proof that a frozen encoder never changed)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
