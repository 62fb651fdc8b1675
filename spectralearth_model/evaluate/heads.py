"""Heads trained on frozen features: linear probe, k-NN, a light UPerNet-style decoder, and a
sub-token head.

The linear probe and k-NN work on feature vectors (one per image for classification, one per
pixel for segmentation) and use scikit-learn, which is deterministic and needs no tuning loop.
The UPerNet-style head is the PANGAEA segmentation decoder in small: lateral 1x1 projections of
every encoder stage, a pyramid-pooling module on the coarsest stage, a top-down pathway, then all
levels upsampled to the finest, fused, and classified. The sub-token head predicts, for every
token, the classes of each of its ``r x r`` pixels (a learned pixel-shuffle upsampling from token
to label resolution), so an encoder with 120 m tokens is scored at the 30 m labels by a head that
can resolve inside a token rather than by a bilinear blur. Only the heads' weights are trained.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

HeadName = Literal["linear", "knn", "upernet", "subtoken"]
#: The probe heads of the harness (the one registry: the harness and the ``evaluate`` flow check against it).
HEADS: tuple[str, ...] = get_args(HeadName)
#: Heads that decode token maps to the label grid (segmentation tasks only).
MAP_HEADS = ("upernet", "subtoken")


# -- vector heads (scikit-learn) -----------------------------------------------------------------


def make_vector_head(head: str, kind: str, n_train: int, seed: int = 0, k: int = 5):
    """An sklearn estimator for ``head`` (linear|knn) and task ``kind``, standardising features."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    if head == "linear":
        if kind == "regression":
            est = Ridge(alpha=1.0)
        elif kind == "multilabel":
            est = OneVsRestClassifier(LogisticRegression(max_iter=2000, random_state=seed))
        else:
            est = LogisticRegression(max_iter=2000, random_state=seed)
        return make_pipeline(StandardScaler(), est)
    if head == "knn":
        n = max(1, min(k, n_train))
        # cosine k-NN (as in DINO-style evaluation): L2-normalise the standardised features
        est = KNeighborsRegressor(n) if kind == "regression" else KNeighborsClassifier(n)
        return make_pipeline(StandardScaler(), Normalizer(), est)
    raise ValueError(f"no vector head {head!r}")


