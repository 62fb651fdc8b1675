"""torchrun DDP: two CPU processes on gloo train in lock-step and end with identical parameters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from test_train import FAST_SENSORS, ONE_THREAD_ENV

from spectralearth_model.train import TrainConfig, train


@pytest.mark.slow  # torchrun + 2 ranks + a 1-process reference: 28-58 s on the shared 2-core machine
def test_two_process_gloo_run_keeps_ranks_identical(release, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "--no-python", sys.executable, "-c", "from spectralearth_model.cli import main; main()",
        "train", "--release", str(release), "--out", str(out), "--steps", "3", "--batch-size", "2",
        "--workers", "0", "--warmup-steps", "1", "--checkpoint-every", "2", "--no-progress",
        "--sensors", ",".join(FAST_SENSORS), "--device", "cpu",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=ONE_THREAD_ENV, check=False)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    digests = summary["rank_param_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    # the two ranks read disjoint halves of the sample stream: 2 ranks x 2 samples x 3 steps
    assert summary["samples_seen"] == 12
    assert torch.load(out / "checkpoint.pt", weights_only=False)["world_size"] == 2
    assert res.stdout.count("SpectralEarth-FM training run") == 1  # rank 0 alone reports
    # the DDP run's parameters differ from a 1-process run on the same seed (the gradients are averaged
    # over both ranks' samples), so the check above compares real, trained values
    single = train(TrainConfig.make(release=release, out=tmp_path / "single", steps=3, batch_size=2,
                                    workers=0, warmup_steps=1, checkpoint_every=2, progress=False,
                                    sensors=FAST_SENSORS, device="cpu"))
    assert single.rank_param_digests[0] != digests[0]
