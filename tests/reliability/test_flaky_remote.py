"""A flaky remote: COGs and STAC JSON behind local servers that inject 500/503, 429 with
Retry-After, slow answers, connection resets and truncated bodies at seeded rates.

Curation either completes with bounded retries, identical to a clean run, or stops with one
clear error naming the asset or source; a partial patch is never indexed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
from servers import FaultProxy, stac_api_server
from servers.http_range import Chaos, serve

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.errors import InputDataError, SourceError
from spectralearth_data.sources import RetryPolicy, search

from .harness import fingerprint, lost
from .ledger import LEDGER

FIX = Path(__file__).resolve().parents[1] / "data" / "fixtures"
ALL_FAULTS = {500: 0.04, 503: 0.04, 429: 0.03, "slow": 0.04, "reset": 0.03, "truncate": 0.03}
#: Tile runs a flaky remote gets before the test gives up (each resumes the previous one).
MAX_RUNS = 4


def http_plan(plan_path: Path, root: Path, url: str, out: Path) -> Path:
    """The plan with every asset href moved from ``root`` to the server at ``url``."""
    plan = gpd.read_parquet(plan_path)

    def move(assets: str) -> str:
        return json.dumps({k: f"{url}/{Path(v).relative_to(root)}" for k, v in json.loads(assets).items()})

    plan["assets"] = plan["assets"].map(move)
    plan.to_parquet(out)
    return out


def expected(demo) -> dict[str, str]:
    return {k: v for k, v in demo.clean.items() if not k.startswith("emit/")}


@pytest.mark.parametrize("seed,max_faults", [
    (1, 12), pytest.param(2, 40, marks=pytest.mark.slow), pytest.param(5, 40, marks=pytest.mark.slow),
    pytest.param(8, 40, marks=pytest.mark.slow)])
def test_tiling_through_random_faults_completes_or_names_the_asset(seed, max_faults, demo, tmp_path):
    want = expected(demo)
    store = tmp_path / "r.zarr"
    errors: list[str] = []
    with serve(demo.scenes_dir) as srv:
        srv.chaos = Chaos(ALL_FAULTS, seed=seed, delay_s=0.2, retry_after=1, max_faults=max_faults)
        plan = http_plan(demo.cog_plan, demo.scenes_dir, srv.url, tmp_path / "plan.parquet")
        for _ in range(MAX_RUNS):
            before = fingerprint(store)
            try:
                tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig())
                break
            except InputDataError as e:
                msg = str(e)
                errors.append(msg)
                assert "\n" not in msg and re.search(r"http://127\.0\.0\.1:\d+/\S+\.tif", msg), msg
            got = fingerprint(store)
            assert all(want.get(k) == v for k, v in got.items()), "a torn patch was indexed"
            assert lost(before, got) == 0 and all("locations" in p for p in validate(store))
        injected = srv.chaos.total
        requests = sum(srv.requests.values())
    after = fingerprint(store)
    assert validate(store) == []
    assert after == want, f"not complete after {MAX_RUNS} runs: {errors}"
    assert injected > 0
    assert requests < 40 * len(want)  # retries are bounded
    LEDGER.record("flaky remote", f"COG chaos seed {seed} ({len(errors)} reruns)", injected=injected,
                  survived=True, lost=lost(want, after))


@pytest.mark.parametrize("fault", [pytest.param(503, marks=pytest.mark.slow), pytest.param("reset", marks=pytest.mark.slow),
                                   "truncate"], ids=["503", "reset", "truncated"])
def test_an_asset_that_always_fails_is_named_and_nothing_torn_is_indexed(fault, demo, tmp_path):
    want = expected(demo)
    store = tmp_path / "r.zarr"
    with serve(demo.scenes_dir) as srv:
        plan = http_plan(demo.cog_plan, demo.scenes_dir, srv.url, tmp_path / "plan.parquet")
        rows = gpd.read_parquet(plan)
        s2 = rows[rows["sensor"] == "s2"].iloc[0]
        bad = json.loads(s2["assets"])["B08"]
        rel = bad.split(srv.url + "/", 1)[1]
        srv.chaos = Chaos({fault: 1.0}, only=lambda p: p == rel)
        with pytest.raises(InputDataError) as err:
            tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig())
        n_requests = srv.requests[rel]
    msg = str(err.value)
    assert bad in msg and "cannot read raster" in msg and "\n" not in msg
    assert n_requests <= 12, f"{n_requests} requests for one failing asset: retries not bounded"
    got = fingerprint(store)
    assert got and all(want.get(k) == v for k, v in got.items())
    assert not any(k.endswith(s2["scene_id"]) and k.startswith("s2/") for k in got)
    assert validate(store) == []
    LEDGER.record("flaky remote", f"asset always {fault}", injected=n_requests, survived=True, lost=0)


@pytest.fixture(scope="module")
def stac_api():
    with stac_api_server(sorted((FIX / "stac/planetary_computer/items").glob("*.geojson"))) as url:
        yield url


TASMANIA = {"type": "Feature", "properties": {"name": "tas"}, "geometry": {"type": "Polygon", "coordinates": [
    [[146.0, -45.0], [152.0, -45.0], [152.0, -37.0], [146.0, -37.0], [146.0, -45.0]]]}}


@pytest.mark.parametrize("seed", [0, 1, *(pytest.param(i, marks=pytest.mark.slow) for i in range(2, 8))])
def test_stac_search_through_random_faults(seed, stac_api, tmp_path):
    region = tmp_path / "tas.geojson"
    region.write_text(json.dumps(TASMANIA))
    retry = RetryPolicy(attempts=6, backoff_s=0.01, jitter_s=0.01, max_backoff_s=0.05, timeout_s=(2.0, 5.0))
    clean = search("planetary-computer", region, sensors=["landsat"], url=stac_api, retry=retry)
    rates = {500: 0.12, 503: 0.12, 429: 0.08, "slow": 0.1, "reset": 0.1, "truncate": 0.1}
    with FaultProxy(stac_api, chaos=Chaos(rates, seed=seed, delay_s=0.2, retry_after=1)) as proxy:
        try:
            got = search("planetary-computer", region, sensors=["landsat"], url=proxy.url, retry=retry)
            outcome = "completed"
        except SourceError as e:
            assert proxy.url in str(e) and "planetary-computer" in str(e) and "\n" not in str(e)
            got, outcome = None, "stopped cleanly"
    if got is not None:
        assert sorted(got["scene_id"]) == sorted(clean["scene_id"])
    assert len(proxy.log) <= 8 * (retry.attempts + 1)
    LEDGER.record("flaky remote", f"STAC chaos seed {seed}: {outcome}", injected=proxy.chaos.total, survived=True)