def single_thread():
    """BLAS limited to one thread: these fits are small, and on a shared CPU many threads
    contend badly (measured 20x slower for a 1k x 192 logistic regression on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def fit_predict(head: str, kind: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                seed: int = 0) -> np.ndarray:
    """Fit a vector head on (N, D) features and predict the test features.

    For multilabel targets a label that is constant in the training set is predicted as that
    constant (logistic regression cannot be fit on one class).
    """
    with single_thread():
        return _fit_predict(head, kind, x_train, y_train, x_test, seed)


def _fit_predict(head: str, kind: str, x_train, y_train, x_test, seed: int) -> np.ndarray:
    if kind == "multilabel":
        y_train = np.asarray(y_train)
        pred = np.tile(y_train[0], (len(x_test), 1))
        vary = np.flatnonzero(y_train.min(0) != y_train.max(0))
        if vary.size:
            est = make_vector_head(head, kind, len(x_train), seed).fit(x_train, y_train[:, vary])
            pred[:, vary] = np.asarray(est.predict(x_test)).reshape(len(x_test), -1)
        return pred
    if kind != "regression" and len(np.unique(y_train)) == 1:
        return np.full(len(x_test), y_train[0])
    est = make_vector_head(head, kind, len(x_train), seed)
    return np.asarray(est.fit(x_train, y_train).predict(x_test))


# -- UPerNet-style segmentation head (torch) -----------------------------------------------------


class ConvNormAct(nn.Sequential):
    """Conv -> GroupNorm -> ReLU (GroupNorm: batches of one 1x1 pooled map must work)."""

    def __init__(self, c_in: int, c_out: int, k: int = 1) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.GroupNorm(8 if c_out % 8 == 0 else 1, c_out), nn.ReLU())


class PyramidPooling(nn.Module):
    """Pool the coarsest map at several grid sizes, project, upsample back and concatenate."""

    def __init__(self, c_in: int, width: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.bins = bins
        self.stages = nn.ModuleList(ConvNormAct(c_in, width) for _ in bins)
        self.out = ConvNormAct(c_in + width * len(bins), width, 3)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, h, w) -> (B, width, h, w)
        size = x.shape[-2:]
        pooled = [
            F.interpolate(stage(F.adaptive_avg_pool2d(x, b)), size=size, mode="bilinear", align_corners=False)
            for b, stage in zip(self.bins, self.stages)
        ]
        return self.out(torch.cat([x, *pooled], dim=1))


class UPerNetHead(nn.Module):
    """Light UPerNet: PPM on the coarsest stage, FPN top-down over all stages, fuse, classify.

    Args:
        in_dims: channels of each encoder stage, finest first (as ``forward_intermediates``).
        n_classes: number of output classes.
        width: channels inside the head (small on purpose: it is a probe, not a decoder zoo).
    """

    def __init__(self, in_dims: list[int], n_classes: int, width: int = 64) -> None:
        super().__init__()
        self.ppm = PyramidPooling(in_dims[-1], width)
        self.lateral = nn.ModuleList(ConvNormAct(d, width) for d in in_dims[:-1])
        self.smooth = nn.ModuleList(ConvNormAct(width, width, 3) for _ in in_dims[:-1])
        self.fuse = ConvNormAct(width * len(in_dims), width, 3)
        self.classify = nn.Conv2d(width, n_classes, 1)

    def forward(self, feats: list[Tensor], out_size: tuple[int, int]) -> Tensor:
        """Multi-scale maps [(B, D_i, H_i, W_i)] -> logits (B, K, *out_size)."""
        levels = [*(lat(f) for lat, f in zip(self.lateral, feats[:-1])), self.ppm(feats[-1])]
        for i in range(len(levels) - 2, -1, -1):  # top-down: add the coarser level, upsampled
            up = F.interpolate(levels[i + 1], size=levels[i].shape[-2:], mode="bilinear", align_corners=False)
            levels[i] = self.smooth[i](levels[i] + up)
        size = levels[0].shape[-2:]
        ups = [levels[0], *(F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in levels[1:])]
        logits = self.classify(self.fuse(torch.cat(ups, dim=1)))
        return F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)


class SubTokenHead(nn.Module):
    """Token maps -> per-pixel logits at ``factor`` x the token resolution (pixel shuffle).

    The coarser stages are upsampled to the finest token grid and concatenated, then standardised
    per channel with statistics of the training maps (:meth:`fit_input_stats`; PCA components and
    encoder channels differ in scale by orders of magnitude); a 1x1 projection and ReLU mix them;
    a 1x1 convolution gives ``n_classes * factor**2`` logits per token, which ``pixel_shuffle``
    lays out as the ``factor x factor`` pixels under that token.

    Args:
        in_dims: channels of each input map, finest first (as ``forward_intermediates``).
        n_classes: number of output classes.
        factor: label pixels per token side (``token_m / label gsd``, e.g. 120 m / 30 m = 4).
        width: channels of the mixing layer.
    """

    def __init__(self, in_dims: list[int], n_classes: int, factor: int, width: int = 64) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("mean", torch.zeros(1, sum(in_dims), 1, 1))
        self.register_buffer("std", torch.ones(1, sum(in_dims), 1, 1))
        self.mix = ConvNormAct(sum(in_dims), width)
        self.to_pixels = nn.Conv2d(width, n_classes * factor * factor, 1)

    @staticmethod
    def stack(feats: list[Tensor]) -> Tensor:
        """Maps [(B, D_i, h_i, w_i)] -> (B, sum D_i, h_0, w_0) on the finest token grid."""
        size = feats[0].shape[-2:]
        return torch.cat([feats[0], *(F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                                      for f in feats[1:])], dim=1)

    def fit_input_stats(self, batches: list[list[Tensor]]) -> SubTokenHead:
        """Per-channel mean and std of the (stacked) training maps, used to standardise inputs."""
        x = torch.cat([self.stack(fs).transpose(0, 1).flatten(1) for fs in batches], dim=1)  # (D, N)
        self.mean.copy_(x.mean(1).view_as(self.mean))
        self.std.copy_(x.std(1).clamp_min(1e-6).view_as(self.std))
        return self

    def forward(self, feats: list[Tensor], out_size: tuple[int, int]) -> Tensor:
        """Maps [(B, D_i, h_i, w_i)] -> logits (B, K, *out_size); the token grid covers ``out_size``."""
        x = (self.stack(feats) - self.mean) / self.std
        logits = F.pixel_shuffle(self.to_pixels(self.mix(x)), self.factor)  # (B, K, h*r, w*r)
        h, w = out_size
        if logits.shape[-2] < h or logits.shape[-1] < w:  # a grid short of the labels: stretch it
            return F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
        return logits[..., :h, :w]


def fit_map_head(
    head: nn.Module,
    feats: list[list[Tensor]],
    targets: list[Tensor],
    *,
    steps: int = 200,
    lr: float = 1e-3,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Train a map head (``head(maps, out_size) -> logits``) on cached frozen features.

    Args:
        feats: per batch, the list of multi-scale maps (finest first), already detached.
        targets: per batch, (B, H, W) int64 labels with -1 = ignore.
        steps: optimisation steps (cycling over the batches).
    """
    head = head.to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    head.train()
    for step in range(steps):
        i = step % len(feats)
        fs = [f.to(device) for f in feats[i]]
        y = targets[i].to(device)
        if (y >= 0).sum() == 0:
            continue
        loss = F.cross_entropy(head(fs, tuple(y.shape[-2:])), y, ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return head.eval()


def train_upernet(
    feats: list[list[Tensor]],
    targets: list[Tensor],
    n_classes: int,
    *,
    steps: int = 200,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> UPerNetHead:
    """Train a :class:`UPerNetHead` on cached frozen features (see :func:`fit_map_head`)."""
    torch.manual_seed(seed)
    head = UPerNetHead([f.shape[1] for f in feats[0]], n_classes)
    return fit_map_head(head, feats, targets, steps=steps, lr=lr, device=device)


def train_subtoken(
    feats: list[list[Tensor]],
    targets: list[Tensor],
    n_classes: int,
    factor: int,
    *,
    steps: int = 200,
    lr: float = 3e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> SubTokenHead:
    """Train a :class:`SubTokenHead` on cached frozen features (see :func:`fit_map_head`)."""
    torch.manual_seed(seed)
    head = SubTokenHead([f.shape[1] for f in feats[0]], n_classes, factor).fit_input_stats(feats)
    return fit_map_head(head, feats, targets, steps=steps, lr=lr, device=device)
