"""Shared pieces of the publish tests: the demo's two periods tiled into a release (a folder or a
local S3-compatible server), object listings to compare, and a moto server with its environment.

The demo scenes (``spectralearth demo-scenes``) hold two acquisitions per product, one in June
and one in August 2024: the first period is the plan's rows anchored in June, the second those
anchored in August, so tiling the second into a published release adds a new batch of patches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

#: Two demo cells where every product is present (see tests/reliability/harness.py).
CELLS = ("32633_00382_06049", "32633_00382_06050")
#: A third demo cell, tiled as a partition of its own.
EXTRA_CELL = "32633_00382_06048"
SPLIT = pd.Timestamp("2024-07-01", tz="UTC")
KEY = SECRET = "testing"


def demo_plan(root: Path):
    """The co-location plan of the demo scenes at 960 m (scenes written under ``root``)."""
    from spectralearth_data.colocate import colocate
    from spectralearth_data.demo import make_demo_scenes
    from spectralearth_data.sources import search

    if not (root / "scenes" / "catalog.json").exists():
        make_demo_scenes(root / "scenes")
    return colocate(search(f"local:{root / 'scenes' / 'catalog.json'}", "demo"), cell_m=960)


def period(plan, n: int):
    """Rows of ``plan`` of period ``n``: 1 = anchored before July 2024, 2 = after."""
    t = pd.to_datetime(plan["anchor_datetime"], utc=True)
    return plan[(t < SPLIT) if n == 1 else (t >= SPLIT)].reset_index(drop=True)


def tile_into(plan, store, cells=CELLS, patches_per_shard: int = 4, **kw):
    """Tile ``plan``'s rows of ``cells`` into ``store`` (a folder or URL) in this process."""
    from spectralearth_data.engine import TileConfig, tile

    return tile(plan, store, scheduler="synchronous", progress=False, cells=list(cells),
                config=TileConfig(release_id="demo-test", patches_per_shard=patches_per_shard), **kw)


def listing(store) -> dict[str, tuple[int, str]]:
    """{key: (size, sha256 of the bytes)} of every object of a release (folder or URL)."""
    from spectralearth_data.release.storage import open_location

    loc = open_location(store, create=False)
    return {o.key: (o.size, hashlib.sha256(loc.get(o.key)).hexdigest()) for o in loc.list("")
            if not o.key.rsplit("/", 1)[-1].startswith(".")}


def rewritten(before: dict, after: dict, allowed: tuple[str, ...] = ()) -> list[str]:
    """Keys of ``before`` missing or changed in ``after`` (except ``allowed``)."""
    return sorted(k for k, v in before.items() if k not in allowed and after.get(k) != v)


@contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on a free localhost port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    """The environment obstore (and every AWS SDK) reads for the local server."""
    return {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}


def new_bucket(endpoint: str) -> str:
    import boto3

    name = f"se-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                 region_name="us-east-1").create_bucket(Bucket=name)
    return name


def s3fs_options(endpoint: str) -> dict:
    return {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}


def set_env(env: dict[str, str]) -> dict[str, str | None]:
    """Set ``env``; returns what to restore."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    return old


def restore_env(old: dict[str, str | None]) -> None:
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def published_demo(base: Path) -> Path:
    """The demo's first period tiled (shards of 4: every product's arrays have padded rows) and
    published as v000001 under ``base``; built once per test session and shared (read-only)."""
    from spectralearth_data.release.publish import publish

    store = base / "published-demo" / "demo.zarr"
    if not (store / "versions" / "v000001.json").exists():
        import shutil

        shutil.rmtree(store, ignore_errors=True)
        tile_into(period(demo_plan(base / "demo-scenes"), 1), store)
        publish(store, "demo-test")
    return store
