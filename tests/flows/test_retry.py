"""Transient failures are retried with backoff; user errors and bugs are not (real Prefect server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow, task
from prefect_helpers import task_runs

from flows.retry import is_transient, retry_options
from spectralearth_data.errors import CatalogError, SourceError


def _count(path: Path) -> int:
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


@task(name="flaky-search", **retry_options(retries=2, backoff_s=0.1))
def flaky(counter: str, error: str) -> int:
    """Fails on its first attempt with ``error``, succeeds on the next one."""
    n = _count(Path(counter))
    if n == 1:
        raise {"connection": ConnectionError("connection reset by peer"),
               "source": SourceError("planetary-computer: 503 after 4 attempts"),
               "catalog": CatalogError("unknown region 'atlantis'")}[error]
    return n


@flow(name="retry-probe")
def probe(counter: str, error: str) -> int:
    return flaky(counter, error)


@pytest.mark.parametrize("error", ["connection", "source"])
def test_a_task_that_fails_once_with_a_transient_error_is_retried(prefect_api, tmp_path, error):
    counter = tmp_path / "attempts"
    state = probe(str(counter), error, return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == 2
    (run,) = task_runs(prefect_api, state.state_details.flow_run_id)
    assert run.run_count == 2  # recorded by the server: one failure, one retry
    assert run.state.is_completed()


def test_a_user_error_is_not_retried(prefect_api, tmp_path):
    counter = tmp_path / "attempts"
    state = probe(str(counter), "catalog", return_state=True)
    assert state.is_failed()
    assert "unknown region 'atlantis'" in state.message
    assert counter.read_text() == "1"
    (run,) = task_runs(prefect_api, state.state_details.flow_run_id)
    assert run.run_count == 1


@pytest.mark.parametrize(
    "exc, transient",
    [
        (ConnectionError("reset"), True),
        (TimeoutError("read timed out"), True),
        (SourceError("earth-search: 502"), True),
        (CatalogError("bad yaml"), False),
        (ValueError("a bug"), False),
        (None, False),
    ],
    ids=["connection", "timeout", "source", "catalog", "bug", "none"],
)
def test_transient_classification(exc, transient):
    assert is_transient(exc) is transient


def test_a_wrapped_transient_cause_counts():
    try:
        try:
            raise TimeoutError("socket")
        except TimeoutError as inner:
            raise RuntimeError("reader failed") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


@task(name="search-nowhere", **retry_options(retries=2, backoff_s=0.1))
def search_nowhere(region: str) -> int:
    from spectralearth_data.sources import RetryPolicy, search

    fast = RetryPolicy(attempts=3, backoff_s=0.01, jitter_s=0.0, max_backoff_s=0.01, timeout_s=(2.0, 5.0))
    return len(search("planetary-computer", region, sensors=["s2"], url="http://stac.example.invalid", retry=fast))


@flow(name="search-nowhere-probe")
def search_probe(region: str) -> int:
    return search_nowhere(region)


def test_an_unresolvable_source_is_tried_once_in_a_flow(prefect_api, tmp_path, monkeypatch):
    """One layer retries, not two: neither the HTTP adapter nor Prefect retries a name that does
    not resolve (it used to be (retries + 1) x (attempts + 1) connection attempts)."""
    import json

    import urllib3.util.connection

    connects: list = []
    real = urllib3.util.connection.create_connection
    monkeypatch.setattr(urllib3.util.connection, "create_connection",
                        lambda address, *a, **k: connects.append(address) or real(address, *a, **k))
    region = tmp_path / "r.geojson"
    ring = [[1.0, 48.0], [2.0, 48.0], [2.0, 49.0], [1.0, 49.0], [1.0, 48.0]]
    region.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    state = search_probe(str(region), return_state=True)
    assert state.is_failed()
    assert "stac.example.invalid" in state.message and "does not resolve" in state.message
    (run,) = task_runs(prefect_api, state.state_details.flow_run_id)
    assert run.run_count == 1
    assert len(connects) == 1
