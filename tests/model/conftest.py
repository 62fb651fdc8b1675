"""Fixtures for the SpectralEarth-FM tests: the tiny preset and seeded synthetic location batches."""

from __future__ import annotations

import pytest
import torch

from spectralearth_model.config import preset
from spectralearth_model.synthetic import SyntheticScenes

#: The demo/test cell size: 8x8 tokens of 120 m.
CELL_M = 960.0


@pytest.fixture(autouse=True)
def _one_thread_seeded(one_torch_thread):
    """One torch thread (tests/conftest.py) and a fixed global seed."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_cfg():
    return preset("tiny")


@pytest.fixture(scope="session")
def scenes(tiny_cfg):
    return SyntheticScenes(tiny_cfg, seed=0)


def _make_batch(scenes: SyntheticScenes, batch_size: int = 2, present=None, seed: int = 0) -> dict:
    return scenes.batch(batch_size, CELL_M, torch.Generator().manual_seed(seed), present=present)


@pytest.fixture(scope="session")
def make_batch():
    """``make_batch(scenes, batch_size=2, present=None, seed=0)`` -> a collated synthetic batch."""
    return _make_batch
