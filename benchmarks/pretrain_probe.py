"""Pretraining probe benchmark (issue 17): does JEPA pretraining beat its own initialisation?

Everything here is SYNTHESIZED: the locations are :class:`spectralearth_model.synthetic.SyntheticScenes`
mixtures of a few endmember materials seen by every sensor, and the ground truth of a 120 m token
is the endmember with the largest mean abundance inside it (the synthesizer's land cover).

Per seed, one run of the real trainer (:func:`spectralearth_model.train.train`) on an *endless
synthetic stream* (no location repeats, so nothing can be memorised) is stopped at each of
``--steps`` and resumed; each stop exports ``encoder.pt`` (the EMA target), which is probed on
*held-out* locations (generator seeds disjoint from the stream's). Rows:

* ``init``        the run's own initialisation (same seed, same construction as the trainer's);
* ``pretrained``  the exported encoder at each step count;
* ``pca``         raw bands averaged to token resolution, PCA (<= 32 components) fit on the probe's
                  training tokens: what a probe gets without any network;
* ``supervised``  an encoder of the same preset trained with per-token cross-entropy on the
                  stream's labels (random sensor subsets per sample) for as many steps as the
                  longest pretraining: a ceiling, not a competitor.

Probes (``spectralearth_model.probe``): a closed-form ridge classifier (``linear``) and a cosine
5-NN (``knn``) on standardised per-token features (every encoder stage upsampled to the token grid
and concatenated), fit on a random ``--labels`` fraction of the training tokens (the same subset
for every row) and scored (overall accuracy) on the test locations. Inputs: each sensor alone and
all sensors together. Cross-sensor transfer: the linear probe fit on S2-only features and applied to
EnMAP-only features (metric ``oa_s2_to_enmap``). Every number is the mean over ``--seeds`` seeds
(a seed changes the init, the stream, the views and the probe locations) with a Student-t 95 %
interval.

Usage (from the repository root)::

    .venv/bin/python benchmarks/pretrain_probe.py --quick --json probe.json   # 3 seeds x 100/400 steps, ~10 min on 2 free cores
    .venv/bin/python benchmarks/pretrain_probe.py --steps 500,2000,8000       # the full table
    .venv/bin/python benchmarks/pretrain_probe.py --quick --overrides '{"n_multi_views": 0}'  # ablation

``--json FILE`` writes one record per (row, steps, probe, input, labels)::

    {"row": "init"|"pretrained"|"pca"|"supervised", "steps", "probe": "linear"|"knn",
     "input": "enmap"|"s2"|"s1"|"lst"|"all", "labels": 0.01|0.1|1.0, "metric": "oa"|"oa_s2_to_enmap",
     "value", "ci_low", "ci_high"}
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spectralearth_model.checkpoint import load_encoder  # noqa: E402
from spectralearth_model.config import ModelConfig, preset  # noqa: E402
from spectralearth_model.jepa import JEPA  # noqa: E402
from spectralearth_model.probe import HELD_OUT_SEED, knn_probe, linear_probe, only_sensors, token_features  # noqa: E402
from spectralearth_model.sensors import normalise_input  # noqa: E402
from spectralearth_model.synthetic import SyntheticScenes, SyntheticStream  # noqa: E402
from spectralearth_model.train import TrainConfig, train  # noqa: E402

CELL_M = 960.0
LABELS = (0.01, 0.1, 1.0)
SOURCE = "endless SYNTHESIZED stream (spectralearth_model.synthetic.SyntheticStream, 960 m cells)"


# -- probe data -----------------------------------------------------------------------------------


def probe_data(cfg: ModelConfig, n_train: int, n_test: int, seed: int) -> tuple[list[dict], torch.Tensor, int]:
    """Held-out labelled locations in chunks of 16: (batches, labels (N,), number of train tokens)."""
    scenes = SyntheticScenes(cfg, seed=0)  # the stream's endmembers
    batches, labels = [], []
    n, chunk = n_train + n_test, 16
    for i in range(0, n, chunk):
        g = torch.Generator().manual_seed(HELD_OUT_SEED + 1000 * seed + i)
        b, y = scenes.labelled_batch(min(chunk, n - i), CELL_M, g)
        batches.append(b)
        labels.append(y.reshape(-1))
    y = torch.cat(labels)
    return batches, y, n_train * (y.numel() // n)


def encoder_features(encoder: torch.nn.Module, cfg: ModelConfig, batches: list[dict],
                     inputs: dict[str, tuple[str, ...] | None]) -> dict[str, torch.Tensor]:
    encoder.eval()
    return {name: torch.cat([token_features(encoder, only_sensors(b, cfg, sel)) for b in batches])
            for name, sel in inputs.items()}


def raw_token_bands(cfg: ModelConfig, batches: list[dict], sensors: tuple[str, ...]) -> torch.Tensor:
    """(N, sum C) every band of ``sensors``, normalised as the model does, averaged per token."""
    out = []
    for b in batches:
        cols = []
        for name in sensors:
            x = normalise_input(b["sensors"][name]["data"].float(), cfg.sensor(name))
            t = F.avg_pool2d(x, cfg.patch_px(name))  # (B, C, h, w)
            cols.append(t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]))
        out.append(torch.cat(cols, 1))
    return torch.cat(out)


def pca_features(x: torch.Tensor, n_train: int, k: int = 32) -> torch.Tensor:
    """Project ``x`` on the top ``k`` principal axes of its first ``n_train`` rows (standardised bands)."""
    a = x[:n_train].double()
    mu, sd = a.mean(0), a.std(0).clamp(min=1e-8)
    z = (x.double() - mu) / sd
    _, _, v = torch.linalg.svd(z[:n_train], full_matrices=False)
    return (z @ v[: min(k, v.shape[0])].T).float()


# -- rows -----------------------------------------------------------------------------------------


def init_encoder(cfg: ModelConfig, seed: int) -> torch.nn.Module:
    """The trainer's step-0 encoder for ``seed`` (it seeds torch, then builds the JEPA)."""
    torch.manual_seed(seed)
    return JEPA(cfg).target_encoder


