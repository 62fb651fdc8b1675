"""``spectralearth evaluate``: PANGAEA-style frozen-encoder evaluation of a checkpoint.

Thin: :func:`spectralearth_model.evaluate.evaluate` does the work (checkpoint + random-init +
raw-spectra PCA baselines, on every task, in one run) and writes report.md, results.csv and
results.png. Heavy imports (torch, scikit-learn) stay inside the function.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spectralearth_data.errors import InputDataError


def evaluate(
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="Encoder file written by training (encoder.pt, save_encoder).")] = None,
    task: Annotated[list[str] | None, typer.Option(
        "--task", help="Built-in task name (see --list-tasks) or a task folder; repeat for several.")] = None,
    head: Annotated[str, typer.Option("--head", help="linear, knn (any task) or upernet (segmentation).")] = "linear",
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.md, results.csv/png).")] = Path("evaluation"),
    preset: Annotated[str | None, typer.Option(
        "--preset", help="Fail unless the checkpoint holds this model preset (tiny, small, base).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random-init baseline, sampling and heads.")] = 0,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 ... (default: cuda if present).")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for torch/BLAS.")] = None,
    upernet_steps: Annotated[int, typer.Option("--upernet-steps", min=1, help="Training steps of the UPerNet head.")] = 200,
    list_tasks: Annotated[bool, typer.Option("--list-tasks", help="List the built-in tasks and exit.")] = False,
    show_config: Annotated[bool, typer.Option("--show-config", help="Print the resolved options and exit.")] = False,
) -> None:
    """Evaluate a frozen encoder (linear / k-NN / UPerNet head) against random-init and PCA baselines."""
    from spectralearth_model.evaluate import EvalOptions
    from spectralearth_model.evaluate import list_tasks as builtin_tasks

    if list_tasks:
        for name, text in builtin_tasks().items():
            typer.echo(f"{name}\t{text}")
        return
    if checkpoint is None:
        raise InputDataError("--checkpoint is required (an encoder.pt written by `spectralearth train`)")
    if not task:
        raise InputDataError(f"--task is required; built-in tasks: {', '.join(builtin_tasks())}")
    opts = EvalOptions(seed=seed, device=device, threads=threads, upernet_steps=upernet_steps,
                       expect_preset=preset)
    if show_config:
        doc = {"checkpoint": str(checkpoint), "tasks": task, "head": head, "out": str(out), "options": vars(opts)}
        typer.echo(json.dumps(doc, indent=1))
        return
    from spectralearth_model.evaluate import evaluate as run_evaluation

    report = run_evaluation(checkpoint, list(task), head=head, out=out, options=opts)
    _print_results(report.parent / "results.csv")
    typer.echo(f"report: {report}")


def _print_results(csv_path: Path) -> None:
    import csv

    from spectralearth_data.cli.output import console
    from rich.table import Table

    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    skip = {"task", "method", "head", "n_train", "n_test", "seconds", "data"}
    keys = [k for k in rows[0] if k not in skip] if rows else []
    table = Table(title="frozen-encoder evaluation (see report.md for the data each method ran on)")
    for col in ("task", "method", "head", *keys, "seconds"):
        table.add_column(col, justify="left" if col in {"task", "method", "head"} else "right")
    for r in rows:
        vals = [f"{float(r[k]):.3f}" if r[k] not in ("", "nan") else "n/a" for k in keys]
        table.add_row(r["task"], r["method"], r["head"], *vals, r["seconds"])
    console().print(table)  # piped or captured: full width, task names not squeezed into 80 columns
