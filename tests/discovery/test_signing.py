"""Read-time SAS signing: cached per container until shortly before expiry (injected tokens)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spectralearth_data import credentials
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


def test_non_blob_hrefs_are_untouched_and_blobs_are_signed_whatever_the_source(monkeypatch):
    signer = SasSigner(lambda a, c: (_ for _ in ()).throw(AssertionError("no token wanted")))
    assert signer.sign("https://sentinel-cogs.s3.us-west-2.amazonaws.com/a.tif").endswith("a.tif")
    assert sign_href("earth-search", "https://sentinel-cogs.s3.us-west-2.amazonaws.com/a.tif").endswith("a.tif")
    # a Planetary Computer blob is signed by its host (sources.yaml `hosts`), not by the source's
    # name: items copied into a local: catalogue still read (injected tokens, no network)
    monkeypatch.setattr(credentials, "_sas_signer", SasSigner(lambda a, c: SasToken("sv=1&sig=x", datetime.now(UTC) + timedelta(hours=1))))
    for source in ("earth-search", "local:/data/catalog.json", None):
        assert sign_href(source, HREF) == HREF + "?sv=1&sig=x"
    public = "https://ai4edatasetspublicassets.blob.core.windows.net/assets/thumb.png"
    assert sign_href("local:/data/catalog.json", public) == public  # PC's public thumbnails are not signed
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    assert earthdata_headers() == {}
    monkeypatch.setenv("EARTHDATA_TOKEN", "abc")
    assert earthdata_headers() == {"Authorization": "Bearer abc"}