def supervised_encoder(cfg: ModelConfig, seed: int, steps: int, batch_size: int, n_classes: int) -> torch.nn.Module:
    """An encoder of the same preset trained on per-token labels of the stream (random sensor subsets)."""
    torch.manual_seed(seed)
    enc = JEPA(cfg).encoder  # the same construction (and frozen intermediate norms) as the JEPA's
    for norm in enc.encoder.norms:
        norm.requires_grad_(True)
    head = torch.nn.Linear(sum(cfg.dims), n_classes)
    params = [p for p in (*enc.parameters(), *head.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
    stream = SyntheticStream(cfg, batch_size, CELL_M, seed=seed + 10_000)
    scenes = stream.scenes
    g = torch.Generator().manual_seed(seed + 20_000)
    enc.train()
    for step in range(steps):
        batch, y = scenes.labelled_batch(batch_size, CELL_M, torch.Generator().manual_seed(seed * 1_000_003 + step))
        keep = torch.rand(batch["present"].shape, generator=g) < 0.5
        keep[torch.arange(len(keep)), torch.randint(0, keep.shape[1], (len(keep),), generator=g)] = True
        batch["present"] = batch["present"] & keep
        maps = enc.forward_intermediates(batch)
        h, w = maps[0].shape[-2:]
        feats = torch.cat([F.interpolate(m, size=(h, w), mode="nearest") if m.shape[-2:] != (h, w) else m
                           for m in maps], 1)
        logits = head(feats.permute(0, 2, 3, 1))  # (B, h, w, K)
        loss = F.cross_entropy(logits.reshape(-1, n_classes), y.reshape(-1))
        for gr in opt.param_groups:
            gr["lr"] = 1e-3 * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return enc.eval()


def pretrain(cfg_kw: dict, out: Path, seed: int, steps: list[int], batch_size: int, overrides: dict,
             probe_every: int):
    """Yield (steps, exported encoder) of one trainer run stopped and resumed at each of ``steps``."""
    total = max(steps)
    for i, s in enumerate(sorted(steps)):
        summary = train(TrainConfig.make(
            synthetic_cell_m=CELL_M, out=out, steps=total, stop_at=s if s < total else None, resume=i > 0,
            batch_size=batch_size, workers=0, seed=seed, progress=False, checkpoint_every=total,
            warmup_steps=min(100, total // 10), probe_every=probe_every, model_overrides=overrides, **cfg_kw))
        yield s, load_encoder(summary.encoder)[0], summary


# -- probing --------------------------------------------------------------------------------------


def subsets(n_train: int, seed: int) -> dict[float, torch.Tensor]:
    g = torch.Generator().manual_seed(seed + 30_000)
    perm = torch.randperm(n_train, generator=g)
    return {f: perm[: max(8, round(f * n_train))] for f in LABELS}


def probe_all(feats: dict[str, torch.Tensor], y: torch.Tensor, n_train: int, subs: dict[float, torch.Tensor],
              n_classes: int, transfer: bool) -> dict[tuple[str, str, float, str], float]:
    """{(probe, input, labels, metric): OA}."""
    out = {}
    ytr, yte = y[:n_train], y[n_train:]
    for name, x in feats.items():
        tr, te = x[:n_train], x[n_train:]
        for f, idx in subs.items():
            out[("linear", name, f, "oa")] = linear_probe(tr[idx], ytr[idx], te, yte, n_classes)
            out[("knn", name, f, "oa")] = knn_probe(tr[idx], ytr[idx], te, yte, n_classes)
    if transfer and "s2" in feats and "enmap" in feats:
        for f, idx in subs.items():
            out[("linear", "enmap", f, "oa_s2_to_enmap")] = linear_probe(
                feats["s2"][:n_train][idx], ytr[idx], feats["enmap"][n_train:], yte, n_classes)
    return out


def interval(values: list[float]) -> tuple[float, float, float]:
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, m, m
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - half, m + half


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and locations (< 15 min on 2 cores)")
    ap.add_argument("--steps", default=None, help="comma list of pretraining step counts (default 500,2000)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--sensors", default="enmap,s2,s1,lst")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--train-locations", type=int, default=None)
    ap.add_argument("--test-locations", type=int, default=None)
    ap.add_argument("--supervised-steps", type=int, default=None, help="default: the longest pretraining")
    ap.add_argument("--overrides", default="{}", help="JSON model-config overrides (ablations)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    try:
        steps = sorted(int(s) for s in (a.steps or ("100,400" if a.quick else "500,2000")).split(","))
        overrides = json.loads(a.overrides)
    except ValueError as e:
        print(f"error: --steps must be integers and --overrides JSON ({e})", file=sys.stderr)
        return 2
    if a.seeds < 1 or min(steps) < 1:
        print("error: --seeds and every --steps value must be >= 1", file=sys.stderr)
        return 2
    n_train = a.train_locations or (32 if a.quick else 64)
    n_test = a.test_locations or (16 if a.quick else 32)
    sup_steps = a.supervised_steps if a.supervised_steps is not None else (200 if a.quick else max(steps))
    sensors = tuple(a.sensors.split(","))
    torch.set_num_threads(a.threads)
    cfg = preset(a.preset, sensors=sensors, **overrides)
    n_classes = SyntheticScenes(cfg, seed=0).spectra.shape[0]
    inputs: dict[str, tuple[str, ...] | None] = {s: (s,) for s in sensors}
    inputs["all"] = None
    results: dict[tuple, list[float]] = {}
    t0 = time.perf_counter()
    timing = {"pretrain": 0.0, "supervised": 0.0, "probe": 0.0}

    def add(row: str, st: int, scores: dict) -> None:
        for (probe, inp, f, metric), v in scores.items():
            results.setdefault((row, st, probe, inp, f, metric), []).append(v)

    for seed in range(a.seeds):
        batches, y, ntr = probe_data(cfg, n_train, n_test, seed)
        subs = subsets(ntr, seed)
        tp = time.perf_counter()
        add("init", 0, probe_all(encoder_features(init_encoder(cfg, seed), cfg, batches, inputs), y, ntr, subs,
                                 n_classes, True))
        pca = {name: pca_features(raw_token_bands(cfg, batches, sel or sensors), ntr) for name, sel in inputs.items()}
        add("pca", 0, probe_all(pca, y, ntr, subs, n_classes, False))
        timing["probe"] += time.perf_counter() - tp
        with tempfile.TemporaryDirectory() as tmp:
            tt = time.perf_counter()
            for st, enc, _ in pretrain({"preset": a.preset, "sensors": sensors}, Path(tmp) / "run", seed, steps,
                                       a.batch_size, overrides, probe_every=max(50, max(steps) // 10)):
                timing["pretrain"] += time.perf_counter() - tt
                tp = time.perf_counter()
                add("pretrained", st, probe_all(encoder_features(enc, cfg, batches, inputs), y, ntr, subs,
                                                n_classes, True))
                timing["probe"] += time.perf_counter() - tp
                tt = time.perf_counter()
        if sup_steps > 0:
            ts = time.perf_counter()
            sup = supervised_encoder(cfg, seed, sup_steps, a.batch_size, n_classes)
            timing["supervised"] += time.perf_counter() - ts
            add("supervised", sup_steps, probe_all(encoder_features(sup, cfg, batches, inputs), y, ntr, subs,
                                                   n_classes, True))
        print(f"seed {seed} done at {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    records = []
    for (row, st, probe, inp, f, metric), vals in results.items():
        m, lo, hi = interval(vals)
        records.append({"row": row, "steps": st, "probe": probe, "input": inp, "labels": f, "metric": metric,
                        "value": round(m, 4), "ci_low": round(lo, 4), "ci_high": round(hi, 4)})
    wall = time.perf_counter() - t0
    print_table(records, tuple(inputs), a, steps, sup_steps, n_train, n_test, overrides, wall, timing)
    print_targets(records, steps)
    if a.json:
        a.json.write_text(json.dumps(records, indent=1))
        print(f"wrote {len(records)} records to {a.json}")
    return 0


def _get(records: list[dict], **kw) -> dict | None:
    return next((r for r in records if all(r[k] == v for k, v in kw.items())), None)


def print_table(records, inputs, a, steps, sup_steps, n_train, n_test, overrides, wall, timing) -> None:
    print(f"\nPretraining probe benchmark -- data: {SOURCE}; preset {a.preset}, sensors {','.join(inputs[:-1])}, "
          f"batch {a.batch_size}, seeds {a.seeds}, probe locations {n_train} fit / {n_test} test "
          f"(64 tokens each), model overrides {overrides or 'none'}")
    print(f"wall {wall:.0f} s (pretrain {timing['pretrain']:.0f} s, supervised {timing['supervised']:.0f} s, "
          f"probes {timing['probe']:.0f} s); OA mean [95% CI] over seeds\n")
    rows = [("init", 0), *[("pretrained", s) for s in steps], ("pca", 0), ("supervised", sup_steps)]
    head = f"{'row':<11}{'steps':>6} {'probe':<7}{'labels':>7} " + "".join(f"{i:>22}" for i in inputs)
    for metric, probes in (("oa", ("linear", "knn")), ("oa_s2_to_enmap", ("linear",))):
        print(head if metric == "oa" else f"\ncross-sensor transfer (linear probe fit on S2 features, "
              f"scored on EnMAP features)\n{head}")
        for probe in probes:
            for f in LABELS:
                for row, st in rows:
                    cells = []
                    for inp in inputs:
                        r = _get(records, row=row, steps=st, probe=probe, input=inp, labels=f, metric=metric)
                        cells.append(f"{r['value']:.3f} [{r['ci_low']:.3f},{r['ci_high']:.3f}]" if r else "-")
                    if any(c != "-" for c in cells):
                        print(f"{row:<11}{st:>6} {probe:<7}{f:>7} " + "".join(f"{c:>22}" for c in cells))
                print()


def print_targets(records: list[dict], steps: list[int]) -> None:
    """Deliverable 2 of issue 17, checked on this run."""
    last, first = max(steps), min(steps)

    def r(row, st, inp, f=1.0, probe="linear"):
        return _get(records, row=row, steps=st, probe=probe, input=inp, labels=f, metric="oa")

    print("targets (issue 17, deliverable 2):")
    for inp in ("enmap", "s2", "s1", "all"):
        p, i = r("pretrained", last, inp), r("init", 0, inp)
        if p and i:
            ok = p["ci_low"] > i["ci_high"]
            print(f"  [{'PASS' if ok else 'FAIL'}] linear {inp}: pretrained@{last} {p['value']:.3f} "
                  f"[{p['ci_low']:.3f},{p['ci_high']:.3f}] beats init {i['value']:.3f} "
                  f"[{i['ci_low']:.3f},{i['ci_high']:.3f}] beyond the intervals")
    p, c = r("pretrained", last, "s1"), r("pca", 0, "s1")
    if p and c:
        print(f"  [{'PASS' if p['value'] > c['value'] else 'FAIL'}] S1-only features {p['value']:.3f} beat raw S1 "
              f"bands {c['value']:.3f}")
    if first != last:
        gains = []
        for inp in ("enmap", "s2", "s1", "all"):
            p0, p1, i = r("pretrained", first, inp), r("pretrained", last, inp), r("init", 0, inp)
            if p0 and p1 and i:
                gains.append((inp, p0["value"] - i["value"], p1["value"] - i["value"]))
        ok = all(g1 > g0 for _, g0, g1 in gains)
        print(f"  [{'PASS' if ok else 'FAIL'}] gain over init grows from {first} to {last} steps: "
              + ", ".join(f"{k} {g0:+.3f} -> {g1:+.3f}" for k, g0, g1 in gains))
    p, c = r("pretrained", last, "all", 0.01), r("pca", 0, "all", 0.01)
    if p and c:
        print(f"  [{'PASS' if p['value'] > c['value'] else 'FAIL'}] 1% labels, all sensors: pretrained "
              f"{p['value']:.3f} beats token-resolution PCA {c['value']:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
