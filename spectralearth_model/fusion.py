"""Cross-sensor fusion: per token location, attention across the sensors present.

At each of the N token locations the S sensor tokens plus one learned *fusion query* form a short
sequence (length S + 1). A few pre-norm blocks attend within it with a key mask that hides absent
sensors (sensor missing from the sample, or every pixel of the token unusable); the query's output
is the fused token. The query is always a valid key, so a location with one sensor -- or none --
never has an all-masked softmax row and cannot produce NaN: with no sensor it yields the learned
"nothing observed" token.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import Block


class SensorFusion(nn.Module):
    """(B, S, N, D) sensor tokens + (B, S, N) presence -> (B, N, D) fused tokens.

    Args:
        dim: token width.
        depth: fusion blocks.
        heads: attention heads.
    """

    def __init__(self, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        if depth < 1:
            raise ValueError("fusion needs at least one block")
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio=2.0) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        B, S, N, D = tokens.shape
        x = tokens.permute(0, 2, 1, 3).reshape(B * N, S, D)  # (B*N, S, D)
        keep = present.permute(0, 2, 1).reshape(B * N, S)  # (B*N, S)
        x = torch.cat([self.query.expand(B * N, 1, D), x], dim=1)  # (B*N, 1+S, D)
        keep = torch.cat([keep.new_ones(B * N, 1), keep], dim=1)
        attn_mask = keep[:, None, None, :]  # (B*N, 1, 1, 1+S), True = attend
        for blk in self.blocks[:-1]:
            x = blk(x, attn_mask)
        # only the query's output is used: the last block computes that row alone (same values,
        # about 1/(1+S) of the block's attention-output and MLP cost)
        x = self.blocks[-1](x, attn_mask, n_query=1)  # (B*N, 1, D)
        return self.norm(x[:, 0]).view(B, N, D)
