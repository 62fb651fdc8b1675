"""The evaluation report: Markdown (what ran, on which data, how it scored), CSV and a bar plot.

The Markdown names, for every task, where its data come from (real scene, user copy of a
downloaded benchmark), how the split was made, and for every method which weights and features it
used, so a reader never mistakes a baseline or a built-in toy task for a benchmark result.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from .metrics import PRIMARY

METHOD_NOTES = {
    "checkpoint": "the trained encoder from the checkpoint, frozen",
    "random-init": "same architecture and preset, freshly initialised weights (seeded), frozen",
    "pca-spectra": "no encoder: raw spectra (per pixel, or the mean valid spectrum per image), "
    "standardised, PCA, linear probe",
}


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def write_csv(path: Path, results: list) -> Path:
    keys = sorted({k for r in results for k in r.metrics})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task", "method", "head", *keys, "n_train", "n_test", "seconds", "data"])
        for r in results:
            w.writerow([r.task, r.method, r.head, *(r.metrics.get(k, "") for k in keys),
                        r.n_train, r.n_test, f"{r.seconds:.2f}", r.data])
    return path


def plot_results(path: Path, results: list, kinds: dict[str, str]) -> Path:
    """One group of bars per task (its primary metric), one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r.task for r in results))
    methods = list(dict.fromkeys(r.method for r in results))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(tasks) * len(methods) / 3, 3.2))
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):
        vals = []
        for t in tasks:
            row = next((r for r in results if r.task == t and r.method == m), None)
            v = row.metrics.get(PRIMARY[kinds[t]], float("nan")) if row else float("nan")
            vals.append(0.0 if math.isnan(v) else v)
        ax.bar([i + j * width for i in range(len(tasks))], vals, width, label=m)
    ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(tasks))])
    ax.set_xticklabels([f"{t}\n({PRIMARY[kinds[t]]})" for t in tasks], fontsize=8)
    ax.set_ylabel("score (primary metric)")
    ax.legend(fontsize=8)
    ax.set_title("Frozen-encoder evaluation", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(out: Path, results: list, meta: dict[str, Any]) -> Path:
    """Write report.md, results.csv and results.png into ``out``; return the report path."""
    out.mkdir(parents=True, exist_ok=True)
    kinds = {t["name"]: t["kind"] for t in meta["tasks"]}
    write_csv(out / "results.csv", results)
    plot_results(out / "results.png", results, kinds)
    lines = [
        "# SpectralEarth-FM frozen-encoder evaluation",
        "",
        (f"- checkpoint: `{meta['checkpoint']}` (preset `{meta['preset']}`, weights sha256 "
         f"{meta.get('weights_sha256', 'n/a')}..., unchanged by this run)"),
        f"- the checkpoint was pretrained on: {meta.get('pretraining', 'unknown data')}",
        f"- head: `{meta['head']}` for the encoders; the PCA baseline always uses a linear probe",
        f"- device: {meta['device']}; seed: {meta['seed']}",
        "",
        "## Methods (all in this run, on the same data and splits)",
        "",
        *(f"- **{m}**: {note}" for m, note in METHOD_NOTES.items()),
        "",
        "## Tasks and the data they ran on",
        "",
    ]
    for t in meta["tasks"]:
        lines += [
            f"### {t['name']} ({t['kind']})",
            "",
            f"- data: {t['data_source']}",
            (f"- images: `{t['sensor']}`, {t['bands']} bands, {t['gsd_m']:g} m; fed through the model's "
             f"`{meta.get('inputs', {}).get(t['name'], t['sensor'])}` input"),
            f"- split: {t['split_rule']} ({t['n_train']} train / {t['n_test']} test samples)",
            f"- classes/targets: {', '.join(t['classes'])}",
        ]
        if t.get("licence"):
            lines.append(f"- licence: {t['licence']}")
        lines.append("")
    lines += ["## Results", "", "![results](results.png)", ""]
    for task in dict.fromkeys(r.task for r in results):
        rows = [r for r in results if r.task == task]
        keys = list(rows[0].metrics)
        lines += [f"### {task}", "", "| method | head | " + " | ".join(keys) + " | seconds | ran on |",
                  "|---|---|" + "---|" * len(keys) + "---|---|"]
        for r in rows:
            vals = " | ".join(_fmt(r.metrics[k]) for k in keys)
            lines.append(f"| {r.method} | {r.head} | {vals} | {r.seconds:.1f} | {r.data} |")
        if rows[0].per_class:
            lines += ["", "Per-class score (IoU for segmentation, F1 for classification; n/a = class absent):", ""]
            for r in rows:
                lines.append(f"- {r.method}: " + ", ".join(_fmt(v) for v in r.per_class))
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
