"""The evaluation report: Markdown (what ran, on which data, how it scored), CSV, JSON and a bar plot.

The Markdown names, for every task, where its data come from (real scene, user copy of a
downloaded benchmark), how the split was made, how many test pixels/tiles it scores, and for every
row which weights, features (and their resolution) and head it used, so a reader never mistakes a
baseline, a coarser feature grid or a built-in toy task for a benchmark result. Every metric is
printed with its bootstrap 95 % interval.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from .metrics import PRIMARY

METHOD_NOTES = {
    "checkpoint": "the trained encoder from the checkpoint, frozen",
    "random-init": "same architecture and preset, freshly initialised weights (seeded), frozen",
    "pca-token": "no encoder: raw bands averaged (valid pixels) over each token cell, so the "
    "features have the encoders' token resolution; standardised, PCA, then the same head as the encoders",
    "pca-pixel": "no encoder: raw spectra per pixel at the label resolution (image-level tasks: the "
    "mean valid spectrum per image), standardised, PCA, linear probe",
}

HEAD_NOTES = {
    "linear": "logistic regression per pixel on the token maps upsampled (bilinear) to the label grid "
    "(image-level: on the pooled embedding)",
    "knn": "cosine k-NN (k=5) on the same per-pixel features",
    "upernet": "light UPerNet decoder (PPM + FPN) trained on the frozen maps",
    "subtoken": "sub-token head: each token predicts the classes of its r x r label pixels "
    "(1x1 mix + pixel shuffle, r = token / label size), trained on the frozen maps",
}

#: Below these a test set is flagged as small in the report.
SMALL_TEST_PIXELS = 10_000
SMALL_TEST_UNITS = 30


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _with_ci(r, key: str) -> str:
    lo, hi = r.ci.get(key, (None, None))
    if lo is None or math.isnan(lo):
        return _fmt(r.metrics.get(key))
    return f"{_fmt(r.metrics.get(key))} [{_fmt(lo)}, {_fmt(hi)}]"


def _metric_keys(results: list) -> list[str]:
    return list(dict.fromkeys(k for r in results for k in r.metrics))


def write_csv(path: Path, results: list) -> Path:
    """One row per (task, method, head): metrics, their interval bounds, sizes, what it ran on."""
    keys = _metric_keys(results)
    ci_cols = [f"{k}_ci_{end}" for k in keys for end in ("low", "high")]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task", "method", "head", "features", *keys, *ci_cols, "ci_unit",
                    "n_train", "n_test", "n_test_scored", "seconds", "data"])
        for r in results:
            bounds = [r.ci[k][i] if k in r.ci else "" for k in keys for i in (0, 1)]
            w.writerow([r.task, r.method, r.head, r.features, *(r.metrics.get(k, "") for k in keys), *bounds,
                        r.ci_unit, r.n_train, r.n_test, r.n_test_pixels, f"{r.seconds:.2f}", r.data])
    return path


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def write_json(path: Path, results: list, meta: dict[str, Any]) -> Path:
    """``{"meta": ..., "results": [...]}``; each result carries ``metrics`` and ``ci`` (``{metric:
    [low, high]}``, 95 % percentile bootstrap over ``ci_unit``); NaN is written as null."""
    rows = []
    for r in results:
        d = dataclasses.asdict(r)
        d["n_test_scored"] = d.pop("n_test_pixels")
        rows.append(d)
    doc = {"meta": meta, "ci_level": 0.95, "results": rows}
    path.write_text(json.dumps(_jsonable(doc), indent=1))
    return path


def row_label(r) -> str:
    return f"{r.method} · {r.head}"


def bar_data(results: list, kinds: dict[str, str]) -> tuple[list[str], list[str], dict[str, tuple[list, list, list]]]:
    """Tasks, row labels and, per row label, the primary-metric values and the lower/upper error
    bar lengths per task (0 where a value or interval is missing)."""
    tasks = list(dict.fromkeys(r.task for r in results))
    labels = list(dict.fromkeys(row_label(r) for r in results))
    bars = {}
    for lab in labels:
        vals, low, high = [], [], []
        for t in tasks:
            row = next((r for r in results if r.task == t and row_label(r) == lab), None)
            key = PRIMARY[kinds[t]]
            v = row.metrics.get(key, float("nan")) if row else float("nan")
            lo, hi = row.ci.get(key, (float("nan"),) * 2) if row else (float("nan"),) * 2
            ok = not any(math.isnan(x) for x in (v, lo, hi))
            vals.append(0.0 if math.isnan(v) else v)
            low.append(max(0.0, v - lo) if ok else 0.0)
            high.append(max(0.0, hi - v) if ok else 0.0)
        bars[lab] = (vals, low, high)
    return tasks, labels, bars


def plot_results(path: Path, results: list, kinds: dict[str, str], sizes: dict[str, str] | None = None) -> Path:
    """One group of bars per task (its primary metric), one bar per (method, head) row, with the
    bootstrap 95 % interval as an error bar; ``sizes`` (task -> e.g. "729 px / 2 tiles") label the groups."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, labels, bars = bar_data(results, kinds)
    sizes = sizes or {}
    fig, ax = plt.subplots(figsize=(2.5 + 0.55 * len(tasks) * len(labels), 3.6))
    width = 0.8 / len(labels)
    colours = plt.get_cmap("tab10")
    for j, lab in enumerate(labels):
        vals, low, high = bars[lab]
        ax.bar([i + j * width for i in range(len(tasks))], vals, width, yerr=[low, high], capsize=2,
               label=lab, color=colours(j % 10), error_kw={"elinewidth": 0.8})
    ax.set_xticks([i + width * (len(labels) - 1) / 2 for i in range(len(tasks))])
    ax.set_xticklabels([f"{t}\n({PRIMARY[kinds[t]]}; test {sizes.get(t, '?')})" for t in tasks], fontsize=8)
    ax.set_ylabel("score (primary metric)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title("Frozen-encoder evaluation (error bars: bootstrap 95 % interval)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def size_label(t: dict[str, Any]) -> str:
    """Short test-set size of a task, e.g. ``729 px / 2 tiles`` or ``40 images``."""
    if t["kind"] != "segmentation":
        return f"{t.get('n_test_scored', t['n_test'])} images"
    unit = t.get("split_unit", "image")
    noun = "images" if unit == "pixel" else f"{unit}s"
    return f"{t.get('n_test_scored', 0)} px / {t['n_test']} {noun}"


def describe_test_set(t: dict[str, Any]) -> list[str]:
    """Report lines on how big a task's test set is and what its intervals resample."""
    unit, n_units, n = t.get("split_unit", "image"), t["n_test"], t.get("n_test_scored", 0)
    if t["kind"] != "segmentation":
        lines = [f"- test set: {n} images; intervals resample test images"]
        small = n < SMALL_TEST_UNITS
    elif unit == "pixel":
        lines = [f"- test set: {n} labelled pixels (split by pixel, spread over {n_units} images); "
                 "intervals resample test pixels, which are spatially correlated, so they understate "
                 "the uncertainty"]
        small = n < SMALL_TEST_PIXELS
    else:
        lines = [f"- test set: {n} labelled pixels in {n_units} {unit}s; intervals resample whole {unit}s"]
        small = n < SMALL_TEST_PIXELS or n_units < SMALL_TEST_UNITS
    if small:
        what = f"{n} labelled pixels" if t["kind"] == "segmentation" else f"{n} images"
        extra = f" in {n_units} {unit}s" if t["kind"] == "segmentation" and unit != "pixel" else ""
        rough = "; a bootstrap over so few tiles/images is itself rough" if extra else ""
        lines.append(f"- **small test set: {what}{extra}.** Differences inside the intervals are noise{rough}.")
    return lines


def write_report(out: Path, results: list, meta: dict[str, Any]) -> Path:
    """Write report.md, results.csv, results.json and results.png into ``out``; return the report path."""
    out.mkdir(parents=True, exist_ok=True)
    kinds = {t["name"]: t["kind"] for t in meta["tasks"]}
    write_csv(out / "results.csv", results)
    write_json(out / "results.json", results, meta)
    plot_results(out / "results.png", results, kinds, {t["name"]: size_label(t) for t in meta["tasks"]})
    used_heads = list(dict.fromkeys(r.head for r in results))
    lines = [
        "# SpectralEarth-FM frozen-encoder evaluation",
        "",
        (f"- checkpoint: `{meta['checkpoint']}` (preset `{meta['preset']}`, weights sha256 "
         f"{meta.get('weights_sha256', 'n/a')}..., unchanged by this run)"),
        f"- the checkpoint was pretrained on: {meta.get('pretraining', 'unknown data')}",
        (f"- head: `{meta['head']}` for the encoders and the token-grid PCA (segmentation also gets "
         "`subtoken` rows); the per-pixel PCA baseline always uses a linear probe"),
        f"- device: {meta['device']}; seed: {meta['seed']}",
        (f"- intervals: percentile bootstrap 95 % ({meta.get('bootstrap', 0)} resamples of the test set; "
         "the unit resampled is given per task)"),
        "",
        "## Methods (all in this run, on the same data and splits)",
        "",
        *(f"- **{m}**: {note}" for m, note in METHOD_NOTES.items() if any(r.method == m for r in results)),
        "",
        "Heads:",
        "",
        *(f"- **{h}**: {HEAD_NOTES[h]}" for h in used_heads if h in HEAD_NOTES),
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
        ]
        if t["kind"] == "segmentation" and t.get("token_m"):
            lines.append(f"- resolution: encoder tokens {t['token_m']:g} m, labels {t['label_m']:g} m "
                         f"(sub-token factor {t['token_m'] / t['label_m']:g})")
        lines += [
            f"- split: {t['split_rule']} ({t['n_train']} train / {t['n_test']} test samples)",
            *describe_test_set(t),
            f"- classes/targets: {', '.join(t['classes'])}",
        ]
        if t.get("licence"):
            lines.append(f"- licence: {t['licence']}")
        lines.append("")
    lines += ["## Results", "", "![results](results.png)", "",
              "Each metric is followed by its bootstrap 95 % interval [low, high].", ""]
    for task in dict.fromkeys(r.task for r in results):
        rows = [r for r in results if r.task == task]
        keys = list(rows[0].metrics)
        lines += [f"### {task}", "",
                  "| method | features | head | " + " | ".join(f"{k} [95% CI]" for k in keys) + " | seconds | ran on |",
                  "|---|---|---|" + "---|" * len(keys) + "---|---|"]
        for r in rows:
            vals = " | ".join(_with_ci(r, k) for k in keys)
            lines.append(f"| {r.method} | {r.features} | {r.head} | {vals} | {r.seconds:.1f} | {r.data} |")
        if rows[0].per_class:
            lines += ["", "Per-class score (IoU for segmentation, F1 for classification; n/a = class absent):", ""]
            for r in rows:
                lines.append(f"- {row_label(r)}: " + ", ".join(_fmt(v) for v in r.per_class))
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
