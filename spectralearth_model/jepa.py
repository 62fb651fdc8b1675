"""JEPA pretraining objective for SpectralEarth-FM.

One step, for a batch of locations:

1. **Target** -- the EMA target encoder sees the *global view* (the whole footprint, every sensor
   present) under ``no_grad``; its last-stage map is layer-normalised: (B, h*w, D).
2. **Context** -- ``cfg.n_local_views`` *local views*, each one sensor per sample (drawn among the
   present ones) and a small aligned crop, go through the context encoder.
3. **Predict** -- a narrow transformer predictor gets the context tokens (with their positions in
   the full footprint) plus one mask token per target position and predicts the target map: from
   one sensor over a small area, the representation of all sensors over the whole footprint.
4. **Loss** -- smooth-L1 between predictions and targets, plus a variance-covariance
   anti-collapse regulariser (VICReg-style hinge on per-dimension std, off-diagonal covariance)
   on the context token embeddings.

Views are sampled inside ``forward`` with torch's global RNG. A *collapse monitor* (embedding std
and effective rank of target tokens, :func:`collapse_stats`) is added to the metrics every
``cfg.monitor_every`` forward calls.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .crops import sample_local_view
from .layers import Block, grid_coords, sincos_2d
from .model import SpectralEarthEncoder, build_encoder


def variance_covariance(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg-style terms for embeddings z (n, D): hinge on per-dim std < 1, mean squared off-diagonal cov."""
    z = z.float()
    z = z - z.mean(dim=0)
    std = torch.sqrt(z.var(dim=0) + 1e-4)
    var_loss = F.relu(1.0 - std).mean()
    n, D = z.shape
    cov = (z.T @ z) / max(n - 1, 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return var_loss, off.pow(2).sum() / D


@torch.no_grad()
def collapse_stats(z: torch.Tensor) -> dict[str, float]:
    """Collapse monitor for embeddings z (n, D).

    * ``emb_std``: mean per-dimension std of the L2-normalised embeddings times sqrt(D) -- about 1
      for well-spread embeddings, 0 when every embedding is the same.
    * ``eff_rank``: effective rank exp(H(p)), p = normalised singular values of the centred matrix
      (Roy & Vetterli 2007) -- between 1 (collapsed to a line) and min(n, D).
    """
    z = z.float()
    zn = F.normalize(z, dim=1)
    emb_std = float(zn.std(dim=0).mean() * math.sqrt(z.shape[1]))
    s = torch.linalg.svdvals(z - z.mean(dim=0))
    p = s / s.sum().clamp(min=1e-12)
    entropy = -(p * torch.log(p.clamp(min=1e-12))).sum()
    return {"emb_std": emb_std, "eff_rank": float(entropy.exp())}


class Predictor(nn.Module):
    """Context tokens + positional mask tokens -> predicted target tokens.

    Args:
        enc_dim: width of the encoder's last stage (input and output).
        dim: predictor width.
        depth: predictor blocks.
        heads: attention heads.
    """

    def __init__(self, enc_dim: int, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, enc_dim)

    def forward(self, ctx: torch.Tensor, ctx_origin: tuple[int, int], target_hw: tuple[int, int]) -> torch.Tensor:
        """ctx (B, D, hc, wc) at last-stage cells offset by ``ctx_origin`` -> (B, h*w, D)."""
        B, _, hc, wc = ctx.shape
        x = self.embed(ctx.flatten(2).transpose(1, 2))  # (B, hc*wc, d)
        d = x.shape[-1]
        r, c = grid_coords(hc, wc, ctx_origin, 1.0, x.device)
        x = x + sincos_2d(r, c, d).to(x.dtype)
        r, c = grid_coords(target_hw[0], target_hw[1], (0, 0), 1.0, x.device)
        m = self.mask_token + sincos_2d(r, c, d).to(x.dtype)[None]  # (1, h*w, d)
        seq = torch.cat([x, m.expand(B, -1, -1)], dim=1)
        for blk in self.blocks:
            seq = blk(seq)
        return self.out(self.norm(seq[:, x.shape[1]:]))


class JEPA(nn.Module):
    """Context encoder + EMA target encoder + predictor; ``forward(batch) -> (loss, metrics)``.

    Args:
        cfg: model configuration.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder: SpectralEarthEncoder = build_encoder(cfg)
        # The loss reads only the last stage, so the output norms of the earlier stages (they exist
        # for dense heads, see forward_intermediates) would get no gradient. They are frozen at
        # identity while pretraining: every *trainable* parameter is then in every step's graph
        # and DDP needs no ``find_unused_parameters`` (tests/model/test_jepa.py checks it).
        for norm in self.encoder.encoder.norms[:-1]:
            norm.requires_grad_(False)
        self.target_encoder = copy.deepcopy(self.encoder)
        for p in self.target_encoder.parameters():
            p.requires_grad_(False)
        self.predictor = Predictor(cfg.embed_dim, cfg.predictor_dim, cfg.predictor_depth, cfg.predictor_heads)
        self._calls = 0

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * context encoder (training takes the
        momentum from its schedule, :func:`spectralearth_model.train.momentum_at`)."""
        for t, c in zip(self.target_encoder.parameters(), self.encoder.parameters()):
            t.lerp_(c.detach(), 1.0 - momentum)
        for t, c in zip(self.target_encoder.buffers(), self.encoder.buffers()):
            t.copy_(c)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        grid = self.encoder.embedder.grid_size(batch)
        unit = cfg.grid_unit
        with torch.no_grad():
            self.target_encoder.eval()
            tmap = self.target_encoder.forward_intermediates(batch)[-1]  # (B, D, h, w)
            h, w = tmap.shape[-2:]
            target = F.layer_norm(tmap.flatten(2).transpose(1, 2), (tmap.shape[1],))  # (B, h*w, D)
        pred_losses, var_losses, cov_losses = [], [], []
        for _ in range(cfg.n_local_views):
            view, (top, left, _) = sample_local_view(batch, cfg, grid)
            ctx = self.encoder.forward_intermediates(view)[-1]  # (B, D, hc, wc)
            pred = self.predictor(ctx, (top // unit, left // unit), (h, w))  # (B, h*w, D)
            pred_losses.append(F.smooth_l1_loss(pred.float(), target.float()))
            v, c = variance_covariance(ctx.flatten(2).transpose(1, 2).reshape(-1, ctx.shape[1]))
            var_losses.append(v)
            cov_losses.append(c)
        pred_loss = torch.stack(pred_losses).mean()
        var_loss = torch.stack(var_losses).mean()
        cov_loss = torch.stack(cov_losses).mean()
        loss = pred_loss + cfg.var_weight * var_loss + cfg.cov_weight * cov_loss
        metrics = {
            "loss": float(loss.detach()),
            "pred_loss": float(pred_loss.detach()),
            "var_loss": float(var_loss.detach()),
            "cov_loss": float(cov_loss.detach()),
        }
        if cfg.monitor_every > 0 and self._calls % cfg.monitor_every == 0:
            metrics.update(collapse_stats(tmap.flatten(2).transpose(1, 2).reshape(-1, tmap.shape[1])))
        self._calls += 1
        return loss, metrics
