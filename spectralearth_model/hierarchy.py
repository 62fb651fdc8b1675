"""Shared hierarchical encoder: Hiera/Swin-like stages with 2x2 token pooling between them.

Stage ``i`` runs ``depths[i]`` global-attention blocks at width ``dims[i]`` on an
``(H / 2^i) x (W / 2^i)`` token grid; between stages a :class:`TokenPool` projects to the next
width and max-pools 2x2 tokens (as Hiera's pooling). Every stage's normalised output is returned
as a (B, D_i, H_i, W_i) map for dense heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Block


class TokenPool(nn.Module):
    """(B, H, W, D_in) -> (B, H/2, W/2, D_out): norm, linear projection, 2x2 max-pool."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim_in)
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(self.norm(x)).permute(0, 3, 1, 2)  # (B, D, H, W)
        return F.max_pool2d(x, 2).permute(0, 2, 3, 1)


class HierarchicalEncoder(nn.Module):
    """Token grid (B, H, W, dims[0]) -> list of stage maps (B, dims[i], H/2^i, W/2^i).

    Args:
        dims: width per stage.
        depths: blocks per stage.
        heads: attention heads per stage.
        mlp_ratio: MLP width ratio of every block.
    """

    def __init__(self, dims: tuple[int, ...], depths: tuple[int, ...], heads: tuple[int, ...], mlp_ratio: float) -> None:
        super().__init__()
        self.pools = nn.ModuleList(
            [nn.Identity()] + [TokenPool(dims[i - 1], dims[i]) for i in range(1, len(dims))]
        )
        self.stages = nn.ModuleList(
            [nn.ModuleList([Block(d, h, mlp_ratio) for _ in range(n)]) for d, n, h in zip(dims, depths, heads)]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(d) for d in dims])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for pool, blocks, norm in zip(self.pools, self.stages, self.norms):
            x = pool(x)
            B, H, W, D = x.shape
            t = x.reshape(B, H * W, D)
            for blk in blocks:
                t = blk(t)
            x = t.view(B, H, W, D)
            outs.append(norm(x).permute(0, 3, 1, 2))  # (B, D, H, W)
        return outs
