"""Secrets never reach disk: token-shaped Earthdata and SAS values are in the environment, and
hrefs are signed at read time (a real signer on a local server), yet their bytes occur in no
file of the release, index, plan, scene table or logs, nor in error messages."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from servers.http_range import Chaos, serve

from spectralearth_data import credentials
from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.errors import InputDataError

from .harness import fingerprint, run_cli
from .ledger import LEDGER

#: Token-shaped values: a JWT-like Earthdata bearer token, an Azure SAS query, a PC key.
EARTHDATA = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiJzcGVjdHJhbGVhcnRoLXRlc3QifQ.Zm9yLXRlc3RzLW9ubHktMTIzNDU2Nzg5"
SIG = "hF3kq9Zr%2BQm7Xv0L1s8yT2nW5pJ6cV4bN0aR3eU9dI%3D"
SAS = f"st=2026-11-29T00%3A00%3A00Z&se=2026-11-30T00%3A00%3A00Z&sp=rl&sv=2024-08-04&sr=c&skoid=abc&sig={SIG}"
#: An Earthdata Login password (EARTHDATA_PASSWORD, as earthaccess's "environment" strategy reads
#: it; the same kind of secret as a ~/.netrc password) and AWS keys (requester-pays reads).
EDL_PASSWORD = "Edl-Pa55word-7c1d9e"
AWS_SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
#: A DLR data-access password (DLR_PASSWORD; the DLR netrc entry is the same kind of secret).
DLR_PASSWORD = "Dlr-Pa55word-4e8a2b"
SECRETS = {"EARTHDATA_TOKEN": EARTHDATA, "AZURE_STORAGE_SAS_TOKEN": SAS, "PC_SDK_SUBSCRIPTION_KEY": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
           "EARTHDATA_USERNAME": "edl-user", "EARTHDATA_PASSWORD": EDL_PASSWORD, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
           "DLR_USERNAME": "dlr-user", "DLR_PASSWORD": DLR_PASSWORD}
#: The byte strings that must never be written (the signature alone is enough to leak).
NEEDLES = [EARTHDATA.encode(), SIG.encode(), SIG.replace("%2B", "+").replace("%3D", "=").encode(),
           SECRETS["PC_SDK_SUBSCRIPTION_KEY"].encode(), b"eyJ1aWQiOiJzcGVjdHJhbGVhcnRoLXRlc3QifQ",
           EDL_PASSWORD.encode(), AWS_SECRET.encode(), DLR_PASSWORD.encode()]


def leaks(*roots: Path) -> list[str]:
    """Files under ``roots`` holding any secret's bytes."""
    found = []
    for root in roots:
        for p in [root] if root.is_file() else root.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                found += [f"{p}: {n[:12]!r}..." for n in NEEDLES if n in data]
    return found


def test_cli_pipeline_with_secrets_in_the_environment(demo, tmp_path):
    """search -> colocate -> tile -> validate through the CLI, logs kept: no secret on disk."""
    out = tmp_path / "run"
    out.mkdir()
    steps = [
        ("search", "--source", f"local:{demo.scenes_dir / 'catalog.json'}", "--region", "demo", "-o", out / "scenes.parquet"),
        ("colocate", out / "scenes.parquet", "-o", out / "plan.parquet", "--cell-m", "960"),
    ]
    for i, args in enumerate(steps):
        r = run_cli(*args, env=SECRETS)
        (out / f"step{i}.log").write_text(r.stdout + r.stderr)
        assert r.returncode == 0, r.stderr
    plan = gpd.read_parquet(out / "plan.parquet")
    plan[plan["cell_id"] == plan["cell_id"].min()].to_parquet(out / "one.parquet")
    for i, args in enumerate([("tile", out / "one.parquet", "--store", out / "r.zarr", "--scheduler", "synchronous"),
                              ("validate", out / "r.zarr")], start=len(steps)):
        r = run_cli(*args, env=SECRETS)
        (out / f"step{i}.log").write_text(r.stdout + r.stderr)
        assert r.returncode == 0, r.stderr
    assert leaks(out) == []
    LEDGER.record("secrets", "CLI pipeline, secrets in env", injected=len(SECRETS), survived=True)


def _signer(href: str) -> str:
    return f"{href}{'&' if '?' in href else '?'}{SAS}"


def _set_secrets(monkeypatch) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)


@contextlib.contextmanager
def debug_log_to(log_file: Path) -> Iterator[None]:
    """Write every log record (DEBUG and up) to ``log_file`` while the block runs."""
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def _serve_assets_from(plan, scenes_dir: Path, url: str) -> None:
    """Point ``plan``'s asset paths (under ``scenes_dir``) at the same files under ``url``."""
    plan["assets"] = plan["assets"].map(lambda a: json.dumps(
        {k: f"{url}/{Path(v).relative_to(scenes_dir)}" for k, v in json.loads(a).items()}))


