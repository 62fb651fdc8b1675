"""Model benchmark (issue 8): train-step time and peak memory of SpectralEarth-FM presets vs a
plain ViT of the same width, depth and token count, measured in one run on SYNTHESIZED batches.

Rows per preset (each measured in its own child process, so peak memory is not shared):

* ``plain ViT``      the baseline: one strided-conv patch embedding of the S2 patch (12 bands,
                     10 m, patch 12 -> the same N tokens of 120 m), ``sum(depths)`` pre-norm blocks
                     at the preset's embedding width ``dims[-1]`` with ``heads[-1]`` heads, mean
                     pooling. Same width, depth and token count as the model, one sensor, no
                     hierarchy.
* ``SE-FM encoder``  our encoder on all seven products (spectral tokenizer for the three HSI
                     products, six other embeddings, cross-sensor fusion, hierarchical stages).
                     This row is the one compared with the target (<= 1.15x the ViT step, issue 17).
* ``SE-FM JEPA step`` the full pretraining step (EMA target forward on the global view, the
                     ``n_local_views`` single-sensor and ``n_multi_views`` multi-sensor student
                     forwards, predictor, loss, EMA update): what a training step really costs;
                     shown for scale, not a like-for-like ratio.

A *train step* is forward + a scalar loss + backward + AdamW step (the encoder rows use the mean
square of the pooled embedding as a stand-in loss). Each method runs in ``--rounds`` children,
alternating with the others, each timing ``--steps`` steps after one warm-up. On CPU the time is
the *least process CPU time* of any step (children run one torch thread, so this is the step's
compute; other jobs on a shared machine can only add to it; the median wall time is printed
beside it); on CUDA it is the median synchronised wall time. Memory: on CUDA, ``torch.cuda.max_memory_allocated`` over the steps minus what was
allocated before them (weights and batch); on CPU, the peak RSS of the child process sampled
every 10 ms minus its RSS before the first step (activations, gradients, optimizer state).
CUDA runs use bf16 autocast, as the trainer does.

Usage (from the repository root)::

    .venv/bin/python benchmarks/model.py --quick                 # tiny only, < 2 min on CPU
    .venv/bin/python benchmarks/model.py                         # tiny and small, CPU
    .venv/bin/python benchmarks/model.py --device cuda --preset base --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, run_child

#: Cell size (m) per preset: the token grid must be a multiple of 2^(stages-1).
DEFAULT_CELL_M = {"tiny": 960.0, "small": 1920.0, "base": 3840.0}
DEFAULT_BATCH = {"tiny": 8, "small": 4, "base": 2}
METHODS = ("vit", "encoder", "jepa")
LABELS = {"vit": "plain ViT (S2 only)", "encoder": "SE-FM encoder (7 products)", "jepa": "SE-FM JEPA step"}
TARGET = 1.15


# -- the baseline ---------------------------------------------------------------------------------


def build_plain_vit(in_chans: int, patch: int, dim: int, depth: int, heads: int, mlp_ratio: float):
    """A plain ViT: conv patch embedding, fixed 2-D sin-cos positions, ``depth`` blocks, mean pool."""
    import torch
    from torch import nn

    from spectralearth_model.layers import Block, grid_coords, sincos_2d

    class PlainViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Conv2d(in_chans, dim, patch, stride=patch)
            self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
            self.norm = nn.LayerNorm(dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.embed(x)  # (B, D, h, w)
            h, w = t.shape[-2:]
            t = t.flatten(2).transpose(1, 2)  # (B, N, D)
            r, c = grid_coords(h, w, (0, 0), 1.0, t.device)
            t = t + sincos_2d(r, c, t.shape[-1]).to(t.dtype)
            for blk in self.blocks:
                t = blk(t)
            return self.norm(t).mean(dim=1)  # (B, D)

    return PlainViT()


# -- one measured method (runs in a child process) ------------------------------------------------


def _to(batch: dict, device) -> dict:
    sensors = {s: {k: (v.to(device) if hasattr(v, "to") else v) for k, v in e.items()}
               for s, e in batch["sensors"].items()}
    return {"present": batch["present"].to(device), "sensors": sensors}


def measure(method: str, preset_name: str, device_name: str, batch_size: int, cell_m: float,
            steps: int, threads: int) -> dict:
    """Time ``steps`` train steps of ``method``; returns the child's JSON report."""
    import psutil
    import torch

    from spectralearth_model.config import preset
    from spectralearth_model.jepa import JEPA
    from spectralearth_model.model import build_encoder
    from spectralearth_model.synthetic import SyntheticScenes

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(device_name)
    cfg = preset(preset_name)
    tokens = cfg.tokens_for(cell_m)
    batch = _to(SyntheticScenes(cfg).batch(batch_size, cell_m, torch.Generator().manual_seed(0)), device)
    if method == "vit":
        s2 = cfg.sensor("s2")
        model = build_plain_vit(s2.n_bands, cfg.patch_px("s2"), cfg.dims[-1], sum(cfg.depths),
                                cfg.heads[-1], cfg.mlp_ratio).to(device)
        x = batch["sensors"]["s2"]["data"]

        def loss_fn():
            return model(x).float().pow(2).mean()
    elif method == "encoder":
        model = build_encoder(cfg).to(device)

        def loss_fn():
            return model.forward_features(batch).float().pow(2).mean()
    else:
        model = JEPA(cfg).to(device)

        def loss_fn():
            return model(batch)[0]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)

    def step() -> None:
        with autocast:
            loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if method == "jepa":
            model.update_target(0.996)

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    peak = [rss0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        mem0 = torch.cuda.memory_allocated()
    times, walls = [], []
    for i in range(steps + 1):  # the first step warms up (allocator, autotuning) and is not timed
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        if cuda:
            torch.cuda.synchronize()
        if i:
            walls.append(time.perf_counter() - t0)
            times.append(walls[-1] if cuda else time.process_time() - c0)
    stop.set()
    sampler.join()
    mem = (torch.cuda.max_memory_allocated() - mem0) if cuda else (peak[0] - rss0)
    return {
        "method": method, "preset": preset_name, "device": str(device), "tokens": tokens * tokens,
        "batch": batch_size, "params": sum(p.numel() for p in params),
        "times": times, "walls": walls, "mem_bytes": int(mem),
        "time_kind": "wall" if cuda else "CPU",
        "mem_kind": "CUDA max allocated" if cuda else "RSS peak",
    }


# -- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", action="append", choices=("tiny", "small", "base"),
                    help="preset(s) to measure (repeatable; default tiny and small, --quick: tiny)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--batch-size", type=int, help="samples per step (default per preset: tiny 8, small 4, base 2)")
    ap.add_argument("--cell-m", type=float, help="cell size in m (default per preset: 960, 1920, 3840)")
    ap.add_argument("--steps", type=int, help="timed steps per child (default 6, --quick 4)")
    ap.add_argument("--rounds", type=int, help="children per method, alternating (default 3, --quick 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per child (default 1)")
    ap.add_argument("--quick", action="store_true", help="tiny preset, 2 rounds x 4 steps (< 2 min on CPU)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(**json.loads(args.child))))
        return 0

    presets = args.preset or (["tiny"] if args.quick else ["tiny", "small"])
    steps = args.steps or (4 if args.quick else 6)
    rounds = args.rounds or (2 if args.quick else 3)
    rows, reports, failed = [], [], []
    for p in presets:
        spec = {"preset_name": p, "device_name": args.device, "steps": steps, "threads": args.threads,
                "batch_size": args.batch_size or DEFAULT_BATCH[p], "cell_m": args.cell_m or DEFAULT_CELL_M[p]}
        got: dict[str, dict] = {}
        for _ in range(rounds):  # methods alternate, so a change of load hits them alike
            for m in METHODS:
                res = run_child([__file__, "--child", json.dumps({"method": m, **spec})], timeout=1200,
                                env={"OMP_NUM_THREADS": str(args.threads)})
                if not res.report:
                    failed.append(f"{p}/{m}: exit {res.returncode}\n{res.stderr_tail}")
                    continue
                r = res.report
                if m in got:
                    got[m]["times"] += r["times"]
                    got[m]["walls"] += r["walls"]
                    got[m]["mem_bytes"] = min(got[m]["mem_bytes"], r["mem_bytes"])
                else:
                    got[m] = r
        for r in got.values():
            # CPU: the least CPU time of any step (interference from other jobs only adds time);
            # CUDA: the median synchronised wall time
            r["step_s"] = min(r["times"]) if r["time_kind"] == "CPU" else statistics.median(r["times"])
            r["wall_s"] = statistics.median(r["walls"])
            reports.append(r)
        base = got.get("vit")
        for m, r in got.items():
            ratio = f"{r['step_s'] / base['step_s']:.2f}x" if base else "n/a"
            mem_ratio = f"{r['mem_bytes'] / base['mem_bytes']:.2f}x" if base and base["mem_bytes"] > 0 else "n/a"
            verdict = ""
            if m == "encoder" and base:
                verdict = "meets" if r["step_s"] <= TARGET * base["step_s"] else "MISSES"
            rows.append([p, LABELS[m], f"{r['params'] / 1e6:.2f} M", r["tokens"], r["batch"],
                         f"{r['step_s'] * 1e3:.0f}", f"{r['wall_s'] * 1e3:.0f}", ratio,
                         f"{r['mem_bytes'] / 2**20:.0f}", mem_ratio, verdict])
    dev = reports[0]["device"] if reports else args.device
    mem_kind = reports[0]["mem_kind"] if reports else "memory"
    cpu = not reports or reports[0]["time_kind"] == "CPU"
    print_table(
        f"SpectralEarth-FM train step vs plain ViT ({dev}, {args.threads} thread(s); SYNTHESIZED batches)",
        ["preset", "model", "trainable params", "tokens", "batch",
         "step CPU ms (min)" if cpu else "step ms (median)", "step wall ms (median)", "vs ViT",
         f"{mem_kind} MiB", "mem vs ViT", f"target <= {TARGET}x"],
        rows,
        caption=(f"{rounds} rounds x {steps} timed steps (after 1 warm-up) per method, methods alternating, "
                 "each in its own process. Plain ViT: S2 patch embed, width dims[-1], depth sum(depths), "
                 "same token grid. JEPA step = EMA target + single- and multi-sensor student views + predictor "
                 "(for scale). "
                 "Shared machine: compare ratios, not absolute times."),
    )
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1))
    for f in failed:
        print("FAILED", f, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
