"""Fixtures for discovery/co-location tests: real recorded items, real local servers."""

from __future__ import annotations

import pytest
from discovery_helpers import COLORADO, PC_ITEMS


@pytest.fixture(scope="session")
def stac_api():
    """A real STAC API process (rustac serve) holding the recorded PC and Earth Search items."""
    from tests.servers import stac_api_server

    files = sorted(PC_ITEMS.glob("*.geojson")) + sorted(COLORADO.glob("*.json"))
    with stac_api_server(files) as url:
        yield url


@pytest.fixture
def fast_retry():
    from spectralearth_data.sources import RetryPolicy

    return RetryPolicy(attempts=3, backoff_s=0.01, jitter_s=0.01, max_backoff_s=0.05, timeout_s=(2.0, 10.0))
