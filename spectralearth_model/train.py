"""Pretrain SpectralEarth-FM with JEPA on a release: plain PyTorch, one file, top to bottom.

build (model config, dataset, JEPA, AdamW) -> resume? -> loop: step (micro-batches, clip, AdamW)
-> EMA of the target encoder -> log -> checkpoint -> export the encoder.

Why a resumed run is *exact* (same loss curve as an uninterrupted one, on CPU):

* learning rate and EMA momentum are pure functions of the step (:func:`lr_at`, :func:`momentum_at`);
* the loader is an endless seeded stream whose sample at global position ``p`` depends only on
  ``(seed, p)`` (:class:`~spectralearth_model.data.ShardSampler`); a resume restarts it at the
  number of samples already consumed, and it never draws from the global torch RNG;
* the JEPA's views are drawn from per-sample seeds that are pure functions of the samples' global
  stream positions (:func:`view_seeds`; the synthetic stream attaches its own), so they differ
  between DDP ranks and a resume needs only the sampler position;
* the checkpoint holds the model (context, target, predictor), the optimizer, the step, the
  sampler position and every RNG state (torch, CUDA, numpy, python) of every rank (belt and
  braces: nothing in the step draws from them any more).

Training reads a release, or (``synthetic_cell_m``) an endless SYNTHESIZED stream
(:class:`~spectralearth_model.synthetic.SyntheticStream`). The run exports the EMA *target*
encoder as ``encoder.pt`` (the online one as ``encoder_online.pt``) and logs a probe monitor
(:class:`~spectralearth_model.probe.ProbeMonitor`) beside the loss and the collapse monitors.

Distributed runs come from ``torchrun`` (its environment variables): one process per device,
``gloo`` on CPU and ``nccl`` on GPU, each rank reading every ``world_size``-th sample. Only rank 0
writes files. DDP runs without ``find_unused_parameters``: every sensor encoder runs in every
forward (absent sensors as zero placeholders, see sensors.py) and the JEPA freezes the only
parameters its loss never reaches (the output norms of the non-final stages, see jepa.py).
bf16 autocast is used on CUDA only; CPU runs stay in float32 (and bitwise reproducible).
``stop_at`` ends an invocation early with a checkpoint (time-limited jobs); ``resume`` continues.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spectralearth_data.atomic import atomic_path
from spectralearth_data.errors import SpectralEarthError, describe_validation
from spectralearth_data.progress import progress_bar

from .data import AlignedAugment, ReleaseDataset, make_loader
from .probe import ProbeMonitor
from .runtime import resolve_device, weights_digest
from .synthetic import SyntheticStream

CHECKPOINT_FORMAT = "spectralearth-train/1"
CHECKPOINT_NAME = "checkpoint.pt"
ENCODER_NAME = "encoder.pt"
#: The online (context) encoder, exported beside the EMA target that ``encoder.pt`` holds.
ONLINE_ENCODER_NAME = "encoder_online.pt"
METRICS_NAME = "metrics.csv"

#: Config fields that may change between a run and its resume (they do not change the result).
_RESUMABLE = {"steps", "stop_at", "resume", "workers", "progress", "out", "checkpoint_every", "log_every",
              "release", "probe_every"}


class TrainError(SpectralEarthError):
    """A training run that cannot start or resume as asked."""


class TrainConfig(BaseModel):
    """Everything a training run needs; copied to ``<out>/config.json`` (its sha256 is the run id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    release: Path | None = Field(None, description="The <release>.zarr store to train on")
    synthetic_cell_m: float | None = Field(None, gt=0, description="Train on an endless SYNTHESIZED stream "
                                           "of cells this many metres wide instead of a release")
    out: Path = Field(description="Run folder: checkpoint, metrics, plots, exported encoder")
    preset: str = Field("tiny", description="Model preset (spectralearth_model.config.preset)")
    sensors: tuple[str, ...] | None = Field(None, description="Products to use (default: the preset's)")
    steps: int = Field(1000, ge=1, description="Total optimizer steps (the schedules span them)")
    batch_size: int = Field(8, ge=1, description="Samples per micro-batch per rank")
    accum_steps: int = Field(1, ge=1, description="Micro-batches accumulated per optimizer step")
    workers: int = Field(2, ge=0, description="DataLoader worker processes per rank")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate (after warmup; 1e-3 overwrote the "
                      "patch embeddings' init within a few hundred steps, issue 17)")
    min_lr: float = Field(1e-5, ge=0, description="Learning rate at the end of the cosine")
    warmup_steps: int = Field(100, ge=0, description="Linear warmup steps (capped at steps // 2)")
    weight_decay: float = Field(0.05, ge=0, description="AdamW decay of weight matrices (not biases/norms)")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the global gradient norm (None: off)")
    ema_start: float | None = Field(None, ge=0, le=1, description="EMA momentum at step 0 (None: model's)")
    ema_end: float | None = Field(None, ge=0, le=1, description="EMA momentum at the end (None: model's)")
    checkpoint_every: int = Field(100, ge=1, description="Write the checkpoint every N steps (and at the end)")
    log_every: int = Field(1, ge=1, description="Write a metrics row every N steps")
    seed: int = Field(0, description="Seeds the model init, the sample stream and the views")
    crop_m: float | None = Field(None, gt=0, description="Aligned random crop (m) of every product; None: none")
    flip: bool = Field(True, description="Aligned random flips")
    rot90: bool = Field(True, description="Aligned random 90-degree rotations")
    device: str = Field("auto", description="auto (CUDA if available), cpu, cuda")
    resume: bool = Field(False, description="Continue from <out>/checkpoint.pt")
    progress: bool = Field(True, description="Show a progress bar (rank 0)")
    stop_at: int | None = Field(None, ge=1, description="End this invocation after step N with a checkpoint "
                                "(a time-limited job); continue later with resume. None: run to steps")
    probe_every: int = Field(100, ge=0, description="Log the probe monitor (linear token probe of the EMA "
                             "target on held-out SYNTHESIZED ground truth) every N steps and at the end; 0: off")
    model_overrides: dict[str, Any] = Field(default_factory=dict, description="Model config fields that "
                                            "replace the preset's (e.g. {'n_local_views': 1}; ablations)")

    @model_validator(mode="after")
    def _one_source(self) -> TrainConfig:
        if (self.release is None) == (self.synthetic_cell_m is None):
            raise ValueError("give exactly one of release (a <release>.zarr) or synthetic_cell_m "
                             "(an endless SYNTHESIZED stream)")
        return self

    @classmethod
    def make(cls, **kw: Any) -> TrainConfig:
        """Validate keyword settings; a bad value is one :class:`TrainError` naming the field."""
        try:
            return cls(**kw)
        except ValidationError as e:
            raise TrainError(describe_validation(e, "training config")) from None

    def config_id(self) -> str:
        """sha256 (16 hex) of the sorted-key JSON of the settings that change the result."""
        d = {k: v for k, v in self.model_dump(mode="json").items() if k not in _RESUMABLE}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrainSummary:
    """What a run did (rank 0's view); also written to ``<out>/summary.json``."""

    out: Path
    #: The step this invocation ended at (``cfg.steps``, or ``cfg.stop_at`` when it stopped early).
    steps: int
    start_step: int
    final_loss: float
    samples_seen: int
    seconds: float
    data_wait_fraction: float
    world_size: int
    device: str
    checkpoint: Path
    encoder: Path
    metrics_csv: Path
    plot: Path | None
    rank_param_digests: list[str]
    #: The run's planned total (the schedules span it).
    total_steps: int = 0


# -- schedules (pure functions of the step) -------------------------------------------------------


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``cfg.lr`` over the warmup steps, then cosine down to ``cfg.min_lr``."""
    warm = min(cfg.warmup_steps, cfg.steps // 2)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(cfg.steps - warm - 1, 1)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * min(t, 1.0)))


def momentum_at(step: int, total: int, start: float, end: float) -> float:
    """EMA momentum: cosine from ``start`` at step 0 to ``end`` at the last step."""
    t = step / max(total - 1, 1)
    return end - (end - start) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


# -- distributed + device -------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def _init_distributed(device_kind: str) -> Dist:
    """Join the process group torchrun describes in the environment (a no-op when run plainly)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as tdist

    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return Dist(tdist.get_rank(), tdist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _device_kind(name: str) -> str:
    name = resolve_device(name)
    if name not in ("cpu", "cuda"):
        raise TrainError(f"device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainError("device cuda was asked for but no CUDA device is available")
    return name


# -- checkpoint -----------------------------------------------------------------------------------


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over ``path``.

    A reader (or a resume after a kill) sees either the previous checkpoint or the new one,
    never a torn file.
    """
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def load_checkpoint(out: Path, cfg: TrainConfig) -> dict[str, Any]:
    """The checkpoint in ``out``, checked against ``cfg`` (same run settings, same format)."""
    path = out / CHECKPOINT_NAME
    if not path.exists():
        raise TrainError(f"--resume: no {CHECKPOINT_NAME} in {out}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise TrainError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    saved = ckpt["config"]
    now = cfg.model_dump(mode="json")
    changed = sorted(k for k in now if k not in _RESUMABLE and saved.get(k) != now[k])
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        raise TrainError(f"{path}: cannot resume with changed settings ({detail})")
    if ckpt["step"] > cfg.steps:
        raise TrainError(f"{path}: checkpoint is at step {ckpt['step']}, beyond --steps {cfg.steps}")
    return ckpt


# -- metrics --------------------------------------------------------------------------------------


class MetricsLog:
    """Rows of ``metrics.csv`` (and TensorBoard scalars when tensorboard is installed)."""

    def __init__(self, out: Path, keep_until: int | None) -> None:
        self.path = out / METRICS_NAME
        self.rows: list[dict[str, float]] = []
        if keep_until is not None and self.path.exists():  # resume: drop rows past the checkpoint
            with open(self.path, newline="") as f:
                self.rows = [{k: (int(v) if k == "step" else float(v)) for k, v in r.items() if v != ""}
                             for r in csv.DictReader(f)]
            self.rows = [r for r in self.rows if r["step"] <= keep_until]
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:  # tensorboard is optional
            pass

    def add(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "step":
                    self.tb.add_scalar(k, v, int(row["step"]))

    def flush(self) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        with atomic_path(self.path, durable=False) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for r in self.rows:
                w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        if self.tb is not None:
            self.tb.flush()


#: metrics.png panels after the loss: (title, metric keys containing one of these, y label).
_PANELS = (("collapse: embedding std", ("emb_std",), "std x sqrt(D)"),
           ("collapse: effective rank", ("eff_rank",), "effective rank"),
           ("probe monitor (held-out SYNTHESIZED)", ("probe_oa",), "linear token probe OA"))


def plot_metrics(rows: list[dict[str, float]], path: Path) -> Path | None:
    """PNG: the loss (and learning rate), then each collapse monitor and the probe monitor on
    their own axes (their scales differ by orders of magnitude)."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 1 + len(_PANELS), figsize=(5 * (1 + len(_PANELS)), 4))
    axes[0].plot(steps, [r["loss"] for r in rows], label="loss")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss")
    axes[0].set_title("JEPA loss")
    ax2 = axes[0].twinx()
    ax2.plot(steps, [r["lr"] for r in rows], color="grey", alpha=0.5, label="lr")
    ax2.set_ylabel("learning rate")
    for ax, (title, tags, ylabel) in zip(axes[1:], _PANELS):
        keys = sorted({k for r in rows for k in r if any(t in k for t in tags)})
        for k in keys:
            pts = [(r["step"], r[k]) for r in rows if k in r and math.isfinite(r[k])]
            if pts:
                ax.plot(*zip(*pts), marker=".", label=k)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.set_title(title if keys else f"{title} (none reported)")
        if keys:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- the run --------------------------------------------------------------------------------------


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay weight matrices only; biases, norms and embeddings-as-vectors are not decayed."""
    decay, keep = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else keep).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return batch
    sensors = {
        s: {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in d.items()}
        for s, d in batch["sensors"].items()
    }
    out = {"present": batch["present"].to(device, non_blocking=True), "sensors": sensors}
    if "view_seed" in batch:  # view seeds stay on the host: views are drawn with CPU generators
        out["view_seed"] = batch["view_seed"]
    return out


#: Mixed into the sample seeds of the views so they differ from the augmentation's seeds.
_VIEW_SALT = 0x5EED_71E3


def view_seeds(batch_no: int, batch_size: int, seed: int, rank: int, world_size: int) -> torch.Tensor:
    """(batch_size,) int64 view seeds of this rank's ``batch_no``-th batch of the run: sample ``j``
    is the stream's global position ``(batch_no * batch_size + j) * world_size + rank``."""
    from .data import idx_seed

    base = (batch_no * batch_size) * world_size + rank
    return torch.tensor([idx_seed(base + j * world_size, seed ^ _VIEW_SALT) for j in range(batch_size)])


def _gather(obj: Any, dist: Dist) -> list[Any]:
    if not dist.active:
        return [obj]
    import torch.distributed as tdist

    out: list[Any] = [None] * dist.world_size
    tdist.all_gather_object(out, obj)
    return out


def _check_out(cfg: TrainConfig) -> None:
    if not cfg.resume and (cfg.out / CHECKPOINT_NAME).exists():
        raise TrainError(
            f"{cfg.out} already holds a run ({CHECKPOINT_NAME}); pass --resume or choose another --out"
        )


def train(cfg: TrainConfig) -> TrainSummary:
    """Run (or resume) JEPA pretraining as ``cfg`` says; returns rank 0's :class:`TrainSummary`."""
    from .checkpoint import save_encoder
    from .config import preset
    from .jepa import JEPA

    t_start = time.perf_counter()
    kind = _device_kind(cfg.device)
    dist = _init_distributed(kind)
    device = torch.device(f"cuda:{dist.local_rank}" if kind == "cuda" else "cpu")
    if kind == "cuda":
        torch.cuda.set_device(device)
    _check_out(cfg)

    # -- build
    model_cfg = preset(cfg.preset, sensors=cfg.sensors, **cfg.model_overrides)
    dataset = None
    if cfg.release is not None:
        augment = AlignedAugment(cfg.crop_m, cfg.flip, cfg.rot90) if (cfg.crop_m or cfg.flip or cfg.rot90) else None
        dataset = ReleaseDataset(cfg.release, model_cfg.sensor_names, augment=augment)
    probe = ProbeMonitor(model_cfg) if cfg.probe_every and dist.main else None
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    jepa = JEPA(model_cfg).to(device)
    opt = torch.optim.AdamW(_param_groups(jepa, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95))
    ema = (cfg.ema_start if cfg.ema_start is not None else model_cfg.ema_start,
           cfg.ema_end if cfg.ema_end is not None else model_cfg.ema_end)

    # -- resume
    start_step, consumed, ckpt = 0, 0, None
    if cfg.resume:
        ckpt = load_checkpoint(cfg.out, cfg)
        if ckpt["world_size"] != dist.world_size:
            raise TrainError(f"checkpoint was written by {ckpt['world_size']} ranks; this run has {dist.world_size}")
        jepa.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_step, consumed = ckpt["step"], ckpt["samples_consumed"]
        if "model_calls" in ckpt:  # the JEPA's monitor cadence counter is not in its state_dict
            jepa._calls = ckpt["model_calls"]
    end = min(cfg.steps, cfg.stop_at or cfg.steps)  # this invocation's last step
    if cfg.stop_at is not None and end <= start_step:
        raise TrainError(f"--stop-at {cfg.stop_at}: the run is already at step {start_step}")
    # (resuming a finished run trains nothing and exports the encoder again: reruns are idempotent)
    if dist.main:
        cfg.out.mkdir(parents=True, exist_ok=True)
        (cfg.out / "config.json").write_text(json.dumps(
            {"config_id": cfg.config_id(), "train": cfg.model_dump(mode="json"), "model": model_cfg.to_dict()},
            indent=1))

    model: torch.nn.Module = jepa
    if dist.active:
        model = torch.nn.parallel.DistributedDataParallel(
            jepa, device_ids=[device.index] if kind == "cuda" else None)  # every trainable param is used
    if dataset is not None:
        loader = make_loader(dataset, cfg.batch_size, workers=cfg.workers, seed=cfg.seed,
                             rank=dist.rank, world_size=dist.world_size, start=consumed)
    else:  # stream positions count batches over all ranks
        loader = SyntheticStream(model_cfg, cfg.batch_size, cfg.synthetic_cell_m, seed=cfg.seed,
                                 rank=dist.rank, world_size=dist.world_size, start=consumed // cfg.batch_size)
    batches = iter(loader)
    if ckpt is not None:
        _set_rng_state(ckpt["rng"][dist.rank])
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if kind == "cuda" else nullcontext)
    per_step = cfg.batch_size * cfg.accum_steps * dist.world_size
    log = MetricsLog(cfg.out, keep_until=start_step if cfg.resume else None) if dist.main else None

    # -- loop (under the progress bar of rank 0)
    with progress_bar(cfg.progress and dist.main, cfg.steps, "train",
                      completed=start_step, notes=True) as advance:
        wait_s = loop_s = 0.0
        loss_value = float("nan")
        for step in range(start_step, end):
            t0 = time.perf_counter()
            lr = lr_at(step, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            step_wait, losses, metrics = 0.0, [], {}
            for micro in range(cfg.accum_steps):
                tw = time.perf_counter()
                batch = next(batches)
                if "view_seed" not in batch:  # (a release batch; the synthetic stream seeds its own)
                    batch_no = consumed // (cfg.batch_size * dist.world_size) + (step - start_step) * cfg.accum_steps + micro
                    batch["view_seed"] = view_seeds(batch_no, batch["present"].shape[0], cfg.seed, dist.rank,
                                                    dist.world_size)
                batch = _to_device(batch, device)
                step_wait += time.perf_counter() - tw
                sync = model.no_sync() if dist.active and micro < cfg.accum_steps - 1 else nullcontext()
                with sync, autocast():
                    loss, micro_metrics = model(batch)
                metrics.update(micro_metrics)  # monitors come only every few forward calls
                (loss / cfg.accum_steps).backward()
                losses.append(loss.detach().float())
            grad_norm = torch.nn.utils.clip_grad_norm_(
                jepa.parameters(), cfg.grad_clip if cfg.grad_clip is not None else float("inf"))
            opt.step()
            opt.zero_grad(set_to_none=True)
            mom = momentum_at(step, cfg.steps, *ema)
            jepa.update_target(mom)
            loss_t = torch.stack(losses).mean()
            if dist.active:
                import torch.distributed as tdist

                tdist.all_reduce(loss_t)
                loss_t /= dist.world_size
            loss_value = float(loss_t)
            step_s = time.perf_counter() - t0
            wait_s, loop_s = wait_s + step_wait, loop_s + step_s
            done = step + 1
            if probe is not None and (done % cfg.probe_every == 0 or done == end):
                metrics.update(probe(jepa.target_encoder))
            if log is not None and (done % cfg.log_every == 0 or done == end):
                log.add({"step": done, **{k: float(v) for k, v in metrics.items()}, "loss": loss_value, "lr": lr,
                         "momentum": mom, "grad_norm": float(grad_norm), "data_s": step_wait, "step_s": step_s,
                         "samples_per_s": per_step / step_s})
            advance(1, note=f"loss={loss_value:.4f} lr={lr:.2e} wait={wait_s / loop_s:.0%}")
            if done % cfg.checkpoint_every == 0 or done == end:
                rngs = _gather(_rng_state(), dist)
                if dist.main:
                    log.flush()  # before the checkpoint: a kill between the two loses no metrics row
                    save_atomic({
                        "format": CHECKPOINT_FORMAT, "config": cfg.model_dump(mode="json"),
                        "model_config": model_cfg.to_dict(), "model": jepa.state_dict(),
                        "optimizer": opt.state_dict(), "step": done,
                        "samples_consumed": consumed + (done - start_step) * per_step,
                        "world_size": dist.world_size, "rng": rngs,
                        "model_calls": getattr(jepa, "_calls", 0),
                    }, cfg.out / CHECKPOINT_NAME)

    # -- export
    digests = _gather(weights_digest(jepa)[:16], dist)
    summary = TrainSummary(
        out=cfg.out, steps=end, start_step=start_step, final_loss=loss_value,
        samples_seen=consumed + (end - start_step) * per_step,
        seconds=time.perf_counter() - t_start,
        data_wait_fraction=wait_s / loop_s if loop_s else 0.0,
        world_size=dist.world_size, device=str(device),
        checkpoint=cfg.out / CHECKPOINT_NAME, encoder=cfg.out / ENCODER_NAME,
        metrics_csv=cfg.out / METRICS_NAME, plot=None, rank_param_digests=digests,
        total_steps=cfg.steps,
    )
    if dist.main:
        # the EMA target is the export (it probes better than the online encoder); the online one
        # is kept beside it, labelled
        save_encoder(cfg.out / ENCODER_NAME, jepa.target_encoder, model_cfg)
        save_encoder(cfg.out / ONLINE_ENCODER_NAME, jepa.encoder, model_cfg)
        summary.plot = plot_metrics(log.rows, cfg.out / "metrics.png")
        (cfg.out / "summary.json").write_text(json.dumps(
            {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(summary).items()},
            indent=1))
    if dist.active:
        import torch.distributed as tdist

        tdist.barrier()
        tdist.destroy_process_group()
    return summary
