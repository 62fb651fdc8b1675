"""``spectralearth evaluate``: PANGAEA-style frozen-encoder evaluation of a checkpoint.

Thin: :func:`spectralearth_model.evaluate.evaluate` does the work (checkpoint + random-init +
token-grid and per-pixel raw-spectra PCA baselines, on every task, in one run, with bootstrap 95 %
intervals) and writes report.md, results.csv, results.json and results.png. Heavy imports (torch, scikit-learn) stay inside the function.
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
    head: Annotated[str, typer.Option(
        "--head", help="linear, knn (any task), upernet or subtoken (segmentation).")] = "linear",
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.md, results.csv/png).")] = Path("evaluation"),
    preset: Annotated[str | None, typer.Option(
        "--preset", help="Fail unless the checkpoint holds this model preset (tiny, small, base).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random-init baseline, sampling and heads.")] = 0,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 ... (default: cuda if present).")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for torch/BLAS.")] = None,
    upernet_steps: Annotated[int, typer.Option("--upernet-steps", min=1, help="Training steps of the UPerNet head.")] = 200,
    subtoken_steps: Annotated[int, typer.Option(
        "--subtoken-steps", min=1, help="Training steps of the sub-token (pixel-shuffle) head.")] = 300,
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", min=0, help="Bootstrap resamples of the 95 % intervals (0: none).")] = 1000,
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
                       subtoken_steps=subtoken_steps, bootstrap=bootstrap, expect_preset=preset)
    if show_config:
        doc = {"checkpoint": str(checkpoint), "tasks": task, "head": head, "out": str(out), "options": vars(opts)}
        typer.echo(json.dumps(doc, indent=1))
        return
    from spectralearth_model.evaluate import evaluate as run_evaluation

    report = run_evaluation(checkpoint, list(task), head=head, out=out, options=opts)
    _print_results(report.parent / "results.json")
    typer.echo(f"report: {report}")


def _print_results(json_path: Path) -> None:
    """The results table: every metric with its bootstrap 95 % interval, and the test-set size."""
    from spectralearth_data.cli.output import console
    from rich.markup import escape
    from rich.table import Table

    rows = json.loads(json_path.read_text())["results"]
    keys = list(dict.fromkeys(k for r in rows for k in r["metrics"]))
    title = ("frozen-encoder evaluation: metric [bootstrap 95 % interval low, high]; n test = scored "
             "test pixels (segmentation) or images, and the unit resampled (see report.md for the data)")
    table = Table(title=escape(title))
    for col in ("task", "method", "features", "head", *keys, "n test", "seconds"):
        table.add_column(col, justify="left" if col in {"task", "method", "features", "head"} else "right")
    for r in rows:
        table.add_row(*map(escape, (r["task"], r["method"], r["features"], r["head"])), *(escape(_cell(r, k)) for k in keys),
                      f"{r['n_test_scored']} ({r['ci_unit'] or 'no CI'})", f"{r['seconds']:.1f}")
    console().print(table)  # piped or captured: full width, task names not squeezed into 80 columns


def _cell(row: dict, key: str) -> str:
    v = row["metrics"].get(key)
    if v is None:
        return "n/a"
    lo, hi = row["ci"].get(key) or (None, None)
    return f"{v:.3f}" if lo is None or hi is None else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
