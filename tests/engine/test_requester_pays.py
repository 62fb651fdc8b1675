"""Requester-pays S3 assets (Earth Search Landsat on s3://usgs-landsat, `storage:requester_pays`)
are read through GDAL's /vsis3 with AWS_REQUEST_PAYER=requester, and only those reads.

moto (5.2.5) does not enforce requester pays (it has no request-payment check on GetObject), so
the S3 server here cannot refuse a read without the header. Instead moto's request recorder
shows what GDAL actually sent: the ``x-amz-request-payer: requester`` header is on every request
for the requester-pays asset and on none for the other one."""

from __future__ import annotations

import json
import logging
import urllib.request
import uuid
from pathlib import Path

import boto3
import numpy as np
import pytest
import rasterio
from affine import Affine
from moto.server import ThreadedMotoServer
from odc.geo.geobox import GeoBox

from spectralearth_data.credentials import gdal_options, reading_item, requester_pays
from spectralearth_data.engine.readers.cog import read_onto
from spectralearth_data.errors import InputDataError

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
RGB = FIXTURES / "geotiff" / "RGB.byte.tif"
LANDSAT = FIXTURES / "stac/earth_search/colocated_colorado_20231008/landsat-c2-l2_LC08_L2SP_033032_20231008_02_T1.json"
KEY = SECRET = "testing"


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory):
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.moto_api import recorder

    # the recorder writes to ./moto_recording unless told otherwise: keep it out of the checkout
    recorder._location = str(tmp_path_factory.mktemp("moto") / "recording")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def bucket(moto_s3, monkeypatch):
    """A bucket holding RGB.byte.tif twice (one key per asset), GDAL pointed at moto."""
    name = f"rp-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", endpoint_url=moto_s3, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                      region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_request_payment(Bucket=name, RequestPaymentConfiguration={"Payer": "Requester"})
    for key in ("paid/SR_B4.TIF", "free/B04.tif"):
        s3.upload_file(str(RGB), name, key)
    host = moto_s3.split("://", 1)[1]
    for k, v in {"AWS_S3_ENDPOINT": host, "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
                 "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                 "AWS_NO_SIGN_REQUEST": "NO"}.items():
        monkeypatch.setenv(k, v)
    return name


def _recorder(endpoint: str, action: str) -> bytes:
    method = "GET" if action == "download-recording" else "POST"
    req = urllib.request.Request(f"{endpoint}/moto-api/recorder/{action}", method=method, data=None if method == "GET" else b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def _geobox() -> GeoBox:
    with rasterio.open(RGB) as ds:
        t = ds.transform
    return GeoBox((32, 32), Affine(t.a, 0, t.c + t.a * 200, 0, t.e, t.f + t.e * 300), "EPSG:32618")


def test_the_landsat_fixture_says_requester_pays_and_s2_does_not():
    item = json.loads(LANDSAT.read_text())
    red = item["assets"]["red"]["href"]
    assert red.startswith("s3://usgs-landsat/") and requester_pays(item, red)
    with reading_item(item):
        assert gdal_options(red) == {"AWS_REQUEST_PAYER": "requester"}
        assert gdal_options("s3://sentinel-cogs/x/B04.tif") == {}  # not an asset of this item
    assert gdal_options(red) == {}  # outside the item's read
    s2 = {"assets": {"red": {"href": "s3://sentinel-cogs/x/B04.tif"}}, "properties": {}}
    assert not requester_pays(s2, "s3://sentinel-cogs/x/B04.tif")
    # STAC storage extension v2: the flag lives in storage:schemes
    v2 = {"properties": {"storage:schemes": {"aws": {"type": "aws-s3", "requester_pays": True}}},
          "assets": {"red": {"href": "s3://b/k.tif", "storage:refs": ["aws"]}}}
    assert requester_pays(v2, "s3://b/k.tif")
    # an https href of a requester-pays asset needs no GDAL option (no /vsis3)
    with reading_item({"assets": {"a": {"href": "https://h/a.tif", "storage:requester_pays": True}}}):
        assert gdal_options("https://h/a.tif") == {}


def test_only_requester_pays_reads_send_the_header(bucket, moto_s3):
    paid, free = f"s3://{bucket}/paid/SR_B4.TIF", f"s3://{bucket}/free/B04.tif"
    item = {"assets": {"red": {"href": paid, "storage:requester_pays": True},
                       "b04": {"href": free, "storage:requester_pays": False}}, "properties": {}}
    _recorder(moto_s3, "reset-recording")
    _recorder(moto_s3, "start-recording")
    try:
        with reading_item(item):
            a = read_onto(paid, _geobox(), dtype="uint8", nodata=0)
            b = read_onto(free, _geobox(), dtype="uint8", nodata=0)
    finally:
        _recorder(moto_s3, "stop-recording")
    np.testing.assert_array_equal(a, b)
    with rasterio.open(RGB) as ds:
        np.testing.assert_array_equal(a, ds.read(window=rasterio.windows.Window(200, 300, 32, 32)))
    records = [json.loads(line) for line in _recorder(moto_s3, "download-recording").decode().splitlines() if line]
    by_key: dict[str, list[dict]] = {"paid": [], "free": []}
    for r in records:
        for k in by_key:
            if f"/{bucket}/{k}/" in r["url"]:
                by_key[k].append({h.lower(): v for h, v in r["headers"].items()})
    assert by_key["paid"] and by_key["free"], records
    assert all(h.get("x-amz-request-payer") == "requester" for h in by_key["paid"])
    assert not any("x-amz-request-payer" in h for h in by_key["free"])


def test_a_failed_requester_pays_read_says_which_credentials_it_needs(bucket):
    missing = f"s3://{bucket}/paid/NOPE.TIF"
    with reading_item({"assets": {"red": {"href": missing, "storage:requester_pays": True}}}):
        with pytest.raises(InputDataError) as err:
            read_onto(missing, _geobox(), dtype="uint8", nodata=0)
    msg = str(err.value)
    assert "requester-pays" in msg and "AWS_ACCESS_KEY_ID" in msg and SECRET not in msg
