"""JEPA view sampling on collated batches: spatial crops on the token grid and sensor subsets.

A step's views are a :class:`View` list drawn by :func:`draw_views`:

* ``cfg.n_local_views`` *single-sensor* views: one sensor per sample, drawn among the present ones
  with the odds ``cfg.view_weight`` gives its kind (so 1-band LST is not as frequent as EnMAP);
* ``cfg.n_multi_views`` *multi-sensor* views: a random subset of at least two present sensors per
  sample (all of them when fewer are present), so the trainable fusion sees several sensors at
  once and learns to fuse them (with single-sensor views only, multi-sensor input reached only
  the no-gradient target).

Randomness: when the batch carries ``view_seed`` (B,) int64 -- the loader's per-sample seeds,
pure functions of the stream position, different on every DDP rank -- each sample's sensor
choices come from its own seed and the crop positions from the batch's seeds, so the views are
reproducible from the data alone and a resume needs only the sampler position. Without it (a
hand-made batch) torch's global RNG is used. Crops are aligned to ``cfg.grid_unit`` tokens so a
crop's last-stage cells coincide with cells of the full-grid target; one crop position per view
is shared by the batch (the predictor takes one origin).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import ModelConfig


@dataclass(frozen=True)
class View:
    """One student view: the ``size x size``-token window at (``top``, ``left``) of the sensors
    ``keep`` (B, S) bool marks per sample."""

    top: int
    left: int
    size: int
    keep: torch.Tensor


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
        present = present & keep.to(present.device)
    o_r, o_c = batch.get("token_origin", (0, 0))
    return {"present": present, "sensors": sensors, "token_origin": (o_r + top, o_c + left)}


def crop_size(cfg: ModelConfig, grid: int, fraction: float) -> int:
    """Crop side in tokens: ``fraction`` of the grid, rounded to a multiple of ``cfg.grid_unit``."""
    unit = cfg.grid_unit
    return int(min(grid, max(unit, round(fraction * grid / unit) * unit)))


def one_sensor_each(present: torch.Tensor, u: torch.Tensor | None = None,
                    weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, S) bool: one sensor per sample among its present ones, with odds ``weights`` (S,)
    (default uniform); ``u`` (B, S) uniforms in (0, 1) (default: drawn from the global RNG).

    Weighted draw without replacement: the argmax of ``u ** (1 / w)`` (Efraimidis-Spirakis)."""
    present = present.bool()
    if u is None:
        u = torch.rand(present.shape, device=present.device)
    u = u.to(present.device).clamp(min=1e-12)
    scores = u.log() / weights.to(u) if weights is not None else u
    choice = scores.masked_fill(~present, -float("inf")).argmax(dim=1)
    keep = torch.zeros_like(present)
    keep[torch.arange(present.shape[0], device=present.device), choice] = True
    return keep & present


def sensor_subset(present: torch.Tensor, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, S) bool: per sample the ``k`` (B,) present sensors with the highest ``u`` (B, S)
    (all present ones when fewer)."""
    present = present.bool()
    scores = u.to(present.device).masked_fill(~present, -1.0)
    rank = scores.argsort(dim=1, descending=True).argsort(dim=1)  # 0 = highest
    return present & (rank < k.to(present.device)[:, None])


def _uniforms(seeds: torch.Tensor | None, n_views: int, S: int) -> tuple[torch.Tensor, torch.Generator | None]:
    """(B, n_views, 2, S) uniforms, per sample from its seed, and the batch's crop generator."""
    if seeds is None:
        return None, None  # type: ignore[return-value]
    seeds = [int(s) for s in seeds.tolist()]
    u = torch.stack([torch.rand(n_views, 2, S, generator=torch.Generator().manual_seed(s)) for s in seeds])
    g = torch.Generator().manual_seed(hash(tuple(seeds)) & 0x7FFFFFFFFFFFFFFF)
    return u, g


def draw_views(batch: dict, cfg: ModelConfig, grid: tuple[int, int]) -> list[View]:
    """The step's student views (single-sensor first, then multi-sensor), see the module doc."""
    present = batch["present"].bool()
    B, S = present.shape
    n_views = cfg.n_local_views + cfg.n_multi_views
    u, g = _uniforms(batch.get("view_seed"), n_views, S)
    if u is None:
        u = torch.rand(B, n_views, 2, S)
    u = u.to(present.device)  # (on the device: no host sync below)
    weights = torch.tensor([cfg.view_weight(n) for n in cfg.sensor_names], device=present.device)
    n_present = present.sum(dim=1)
    unit = cfg.grid_unit
    views = []
    for v in range(n_views):
        local = v < cfg.n_local_views
        size = crop_size(cfg, min(grid), cfg.local_crop if local else cfg.multi_crop)
        top = int(torch.randint(0, (grid[0] - size) // unit + 1, (), generator=g)) * unit
        left = int(torch.randint(0, (grid[1] - size) // unit + 1, (), generator=g)) * unit
        if local:
            keep = one_sensor_each(present, u[:, v, 0], weights)
        else:  # subset size uniform in 2 .. max(2, n_present - 1): never all of 3+ sensors
            hi = (n_present - 1).clamp(min=2)
            k = 2 + (u[:, v, 0, 0] * (hi - 1)).floor().long()
            keep = sensor_subset(present, u[:, v, 1], k)
        views.append(View(top, left, size, keep))
    return views


def sample_local_view(batch: dict, cfg: ModelConfig, grid: tuple[int, int]) -> tuple[dict, tuple[int, int, int]]:
    """A single-sensor local view (global RNG): one sensor per sample, uniform odds, a random
    aligned crop of ``cfg.local_crop`` of the grid. Returns the view batch and its (top, left, size)."""
    unit = cfg.grid_unit
    size = crop_size(cfg, min(grid), cfg.local_crop)
    top = int(torch.randint(0, (grid[0] - size) // unit + 1, ()).item()) * unit
    left = int(torch.randint(0, (grid[1] - size) // unit + 1, ()).item()) * unit
    keep = one_sensor_each(batch["present"])
    return crop_batch(batch, cfg, top, left, size, keep), (top, left, size)
