"""``spectralearth train``: JEPA pretraining of SpectralEarth-FM on a release.

Thin: :class:`spectralearth_model.train.TrainConfig` validates the options and
:func:`spectralearth_model.train.train` does the work. Under ``torchrun`` every rank runs this
command; only rank 0 prints. Heavy imports (torch) stay inside the function.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer


def train(
    out: Annotated[Path, typer.Option("--out", help="Run folder (checkpoint, metrics.csv/png, encoder.pt).")],
    release: Annotated[Path | None, typer.Option("--release", help="The <release>.zarr store to train on.")] = None,
    synthetic_cell_m: Annotated[float | None, typer.Option(
        "--synthetic-cell-m", help="Instead of a release: an endless SYNTHESIZED stream of cells this wide (m).")] = None,
    probe_every: Annotated[int, typer.Option(
        "--probe-every", help="Probe monitor (held-out SYNTHESIZED ground truth) every N steps; 0: off.")] = 100,
    preset: Annotated[str, typer.Option("--preset", help="Model preset: tiny, small, base.")] = "tiny",
    steps: Annotated[int, typer.Option("--steps", help="Total optimizer steps.")] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per micro-batch per rank.")] = 8,
    workers: Annotated[int, typer.Option("--workers", help="DataLoader worker processes per rank.")] = 2,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from <out>/checkpoint.pt.")] = False,
    sensors: Annotated[str | None, typer.Option("--sensors", help="Comma-separated products (default: the preset's).")] = None,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 3e-4,
    warmup_steps: Annotated[int, typer.Option("--warmup-steps", help="Linear warmup steps.")] = 100,
    accum_steps: Annotated[int, typer.Option("--accum-steps", help="Micro-batches per optimizer step.")] = 1,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Checkpoint every N steps.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of init, sample stream and views.")] = 0,
    crop_m: Annotated[float | None, typer.Option("--crop-m", help="Aligned random crop side in metres.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    stop_at: Annotated[int | None, typer.Option("--stop-at", help="End after step N with a checkpoint; --resume later.")] = None,
    show_config: Annotated[bool, typer.Option("--show-config", help="Print the resolved config and exit.")] = False,
) -> None:
    """Pretrain SpectralEarth-FM (JEPA) on a release (or a SYNTHESIZED stream); resumable, torchrun-ready.

    Writes encoder.pt (the EMA target encoder, for evaluate) and encoder_online.pt."""
    from spectralearth_model.train import TrainConfig
    from spectralearth_model.train import train as run_training

    cfg = TrainConfig.make(
        release=release, synthetic_cell_m=synthetic_cell_m, probe_every=probe_every, out=out, preset=preset, steps=steps, batch_size=batch_size, workers=workers,
        resume=resume, sensors=tuple(s.strip() for s in sensors.split(",")) if sensors else None,
        lr=lr, warmup_steps=warmup_steps, accum_steps=accum_steps, checkpoint_every=checkpoint_every,
        seed=seed, crop_m=crop_m, device=device, progress=progress, stop_at=stop_at,
    )
    if show_config:
        typer.echo(json.dumps({"config_id": cfg.config_id(), **cfg.model_dump(mode="json")}, indent=1))
        return
    summary = run_training(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        _print_summary(summary)


def _print_summary(s) -> None:
    from spectralearth_data.cli.output import console
    from rich.table import Table

    table = Table(title="SpectralEarth-FM training run", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    resumed = f" (resumed at step {s.start_step})" if s.start_step else ""
    rows = [
        ("steps", f"{s.steps}{resumed}" + (f" of {s.total_steps}; continue with --resume"
                                            if s.steps < s.total_steps else "")),
        ("final loss", f"{s.final_loss:.4f}"),
        ("samples seen", str(s.samples_seen)),
        ("ranks / device", f"{s.world_size} / {s.device}"),
        ("time", f"{s.seconds:.1f} s"),
        ("waiting for data", f"{s.data_wait_fraction:.1%} of loop time"),
        ("checkpoint", str(s.checkpoint)),
        ("encoder (for evaluate)", str(s.encoder)),
        ("metrics", f"{s.metrics_csv}" + (f", {s.plot}" if s.plot else "")),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console().print(table)  # piped: paths whole, not cut at 80 columns