@pytest.fixture()
def signed_source(monkeypatch):
    """A source whose hrefs the engine signs at read time: ``planetary-computer`` (its ``auth`` in
    catalogs/sources.yaml signs), with the SAS signer replaced by one for the local server."""
    monkeypatch.setitem(credentials.AUTHS, "planetary-computer", credentials.ReadAuth(sign=_signer))
    return "planetary-computer"


def test_read_time_signatures_stay_out_of_store_index_errors_and_logs(demo, tmp_path, signed_source, monkeypatch):
    _set_secrets(monkeypatch)
    log_file = tmp_path / "run.log"
    store = tmp_path / "r.zarr"
    with debug_log_to(log_file), serve(demo.scenes_dir) as srv:
        plan = gpd.read_parquet(demo.cog_plan)
        plan = plan[plan["sensor"].isin(["s2", "s1"])].copy()
        plan["source"] = signed_source
        _serve_assets_from(plan, demo.scenes_dir, srv.url)
        plan_path = tmp_path / "plan.parquet"
        plan.to_parquet(plan_path)
        s1 = json.loads(plan[plan["sensor"] == "s1"].iloc[0]["assets"])["vv"]
        rel = s1.split(srv.url + "/", 1)[1]
        # transient faults everywhere (GDAL logs its retries), and one asset that never works
        srv.chaos = Chaos({503: 0.1, 500: 0.05}, seed=3, only=lambda p: p != rel)
        srv.faults[rel] = 503
        with pytest.raises(InputDataError) as err:
            tile(plan_path, store, scheduler="synchronous", progress=False, config=TileConfig())
        queries = list(srv.queries)
    assert any(SIG in q for q in queries), "the reads were not signed"
    message = str(err.value)
    assert rel in message and not any(n.decode(errors="ignore") in message for n in NEEDLES), message
    log_file.write_text(log_file.read_text() + "\n" + message)
    assert fingerprint(store) and validate(store) == []
    found = leaks(store, plan_path, log_file)
    LEDGER.record("secrets", "signed reads with faults", injected=len(queries), survived=not found)
    assert found == []


def test_dlr_password_and_session_cookie_stay_out_of_store_index_and_logs(demo, tmp_path, monkeypatch):
    """Tiling reads behind a CAS-like DLR sign-on (tests/servers/dlr_auth.py): the login posts
    the DLR password and GDAL reads with the session cookie; neither is written anywhere."""
    from servers.dlr_auth import dlr_cas

    _set_secrets(monkeypatch)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    credentials.forget_dlr_access()
    log_file = tmp_path / "run.log"
    store = tmp_path / "r.zarr"
    try:
        with debug_log_to(log_file), dlr_cas(demo.scenes_dir, user="dlr-user", password=DLR_PASSWORD) as (data, login):
            plan = gpd.read_parquet(demo.cog_plan)
            plan = plan[plan["sensor"] == "s2"].copy()
            plan["source"] = "dlr-geoservice"  # auth: dlr
            _serve_assets_from(plan, demo.scenes_dir, data.url)
            plan_path = tmp_path / "plan.parquet"
            plan.to_parquet(plan_path)
            tile(plan_path, store, scheduler="synchronous", progress=False, config=TileConfig())
            sessions = set(data.sessions)
    finally:
        credentials.forget_dlr_access()
    assert login.logins == 1 and sessions, "the reads did not go through the sign-on"
    assert fingerprint(store) and validate(store) == []
    needles = [DLR_PASSWORD.encode(), *(s.encode() for s in sessions)]
    found = [f"{p}: {n[:6]!r}..." for root_ in (store, plan_path, log_file)
             for p in ([root_] if root_.is_file() else root_.rglob("*")) if p.is_file()
             for n in needles if n in p.read_bytes()]
    LEDGER.record("secrets", "DLR sign-on reads", injected=len(needles), survived=not found)
    assert found == []


@pytest.mark.slow
def test_full_demo_with_secrets_leaves_none_in_release_logs_or_prefect_results(tmp_path):
    """``spectralearth demo`` (curate -> train -> evaluate through Prefect) with the secrets in
    the environment; PREFECT_HOME (its database of runs, logs and persisted results) is scanned
    along with the data folder."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    out = tmp_path / "demo"
    env = {**SECRETS, "PREFECT_HOME": str(home), "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
           "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage")}
    r = run_cli("demo", "--out", out, "--steps", "3", env=env, timeout=1500)
    (tmp_path / "demo.log").write_text(r.stdout + r.stderr)
    assert r.returncode == 0, r.stderr[-3000:]
    assert any(home.rglob("*.db")), "no Prefect database to scan"
    found = leaks(out, home, tmp_path / "demo.log")
    LEDGER.record("secrets", "full demo through Prefect", injected=len(SECRETS), survived=not found)
    assert found == []
