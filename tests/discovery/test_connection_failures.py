"""A host name that does not resolve and a refused connection are not transient: one attempt,
one line naming the host and the cause, and a flow does not retry them (issue 20, item 7)."""

from __future__ import annotations

import pytest
import urllib3.util.connection
from discovery_helpers import write_region

from flows.retry import is_transient
from spectralearth_data.errors import SourceError
from spectralearth_data.sources import RetryPolicy, search
from tests.servers import free_port

RETRY = RetryPolicy(attempts=3, backoff_s=0.01, jitter_s=0.0, max_backoff_s=0.01, timeout_s=(2.0, 5.0))


@pytest.fixture
def connects(monkeypatch):
    """The hosts urllib3 tried to connect to, one entry per attempt (its own connection hook)."""
    calls: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def counting(address, *args, **kwargs):
        calls.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counting)
    return calls


@pytest.fixture
def region(tmp_path):
    return write_region(tmp_path / "r.geojson", (146.0, -45.0, 152.0, -37.0))


@pytest.mark.parametrize("source, product", [("planetary-computer", "s2"), ("earthdata-cmr", "emit")])
def test_unresolvable_host_is_tried_once_and_named(connects, region, source, product):
    with pytest.raises(SourceError) as info:
        search(source, region, sensors=[product], url="http://stac.example.invalid/api", retry=RETRY)
    msg = str(info.value)
    assert len(connects) == 1, connects
    assert "\n" not in msg
    assert "stac.example.invalid" in msg and "does not resolve" in msg and "not retried" in msg
    assert info.value.retryable is False
    assert not is_transient(info.value)


def test_refused_connection_is_tried_once_and_named(connects, region):
    port = free_port()
    with pytest.raises(SourceError) as info:
        search("earth-search", region, sensors=["s2"], url=f"http://127.0.0.1:{port}", retry=RETRY)
    msg = str(info.value)
    assert len(connects) == 1, connects
    assert f"127.0.0.1:{port}" in msg and "connection refused" in msg and "\n" not in msg
    assert not is_transient(info.value)


def test_flow_does_not_retry_raw_permanent_connection_errors():
    import requests

    port = free_port()
    with pytest.raises(requests.ConnectionError) as refused:
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    with pytest.raises(requests.ConnectionError) as unresolved:
        requests.get("http://nowhere.invalid/", timeout=2)
    assert not is_transient(refused.value)
    assert not is_transient(unresolved.value)
    assert is_transient(requests.ConnectionError("Connection reset by peer"))


def test_flow_does_not_retry_what_the_library_already_retried():
    assert not is_transient(SourceError("earth-search: 503 after 5 retries", retryable=False))
    assert is_transient(SourceError("earth-search: 502"))  # unmarked: still transient


def test_shorten_cuts_at_a_word_boundary():
    from spectralearth_data.errors import shorten

    text = "cannot connect to pc.invalid: " + " ".join(["resolution"] * 40)
    short = shorten(text, limit=60)
    assert len(short) <= 60 and short.endswith("...")
    assert short[:-3].split()[-1] == "resolution"  # the last word is whole
    assert short.startswith("cannot connect to pc.invalid:")
    assert shorten("a  b\n c", limit=60) == "a b c"
    assert shorten("x" * 80, limit=20) == "x" * 17 + "..."
