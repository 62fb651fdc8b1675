"""Token probes on SYNTHESIZED ground truth: does an encoder's per-token feature know the land cover?

Used two ways: as the training run's cheap *probe monitor* (:class:`ProbeMonitor`, logged with
the loss: collapse monitors cannot see information loss, a probe can) and by
``benchmarks/pretrain_probe.py``. The ground truth is the dominant endmember of each 120 m token of
:class:`~spectralearth_model.synthetic.SyntheticScenes` locations that training never sees
(their generator seeds are disjoint from the training stream's).

Per-token features (:func:`token_features`) are every stage's map brought back to token
resolution (nearest upsampling) and concatenated, the input a dense head gets. The probes are a
closed-form ridge classifier on standardised features (:func:`linear_probe`) and a cosine kNN
(:func:`knn_probe`): no optimiser, deterministic, well under a second on CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import ModelConfig
from .synthetic import SyntheticScenes

#: Generator seeds of held-out probe locations start here (the training stream uses SplitMix
#: seeds of its positions; a collision with this range is astronomically unlikely).
HELD_OUT_SEED = 7_000_000


def only_sensors(batch: dict, cfg: ModelConfig, names: tuple[str, ...] | None) -> dict:
    """``batch`` with only the sensors ``names`` present (None: unchanged)."""
    if names is None:
        return batch
    keep = torch.tensor([s in names for s in cfg.sensor_names], device=batch["present"].device)
    return {**batch, "present": batch["present"].bool() & keep[None]}


@torch.no_grad()
def token_features(encoder: torch.nn.Module, batch: dict) -> torch.Tensor:
    """(B*h*w, sum D_i) per-token features: every stage map upsampled to the token grid."""
    maps = encoder.forward_intermediates(batch)
    h, w = maps[0].shape[-2:]
    up = [m if m.shape[-2:] == (h, w) else F.interpolate(m, size=(h, w), mode="nearest") for m in maps]
    x = torch.cat(up, dim=1).float()  # (B, D, h, w)
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu, sd = train.mean(0), train.std(0).clamp(min=1e-6) if len(train) > 1 else torch.ones(train.shape[1])
    return (train - mu) / sd, (test - mu) / sd


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 n_classes: int, ridge: float = 1.0) -> float:
    """Overall accuracy of a ridge classifier (one-hot targets, closed form) fit on train, scored on test."""
    a, b = _standardise(train_x.double(), test_x.double())
    a = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1)
    b = torch.cat([b, torch.ones(len(b), 1, dtype=b.dtype)], 1)
    y = F.one_hot(train_y, n_classes).double()
    reg = ridge * torch.eye(a.shape[1], dtype=a.dtype)
    reg[-1, -1] = 0.0
    w = torch.linalg.solve(a.T @ a + reg, a.T @ y)
    return float((b @ w).argmax(1).eq(test_y).double().mean())


def knn_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
              n_classes: int, k: int = 5) -> float:
    """Overall accuracy of a cosine k-nearest-neighbour vote (standardised features)."""
    a, b = _standardise(train_x.float(), test_x.float())
    sim = F.normalize(b, dim=1) @ F.normalize(a, dim=1).T
    k = min(k, len(a))
    idx = sim.topk(k, dim=1).indices
    votes = F.one_hot(train_y[idx], n_classes).sum(1)
    return float(votes.argmax(1).eq(test_y).float().mean())


class ProbeMonitor:
    """Held-out labelled synthetic locations + a linear token probe, for the training log.

    ``__call__(encoder)`` returns ``{"probe_oa_all": ..., "probe_oa_<sensor>": ...}``: the probe is
    fit on the first half of the locations and scored on the second half, per input (all sensors
    and each sensor alone).

    Args:
        cfg: model configuration.
        locations: held-out locations (half fit, half scored).
        cell_m: location size (m).
        scene_seed: endmember seed of the scenes (the training stream's, for a synthetic run).
    """

    def __init__(self, cfg: ModelConfig, locations: int = 16, cell_m: float = 960.0, scene_seed: int = 0) -> None:
        self.cfg = cfg
        scenes = SyntheticScenes(cfg, seed=scene_seed)
        self.n_classes = scenes.spectra.shape[0]
        self.batch, labels = scenes.labelled_batch(locations, cell_m, torch.Generator().manual_seed(HELD_OUT_SEED))
        self.labels = labels.reshape(-1)
        self.split = (locations // 2) * labels.shape[1] * labels.shape[2]

    @torch.no_grad()
    def __call__(self, encoder: torch.nn.Module) -> dict[str, float]:
        was_training = encoder.training
        encoder.eval()
        device = next(encoder.parameters()).device
        batch = _batch_to(self.batch, device)
        out = {}
        for name in (None, *self.cfg.sensor_names):
            x = token_features(encoder, only_sensors(batch, self.cfg, None if name is None else (name,))).cpu()
            y, n = self.labels, self.split
            out[f"probe_oa_{name or 'all'}"] = linear_probe(x[:n], y[:n], x[n:], y[n:], self.n_classes)
        encoder.train(was_training)
        return out


def _batch_to(batch: dict, device: torch.device) -> dict:
    if device.type == "cpu":
        return batch
    sensors = {s: {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in e.items()}
               for s, e in batch["sensors"].items()}
    return {**batch, "present": batch["present"].to(device), "sensors": sensors}
