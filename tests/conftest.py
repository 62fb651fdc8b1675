"""Fixtures shared by several test areas."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (the test machine's cores are shared), restored after.

    Areas that run torch in-process use it from an autouse fixture of their own conftest.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
