"""Read-time SAS signing: cached per container until shortly before expiry (injected tokens)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spectralearth_data.credentials import SasSigner, SasToken, earthdata_headers, sign_href

HREF = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/01/C/CV/2024/B04.tif"


class FakeClock:
    def __init__(self):
        self.now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.now


def test_tokens_are_cached_and_refreshed_before_expiry():
    clock, calls = FakeClock(), []

    def provider(account, container):
        calls.append((account, container))
        return SasToken(f"sv=1&sig=t{len(calls)}", clock.now + timedelta(minutes=45))

    signer = SasSigner(provider, margin=timedelta(minutes=5), clock=clock)
    assert signer.sign(HREF) == HREF + "?sv=1&sig=t1"
    clock.now += timedelta(minutes=30)
    assert signer.sign(HREF) == HREF + "?sv=1&sig=t1"  # still valid: cached
    assert calls == [("sentinel2l2a01", "sentinel2-l2")]
    clock.now += timedelta(minutes=11)  # 4 minutes left < 5 minute margin
    assert signer.sign(HREF).endswith("sig=t2")
    other = "https://landsateuwest.blob.core.windows.net/landsat-c2/x.tif"
    assert signer.sign(other).endswith("sig=t3")
    assert len(calls) == 3


def test_non_blob_hrefs_and_other_sources_are_untouched(monkeypatch):
    signer = SasSigner(lambda a, c: (_ for _ in ()).throw(AssertionError("no token wanted")))
    assert signer.sign("https://sentinel-cogs.s3.us-west-2.amazonaws.com/a.tif").endswith("a.tif")
    assert sign_href("earth-search", HREF) == HREF
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    assert earthdata_headers() == {}
    monkeypatch.setenv("EARTHDATA_TOKEN", "abc")
    assert earthdata_headers() == {"Authorization": "Bearer abc"}
