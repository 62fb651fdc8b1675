"""Versions without rewrites (issue 18, item 3) on a local folder: publish freezes what is committed
as v000001, refuses to publish nothing new, and a second period and a new partition become
v000002 and v000003 without changing one byte of an object that existed before (except the
"latest" pointers, which belong to no version); ``versions`` and ``diff`` report them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from release.publish_helpers import CELLS, EXTRA_CELL, demo_plan, listing, period, rewritten, tile_into

from spectralearth_data.release import versions as vs
from spectralearth_data.release.publish import LATEST_POINTERS, publish

#: The release commands as an app of their own (the ``spectralearth`` app registers the same ones).
CLI = [sys.executable, "-c", "from spectralearth_data.cli import command_group, make_app, run; "
       "from spectralearth_data.cli.release_cmd import register; g = command_group(); register(g); "
       "run(make_app(g, help='release'))"]


def _cli(*args):
    """The commands in a child process (the one-line error and exit code come from ``run``)."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def _app():
    from spectralearth_data.cli import command_group, make_app
    from spectralearth_data.cli.release_cmd import register

    g = command_group()
    register(g)
    return make_app(g, help="release")


def _run(*args):
    """The commands in this process (typer's runner), for their output."""
    from typer.testing import CliRunner

    return CliRunner().invoke(_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A release published three times: June (v1), + August (v2), + a cell of partition east (v3);
    with the listing of every object after each publish."""
    plan = demo_plan(tmp_path_factory.getbasetemp() / "demo-scenes")
    store = tmp_path_factory.mktemp("versions") / "demo.zarr"
    tile_into(period(plan, 1), store)
    publish(store, "demo-test")
    seen = {"v1": listing(store)}
    tile_into(period(plan, 2), store)
    publish(store)
    seen["v2"] = listing(store)
    tile_into(period(plan, 1), store, cells=[EXTRA_CELL], partition="east", partition_cells={EXTRA_CELL})
    publish(store)
    seen["v3"] = listing(store)
    return store, seen


def test_each_publish_is_a_new_record_and_rewrites_no_object(grown):
    store, seen = grown
    assert vs.list_versions(store)[0]["id"] == "v000001"
    recs = {r["id"]: r for r in vs.list_versions(store)}
    assert list(recs) == ["v000001", "v000002", "v000003"]
    v1, v2, v3 = recs.values()
    assert (v1["parent"], v2["parent"], v3["parent"]) == (None, "v000001", "v000002")
    assert v1["synthesized"] is True and "SYNTHESIZED" in v1["note"]
    assert v1["release_id"] == v3["release_id"] == "demo-test"
    # a version adds commit-log objects, never drops or changes one
    k1, k2, k3 = ({(p["key"], p["sha256"]) for p in r["commit_log"]} for r in (v1, v2, v3))
    assert k1 < k2 < k3
    assert v2["patches"] > v1["patches"] and set(v2["counts"]) >= {"desis", "emit"}
    assert v1["counts"]["s2"]["patches"] == 2 and "desis" not in v1["counts"]
    assert all(c["config_id"] and c["config"]["patches_per_shard"] == 4 for c in v1["tile_configs"].values())
    # zero rewritten objects: everything of v1 (data, commit log, version objects) is unchanged
    assert rewritten(seen["v1"], seen["v2"], LATEST_POINTERS) == []
    assert rewritten(seen["v2"], seen["v3"], LATEST_POINTERS) == []
    for key in (p["key"] for p in v1["commit_log"]):
        assert seen["v3"][key] == seen["v1"][key]


def test_an_unchanged_partition_keeps_the_objects_of_the_older_version(grown):
    store, _ = grown
    v2, v3 = vs.read_record(vs.open_location(store), "v000002"), vs.read_record(vs.open_location(store), 3)
    by_part = {e["partition"]: e for e in v3["index"]}
    assert set(by_part) == {"utm32633", "east"}
    assert by_part["utm32633"] == next(e for e in v2["index"] if e["partition"] == "utm32633")
    assert by_part["utm32633"]["written_by"] == "v000002" and by_part["east"]["written_by"] == "v000003"
    assert by_part["east"]["key"] == "versions/v000003/index/east-000.parquet"
    assert not (store / "versions" / "v000003" / "index" / "utm32633-000.parquet").exists()


def test_publishing_nothing_new_is_refused_with_exit_2(grown):
    store, seen = grown
    with pytest.raises(vs.NothingNew, match="nothing new since v000003"):
        publish(store)
    r = _cli("publish", store)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "nothing new since v000003" in r.stderr
    assert listing(store) == seen["v3"]


def test_versions_and_diff_commands(grown):
    store, _ = grown
    r = _run("versions", store, "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["id"] for x in rows] == ["v000001", "v000002", "v000003"] and rows[1]["parent"] == "v000001"
    table = _run("versions", store)
    assert table.exit_code == 0 and "v000002" in table.stdout and "SYNTHESIZED" in table.stdout
    d = vs.diff(store, "v000001", "v000002")
    added = d.as_dict()
    assert added["removed"] == {} and set(added["added"]) == {"desis", "emit"}
    assert sum(added["added"].values()) == len(added["added_patches"])
    v1 = set(vs.version_index(vs.open_location(store), vs.read_record(vs.open_location(store), 1))["patch_id"])
    v2 = set(vs.version_index(vs.open_location(store), vs.read_record(vs.open_location(store), 2))["patch_id"])
    assert set(added["added_patches"]) == v2 - v1
    r = _run("diff", store, "1", "v000003", "--json")
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout)
    assert all(p.split("/")[1] == EXTRA_CELL for p in set(j["added_patches"]) - set(added["added_patches"]))
    back = vs.diff(store, "v000003", "v000001")
    assert back.added == {} and sum(map(len, back.removed.values())) == len(j["added_patches"])
    assert "total" in _run("diff", store, "v000001", "v000002").stdout
    bad = _cli("diff", store, "v000001", "v000009")
    assert bad.returncode == 2 and "no version v000009 (published: v000001, v000002, v000003)" in bad.stderr


def test_release_json_describes_the_latest_version(grown):
    store, _ = grown
    manifest = json.loads((store / "release.json").read_text())
    last = vs.latest(vs.open_location(store))
    assert manifest["version"] == last["id"] == "v000003" and manifest["versions"][-1] == "v000003"
    assert manifest["patches"] == last["patches"] and manifest["content_sha256"] == last["content_sha256"]
    assert sorted(manifest["index_parts"]) == sorted(p["key"].split("index/patches/", 1)[1] for p in last["commit_log"])
    assert manifest["synthesized"] is True and manifest["sensors"]["s2"]["shape"] == [12, 96, 96]
    assert all(c in CELLS or c == EXTRA_CELL for c in vs.version_index(vs.open_location(store), last)["cell_id"])


def test_a_publish_killed_after_its_record_only_finishes_the_pointers(grown, tmp_path):
    import shutil

    store, _ = grown
    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    stale = json.loads((copy / "release.json").read_text())
    stale["version"] = "v000002"  # as if killed between versions/v000003.json and the pointers
    (copy / "release.json").write_text(json.dumps(stale))
    (copy / "README.md").unlink()
    publish(copy)
    assert vs.version_ids(vs.open_location(copy)) == ["v000001", "v000002", "v000003"]
    assert json.loads((copy / "release.json").read_text())["version"] == "v000003"
    assert "version v000003" in (copy / "README.md").read_text()


def test_a_changed_object_of_a_published_version_is_refused(grown, tmp_path):
    import shutil

    from spectralearth_data.errors import ReleaseError

    store, _ = grown
    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    log = vs.read_record(vs.open_location(copy), 1)["commit_log"]
    key = log[0]["key"]
    (copy / key).write_bytes((copy / log[1]["key"]).read_bytes())  # a valid part, other bytes
    with pytest.raises(ReleaseError, match=rf"{key}: committed in v000003 but has changed"):
        publish(copy)
    (copy / key).unlink()
    with pytest.raises(ReleaseError, match=rf"{key}: committed in v000003 but is missing"):
        publish(copy)
    assert vs.version_ids(vs.open_location(copy))[-1] == "v000003"
