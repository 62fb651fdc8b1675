"""JEPA view sampling on collated batches: spatial crops on the token grid and sensor subsets.

Views are drawn with torch's *global* RNG (``torch.randint``/``torch.rand``), so a trainer's exact
resume only has to save and restore RNG states. Crops are aligned to ``cfg.grid_unit`` tokens so a
crop's last-stage cells coincide with cells of the full-grid target.
"""

from __future__ import annotations

import torch

from .config import ModelConfig


def crop_batch(batch: dict, cfg: ModelConfig, top: int, left: int, size: int, keep: torch.Tensor | None = None) -> dict:
    """The ``size x size``-token window at (``top``, ``left``) of every sensor in ``batch``.

    ``keep`` (B, S) bool further restricts which sensors count as present in the view.
    """
    sensors = {}
    for name, entry in batch["sensors"].items():
        p = cfg.patch_px(name)
        rows = slice(top * p, (top + size) * p)
        cols = slice(left * p, (left + size) * p)
        sensors[name] = {**entry, "data": entry["data"][..., rows, cols], "mask": entry["mask"][..., rows, cols]}
    present = batch["present"].bool()
    if keep is not None:
        present = present & keep
    o_r, o_c = batch.get("token_origin", (0, 0))
    return {"present": present, "sensors": sensors, "token_origin": (o_r + top, o_c + left)}


def crop_size(cfg: ModelConfig, grid: int, fraction: float) -> int:
    """Crop side in tokens: ``fraction`` of the grid, rounded to a multiple of ``cfg.grid_unit``."""
    unit = cfg.grid_unit
    return int(min(grid, max(unit, round(fraction * grid / unit) * unit)))


def one_sensor_each(present: torch.Tensor) -> torch.Tensor:
    """(B, S) bool: one sensor chosen uniformly among each sample's present sensors."""
    scores = torch.rand(present.shape, device=present.device).masked_fill(~present.bool(), -1.0)
    choice = scores.argmax(dim=1)
    keep = torch.zeros_like(present, dtype=torch.bool)
    keep[torch.arange(present.shape[0], device=present.device), choice] = True
    return keep & present.bool()


def sample_local_view(batch: dict, cfg: ModelConfig, grid: tuple[int, int]) -> tuple[dict, tuple[int, int, int]]:
    """A local view: one sensor per sample, a random aligned crop of ``cfg.local_crop`` of the grid.

    Returns the view batch and its (top, left, size) in tokens.
    """
    unit = cfg.grid_unit
    size = crop_size(cfg, min(grid), cfg.local_crop)
    top = int(torch.randint(0, (grid[0] - size) // unit + 1, ()).item()) * unit
    left = int(torch.randint(0, (grid[1] - size) // unit + 1, ()).item()) * unit
    keep = one_sensor_each(batch["present"])
    return crop_batch(batch, cfg, top, left, size, keep), (top, left, size)
