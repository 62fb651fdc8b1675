"""``upload``: a published release copied to a real local S3-compatible server (moto), read back
with plain xarray/geopandas/s3fs, resumed after kill -9, and refused with one-line errors.

The store is tiled by the engine from SYNTHESIZED demo scenes (two cells where all seven
products are present). Nothing here reaches real AWS/GCS/Azure.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import geopandas as gpd
import pytest
import s3fs
import xarray as xr
from moto.server import ThreadedMotoServer

from spectralearth_data.release.upload import parse_storage_options, safe_url, upload
from spectralearth_data.errors import InputDataError, ReleaseError

CLI = [sys.executable, "-c", "from spectralearth_data.cli import main; main()"]
#: Two demo cells where every product is present (see tests/reliability/harness.py).
CELLS = ("32633_00382_06049", "32633_00382_06050")
KEY = SECRET = "testing"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(endpoint: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def endpoint():
    """A moto S3 server on a free localhost port for this module (start() returns once it listens)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def opts(endpoint) -> dict:
    return {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": endpoint}}


@pytest.fixture
def bucket(opts) -> str:
    name = f"se-{uuid.uuid4().hex[:12]}"
    _fs(opts).mkdir(name)
    return name


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A published store tiled by the engine from synthesized demo scenes (two cells)."""
    from spectralearth_data.colocate import colocate
    from spectralearth_data.demo import make_demo_scenes
    from spectralearth_data.engine import TileConfig, tile
    from spectralearth_data.release.publish import publish
    from spectralearth_data.sources import search

    root = tmp_path_factory.mktemp("upload-release")
    make_demo_scenes(root / "scenes")
    plan = colocate(search(f"local:{root / 'scenes' / 'catalog.json'}", "demo"), cell_m=960)
    store = root / "demo-960m.zarr"
    summary = tile(plan, store, scheduler="synchronous", progress=False, cells=list(CELLS),
                   config=TileConfig(release_id="upload-test", patches_per_shard=2))
    assert summary.patches_written >= 7 and not summary.failed
    publish(store, "upload-test")
    return store


def _fs(opts) -> s3fs.S3FileSystem:
    fs = s3fs.S3FileSystem(**opts)
    fs.invalidate_cache()
    return fs


def _local_files(store: Path) -> dict[str, bytes]:
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*")
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp")
            and not p.relative_to(store).as_posix().startswith("index/leases/")}  # writers' local state


def _remote_files(opts, root: str) -> dict[str, bytes]:
    fs = _fs(opts)
    return {p[len(root) + 1:]: fs.cat_file(p) for p in fs.find(root)}


def test_upload_reads_back_with_plain_xarray_and_geopandas_then_a_rerun_uploads_nothing(release, opts, bucket):
    url = f"s3://{bucket}/releases/demo-960m.zarr"
    local = _local_files(release)
    order: list[str] = []
    s = upload(release, url, opts, progress=False, on_uploaded=order.append)
    assert (s.files_uploaded, s.files_skipped) == (len(local), 0)
    assert s.bytes_uploaded == sum(map(len, local.values())) and s.url == url and s.release_id == "upload-test"
    assert s.not_redistributable == ["desis", "enmap"]

    # the order keeps the remote consistent: chunks, array then group metadata (root last),
    # index parts, version records, release.json
    assert order[-1] == "release.json"
    metas = [i for i, r in enumerate(order) if r.endswith("zarr.json")]
    chunks = [i for i, r in enumerate(order) if "/c/" in r]
    parts = [i for i, r in enumerate(order) if r.startswith("index/patches/")]
    versions = [i for i, r in enumerate(order) if r.startswith("versions/")]
    assert max(chunks) < min(metas) and max(metas) < min(parts) and order[max(metas)] == "zarr.json"
    assert not versions or max(parts) < min(versions)
    assert sorted(order) == sorted(local)

    ro = {"storage_options": opts}
    batch = gpd.read_parquet(release / "index" / "patches")["batch"].iloc[0]
    for group in ("s2", "enmap", "s1"):  # a batch opens as its own store (its consolidated metadata)
        remote = xr.open_zarr(f"{url}/{group}/{batch}", consolidated=True, **ro)
        here = xr.open_zarr(release / group / batch, consolidated=True)
        assert remote.sizes["patch"] > 0
        xr.testing.assert_identical(remote.load(), here.load())
    idx_remote = gpd.read_parquet(f"{url}/index/patches", **ro).sort_values("patch_id", ignore_index=True)
    idx_local = gpd.read_parquet(release / "index" / "patches").sort_values("patch_id", ignore_index=True)
    assert len(idx_local) > 0 and idx_remote.equals(idx_local)
    fs = _fs(opts)
    assert json.loads(fs.cat_file(f"{bucket}/releases/demo-960m.zarr/release.json")) == \
        json.loads((release / "release.json").read_text())

    again = upload(release, url, opts, progress=False)
    assert (again.files_uploaded, again.files_skipped, again.bytes_uploaded) == (0, len(local), 0)
    assert again.remote_extra == 0


def test_a_changed_or_missing_object_is_uploaded_again_and_extra_objects_are_left(release, opts, bucket):
    url = f"s3://{bucket}/r.zarr"
    upload(release, url, opts, progress=False)
    fs = _fs(opts)
    root = f"{bucket}/r.zarr"
    chunk = next(p for p in sorted(fs.find(root)) if "/s2/" in p and "/data/c/" in p)
    fs.pipe_file(chunk, b"torn")  # a different size
    fs.pipe_file(f"{root}/zarr.json", fs.cat_file(f"{root}/zarr.json").replace(b"upload-test", b"upload-tesT"))  # same size
    fs.rm_file(next(p for p in sorted(fs.find(f"{root}/index/patches"))))
    fs.pipe_file(f"{root}/stray.txt", b"not ours")
    s = upload(release, url, opts, progress=False)
    assert s.files_uploaded == 3 and s.remote_extra == 1
    remote = _remote_files(opts, root)
    assert remote.pop("stray.txt") == b"not ours"
    assert remote == _local_files(release)


def test_another_published_release_at_the_url_is_refused_and_left_intact(release, opts, bucket, tmp_path):
    from spectralearth_data.release.publish import publish

    url = f"s3://{bucket}/r.zarr"
    upload(release, url, opts, progress=False)
    newer = tmp_path / "newer.zarr"
    shutil.copytree(release, newer)
    publish(newer, "upload-test-2", rename=True)  # a new manifest and root attributes (an explicit rename)
    with pytest.raises(ReleaseError, match=r"holds another published release .*'upload-test'.*new URL"):
        upload(newer, url, opts, progress=False)
    assert _remote_files(opts, f"{bucket}/r.zarr") == _local_files(release)
    s = upload(newer, f"s3://{bucket}/r2.zarr", opts, progress=False)
    assert s.release_id == "upload-test-2" and _remote_files(opts, f"{bucket}/r2.zarr") == _local_files(newer)


_KILLER = """
import json, os, signal, sys
from spectralearth_data.release.upload import upload
store, url, opts, n = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
done = []
def hook(rel):
    done.append(rel)
    if len(done) >= n:
        os.kill(os.getpid(), signal.SIGKILL)
upload(store, url, opts, progress=False, on_uploaded=hook)
"""


@pytest.mark.parametrize("after", [pytest.param(3, id="among-chunks"), pytest.param(-1, id="before-manifest")])
def test_kill_9_mid_upload_leaves_no_manifest_and_a_rerun_completes_it(release, opts, bucket, after):
    url = f"s3://{bucket}/killed.zarr"
    local = _local_files(release)
    n = after if after > 0 else len(local) + after
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(release), url, json.dumps(opts), str(n)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    root = f"{bucket}/killed.zarr"
    remote = _remote_files(opts, root)
    assert n <= len(remote) < len(local) and "release.json" not in remote
    assert all(local[k] == v for k, v in remote.items())  # every object there is whole
    if after > 0:  # killed among the chunks: no metadata yet, so no reader sees a Zarr group
        assert not any(k.endswith("zarr.json") for k in remote)
    s = upload(release, url, opts, progress=False)
    assert s.files_uploaded == len(local) - len(remote) and s.files_skipped == len(remote)
    assert _remote_files(opts, root) == local


def test_an_unpublished_store_is_refused_and_nothing_is_uploaded(release, opts, bucket, tmp_path):
    copy = tmp_path / "unpublished.zarr"
    shutil.copytree(release, copy)
    (copy / "release.json").unlink()
    before = _local_files(copy)
    with pytest.raises(ReleaseError, match=r"unpublished\.zarr: not published \(no release\.json\)"):
        upload(copy, f"s3://{bucket}/u.zarr", opts, progress=False)
    assert _fs(opts).find(bucket) == [] and _local_files(copy) == before


def test_a_store_changed_after_publishing_is_refused(release, opts, bucket, tmp_path):
    copy = tmp_path / "changed.zarr"
    shutil.copytree(release, copy)
    part = next((copy / "index" / "patches").glob("*/part-*.parquet"))
    shutil.copy(part, part.with_name("part-s2-009999.parquet"))
    with pytest.raises(ReleaseError, match="changed after it was published"):
        upload(copy, f"s3://{bucket}/c.zarr", opts, progress=False)


def test_unknown_protocol_and_missing_backend_are_clear_errors(release):
    with pytest.raises(InputDataError, match=r"^nope://b/r\.zarr: unknown storage protocol 'nope'"):
        upload(release, "nope://b/r.zarr?token=abc", progress=False)
    missing = _protocol_without_backend()
    with pytest.raises(InputDataError, match=rf"{missing[0]}:// needs the package {missing[1]}"):
        upload(release, f"{missing[0]}://bucket/r.zarr", progress=False)


def _protocol_without_backend() -> tuple[str, str]:
    import importlib.util

    for protocol, package, module in (("gs", "gcsfs", "gcsfs"), ("abfs", "adlfs", "adlfs"), ("oci", "ocifs", "ocifs")):
        if importlib.util.find_spec(module) is None:
            return protocol, package
    raise AssertionError("gcsfs, adlfs and ocifs are all installed: pick another missing backend")


def test_a_stopped_endpoint_is_one_line_without_the_secret(release):
    secret = "s3cr3t-" + uuid.uuid4().hex
    dead = {"key": "AKIAEXAMPLE", "secret": secret,
            "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{_free_port()}", "region_name": "us-east-1"},
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}}}
    _assert_one_line_error(release, "s3://bucket/r.zarr", dead, secret,
                           "s3://bucket/r.zarr: listing failed: cannot reach the storage endpoint")


def _assert_one_line_error(release, url: str, opts: dict, secret: str, prefix: str) -> None:
    """``upload`` fails with one line starting with ``prefix``, without ``secret``, and leaves
    the local store as it was."""
    before = _local_files(release)
    with pytest.raises(ReleaseError) as err:
        upload(release, url, opts, progress=False)
    assert _local_files(release) == before
    msg = str(err.value)
    assert msg.startswith(prefix), msg
    assert "\n" not in msg and secret not in msg


@pytest.fixture(scope="module")
def auth_endpoint():
    """A second moto server that checks credentials (none are valid: every request is denied)."""
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_wrong_credentials_are_one_line_without_the_secret(release, auth_endpoint):
    secret = "s3cr3t-" + uuid.uuid4().hex
    bad = {"key": "AKIAWRONGKEY", "secret": secret, "client_kwargs": {"endpoint_url": auth_endpoint, "region_name": "us-east-1"}}
    _assert_one_line_error(release, "s3://bucket/r.zarr?X-Amz-Credential=AKIAWRONGKEY", bad, secret,
                           "s3://bucket/r.zarr: listing failed: access denied")


def test_a_missing_bucket_and_a_misspelt_option_are_one_line_errors(release, opts, bucket):
    with pytest.raises(ReleaseError, match=r"^s3://no-such-bucket-x/r\.zarr: listing failed: not found; does the bucket"):
        upload(release, "s3://no-such-bucket-x/r.zarr", opts, progress=False)
    with pytest.raises(ReleaseError, match="not accepted by the backend; check the --storage-option names"):
        upload(release, f"s3://{bucket}/r.zarr", {**opts, "endpoint": "http://x"}, progress=False)
    assert _fs(opts).find(bucket) == []


def test_a_local_destination_skips_temp_files_and_the_store_itself_is_refused(release, tmp_path):
    src = tmp_path / "src.zarr"
    shutil.copytree(release, src)
    leftovers = [src / "index" / "patches" / ".part-s2-000001.parquet.4242.tmp", src / ".write-probe-4242",
                 next(src.glob("s2/*/data")) / "zarr.json.tmp"]
    for p in leftovers:
        p.write_bytes(b"left by a killed writer")
    out = tmp_path / "mirror" / "copy.zarr"
    s = upload(src, str(out), progress=False)
    copied = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert copied == set(_local_files(release)) and s.files_uploaded == len(copied)
    assert _local_files(out) == _local_files(release)
    with pytest.raises(ReleaseError, match="is the store .* itself or inside it"):
        upload(release, f"file://{release}/sub", progress=False)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        pytest.param(["key=abc", "anon=false"], {"key": "abc", "anon": False}, id="json-or-text"),
        pytest.param(["client_kwargs.endpoint_url=http://h:9000", "client_kwargs.region_name=eu-west-1"],
                     {"client_kwargs": {"endpoint_url": "http://h:9000", "region_name": "eu-west-1"}}, id="nested"),
        pytest.param(["config_kwargs.retries={\"max_attempts\": 2}", "default_block_size=1048576"],
                     {"config_kwargs": {"retries": {"max_attempts": 2}}, "default_block_size": 1048576}, id="json-object"),
        pytest.param(["token=a=b"], {"token": "a=b"}, id="equals-in-value"),
    ],
)
def test_storage_options_parse(pairs, expected):
    assert parse_storage_options(pairs) == expected


@pytest.mark.parametrize("pairs", [["novalue"], ["=x"], ["a=1", "a.b=2"], ["a.b=2", "a=1"]])
def test_bad_storage_options_are_refused(pairs):
    with pytest.raises(InputDataError, match="--storage-option"):
        parse_storage_options(pairs)


def test_safe_url_drops_query_and_user_info():
    assert safe_url("s3://b/k.zarr?X-Amz-Signature=abc") == "s3://b/k.zarr"
    assert safe_url("https://user:pw@host/r.zarr") == "https://<redacted>@host/r.zarr"
    assert safe_url("abfs://container@account.dfs.core.windows.net/r.zarr") == \
        "abfs://container@account.dfs.core.windows.net/r.zarr"


def test_cli_uploads_with_credentials_from_the_environment(release, endpoint, opts, bucket, tmp_path):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    env.pop("SPECTRALEARTH_DEBUG", None)
    url = f"s3://{bucket}/cli.zarr"
    args = [*CLI, "upload", str(release), url, "--storage-option", f"client_kwargs.endpoint_url={endpoint}",
            "--storage-option", 'config_kwargs.retries={"max_attempts": 2}']  # with the progress bar
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    n = len(_local_files(release))
    assert f"{n} files uploaded" in r.stdout and f"-> {url} (release upload-test)" in r.stdout
    assert "note: desis, enmap may not be redistributed" in r.stdout
    assert _remote_files(opts, f"{bucket}/cli.zarr") == _local_files(release)

    copy = tmp_path / "u.zarr"
    shutil.copytree(release, copy)
    (copy / "release.json").unlink()
    r = subprocess.run([*CLI, "upload", str(copy), f"s3://{bucket}/u.zarr", "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=120, check=False)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("error: ") and "not published" in r.stderr

