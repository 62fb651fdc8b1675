"""JEPA pretraining objective for SpectralEarth-FM.

One step, for a batch of locations:

1. **Target** -- the EMA target encoder sees the *global view* (the whole footprint, every sensor
   present) under ``no_grad``; its last-stage map is layer-normalised: (B, h*w, D).
2. **Context** -- the student views of :func:`~spectralearth_model.crops.draw_views` go through the
   context encoder: ``cfg.n_local_views`` single-sensor local views (one sensor per sample, drawn
   among the present ones with per-kind odds, a small aligned crop) and ``cfg.n_multi_views``
   multi-sensor views (a random subset of >= 2 present sensors), so the trainable fusion is
   trained on multi-sensor input too.
3. **Predict** -- a narrow transformer predictor gets the context tokens (with their positions in
   the full footprint) plus one mask token per target position and predicts the target map: from
   one sensor over a small area, the representation of all sensors over the whole footprint.
4. **Loss** -- smooth-L1 between predictions and targets (target cells outside the student's crop
   weighted by ``cfg.outside_weight``; optionally a second, shallow target: the target's first
   stage, ``cfg.shallow_weight``), plus an optional anti-collapse regulariser on the context token
   embeddings (``cfg.regulariser``: ``vicreg`` -- hinge on per-dimension std and off-diagonal
   covariance --, ``sigreg`` -- LeJEPA's isotropic-Gaussian test --, or ``none``). The issue-17
   probe benchmark chose the defaults: VICReg made every probe worse than the initialisation.

Views are drawn from the batch's per-sample ``view_seed`` when it has one (the loaders attach it;
see crops.py), else from torch's global RNG. Metrics are returned as detached tensors (no host
sync per step; the trainer converts the ones it logs). A *collapse monitor* (embedding std and
effective rank of target tokens, :func:`collapse_stats`) is added every ``cfg.monitor_every``
forward calls.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .crops import crop_batch, draw_views
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


def sigreg(z: torch.Tensor, n_dirs: int, generator: torch.Generator) -> torch.Tensor:
    """SIGReg (LeJEPA, Balestriero & LeCun 2025): how far embeddings z (n, D) are from an
    isotropic standard Gaussian, by an Epps-Pulley test on ``n_dirs`` random 1-D projections.

    For each unit direction a, the empirical characteristic function of ``z @ a`` is compared with
    the standard normal one, ``exp(-t^2/2)``, on t in [-4, 4], weighted by ``exp(-t^2/2)``:
    0 for N(0, 1) projections, large for collapsed (or shifted, or stretched) ones.
    """
    z = z.float()
    a = torch.randn(z.shape[1], n_dirs, generator=generator).to(z.device)
    x = z @ (a / a.norm(dim=0, keepdim=True))  # (n, M)
    t = torch.linspace(-4.0, 4.0, 17, device=z.device)
    xt = x[:, :, None] * t  # (n, M, T)
    phi = torch.exp(-0.5 * t**2)
    err = (xt.cos().mean(0) - phi) ** 2 + xt.sin().mean(0) ** 2  # (M, T)
    return (err * phi).mean()


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


def view_weights(h: int, w: int, top: int, left: int, size: int, outside: float, device) -> torch.Tensor:
    """(h*w,) loss weights of the target cells: 1 inside the student's ``size x size`` crop at
    (``top``, ``left``) (last-stage cells), ``outside`` elsewhere."""
    inside = torch.zeros(h, w, device=device)
    inside[top : top + size, left : left + size] = 1.0
    return (inside + outside * (1.0 - inside)).reshape(-1)


class Predictor(nn.Module):
    """Context tokens + positional mask tokens -> predicted target tokens.

    Args:
        enc_dim: width of the encoder's last stage (input and output).
        dim: predictor width.
        depth: predictor blocks.
        heads: attention heads.
        shallow_dim: also predict the target's first-stage (shallow) map of this width (0: no).
    """

    def __init__(self, enc_dim: int, dim: int, depth: int, heads: int, shallow_dim: int = 0) -> None:
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, enc_dim)
        self.out_shallow = nn.Linear(dim, shallow_dim) if shallow_dim else None

    def forward(self, ctx: torch.Tensor, ctx_origin: tuple[int, int], target_hw: tuple[int, int],
                shallow: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """ctx (B, D, hc, wc) at last-stage cells offset by ``ctx_origin`` -> (B, h*w, D), and with
        ``shallow`` also the shallow prediction (B, h*w, shallow_dim)."""
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
        hid = self.norm(seq[:, x.shape[1]:])
        if shallow:
            return self.out(hid), self.out_shallow(hid)
        return self.out(hid)


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
        self.predictor = Predictor(cfg.embed_dim, cfg.predictor_dim, cfg.predictor_depth, cfg.predictor_heads,
                                   cfg.dims[0] if cfg.shallow_weight > 0 else 0)
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
            maps = self.target_encoder.forward_intermediates(batch)
            tmap = maps[-1]  # (B, D, h, w)
            h, w = tmap.shape[-2:]
            target = F.layer_norm(tmap.flatten(2).transpose(1, 2), (tmap.shape[1],))  # (B, h*w, D)
            shallow = cfg.shallow_weight > 0
            if shallow:  # the first stage, pooled to the last stage's cells: (B, h*w, dims[0])
                s0 = F.avg_pool2d(maps[0], unit) if unit > 1 else maps[0]
                shallow_target = F.layer_norm(s0.flatten(2).transpose(1, 2), (s0.shape[1],))
        pred_losses, var_losses, cov_losses = [], [], []
        for v in draw_views(batch, cfg, grid):
            top, left = v.top, v.left
            view = crop_batch(batch, cfg, top, left, v.size, v.keep)
            ctx = self.encoder.forward_intermediates(view)[-1]  # (B, D, hc, wc)
            out = self.predictor(ctx, (top // unit, left // unit), (h, w), shallow=shallow)  # (B, h*w, D)
            pred = out[0] if shallow else out
            per_pos = F.smooth_l1_loss(pred.float(), target.float(), reduction="none").mean(dim=(0, 2))  # (h*w,)
            if shallow:
                per_pos = per_pos + cfg.shallow_weight * F.smooth_l1_loss(
                    out[1].float(), shallow_target.float(), reduction="none").mean(dim=(0, 2))
            weight = view_weights(h, w, top // unit, left // unit, v.size // unit, cfg.outside_weight, per_pos.device)
            pred_losses.append((per_pos * weight).sum() / weight.sum())
            z = ctx.flatten(2).transpose(1, 2).reshape(-1, ctx.shape[1])
            if cfg.regulariser == "sigreg":  # directions: a pure function of the call count (resume)
                v = sigreg(z, cfg.sigreg_dirs, torch.Generator().manual_seed(self._calls * 131 + len(var_losses)))
                c = torch.zeros((), device=z.device)
            elif cfg.regulariser == "vicreg":
                v, c = variance_covariance(z)
            else:  # none: the EMA target and the predictor alone keep the embeddings apart (I-JEPA)
                v = c = torch.zeros((), device=z.device)
            var_losses.append(v)
            cov_losses.append(c)
        pred_loss = torch.stack(pred_losses).mean()
        var_loss = torch.stack(var_losses).mean()
        cov_loss = torch.stack(cov_losses).mean()
        reg_weight = cfg.sigreg_weight if cfg.regulariser == "sigreg" else cfg.var_weight
        loss = pred_loss + reg_weight * var_loss + cfg.cov_weight * cov_loss
        metrics: dict = {
            "loss": loss.detach(),
            "pred_loss": pred_loss.detach(),
            "var_loss": var_loss.detach(),
            "cov_loss": cov_loss.detach(),
        }
        if cfg.monitor_every > 0 and self._calls % cfg.monitor_every == 0:
            metrics.update(collapse_stats(tmap.flatten(2).transpose(1, 2).reshape(-1, tmap.shape[1])))
        self._calls += 1
        return loss, metrics
