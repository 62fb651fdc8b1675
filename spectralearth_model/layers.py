"""Transformer building blocks shared by the fusion, encoder and predictor: pre-norm residual blocks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention (PyTorch SDPA).

    Args:
        dim: token width.
        heads: attention heads (``dim`` must divide).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, n_query: int | None = None
    ) -> torch.Tensor:
        """x (B, N, D) -> (B, Q, D): every token attends (``n_query=None``, Q = N) or only the first
        ``n_query`` tokens do, still attending to all N keys."""
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        if n_query is not None:
            q = q[:, :, :n_query]
        # attn_mask: bool (B, 1, 1, N), True = may attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, h, Q, d)
        return self.proj(out.transpose(1, 2).reshape(B, q.shape[2], D))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``.

    Args:
        dim: token width.
        heads: attention heads.
        mlp_ratio: hidden width of the MLP relative to ``dim``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, n_query: int | None = None
    ) -> torch.Tensor:
        """(B, N, D) -> (B, N, D), or (B, n_query, D): the first ``n_query`` tokens' outputs only,
        exactly as the full block computes them (for a last block whose other outputs are unused)."""
        if n_query is not None:
            x_q = x[:, :n_query]
            x_q = x_q + self.attn(self.norm1(x), attn_mask, n_query)
            return x_q + self.mlp(self.norm2(x_q))
        x = x + self.attn(self.norm1(x), attn_mask)
        return x + self.mlp(self.norm2(x))


def sincos_2d(rows: torch.Tensor, cols: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position encoding for token coordinates.

    ``rows``/``cols`` are float tensors of shape (N,) in token units of the *full* footprint, so a
    crop keeps the positions it had in the uncropped grid. Returns (N, dim).
    """
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, device=rows.device, dtype=torch.float32) / quarter))
    r = rows[:, None].float() * omega[None]
    c = cols[:, None].float() * omega[None]
    out = torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=1)
    if out.shape[1] < dim:  # dim not a multiple of 4
        out = F.pad(out, (0, dim - out.shape[1]))
    return out


def grid_coords(h: int, w: int, origin: tuple[float, float], step: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row/col coordinates (flattened, row-major) of an ``h x w`` grid whose cells are ``step``
    input tokens wide and whose first cell starts at ``origin`` (input-token units)."""
    r = origin[0] + step * (torch.arange(h, device=device, dtype=torch.float32) + 0.5) - 0.5
    c = origin[1] + step * (torch.arange(w, device=device, dtype=torch.float32) + 0.5) - 0.5
    rr, cc = torch.meshgrid(r, c, indexing="ij")
    return rr.reshape(-1), cc.reshape(-1)


def fourier_features(x: torch.Tensor, n: int, max_period: float = 1000.0) -> torch.Tensor:
    """Sinusoidal features of a 1-D tensor x (C,) -> (C, 2n)."""
    freqs = torch.exp(-math.log(max_period) * torch.arange(n, device=x.device, dtype=torch.float32) / max(n - 1, 1))
    a = x[:, None].float() * freqs[None] * 2 * math.pi
    return torch.cat([a.sin(), a.cos()], dim=1)
