"""Fixtures of the evaluation tests: one thread, and a tiny encoder checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spectralearth_model.checkpoint import save_encoder
from spectralearth_model.config import preset
from spectralearth_model.model import build_encoder


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised ``tiny`` encoder (all seven products) saved with ``save_encoder``."""
    torch.manual_seed(123)
    cfg = preset("tiny")
    return save_encoder(tmp_path_factory.mktemp("ckpt") / "encoder.pt", build_encoder(cfg), cfg)


