"""The deployments register on a real Prefect server, and bad parameters fail before any work."""

from __future__ import annotations

import pytest
import yaml
from prefect_helpers import DEPLOYMENTS, REPO, flow_runs, run_prefect, task_runs

from flows.deployments import REBUILD_CRON, build_deployments


def _read_deployments(server):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
        deps = {name: client.read_deployment_by_name(name) for name in DEPLOYMENTS}
        automations = {a.name: a for a in client.read_automations()}
    return deps, automations


def test_serve_registers_every_deployment(served):
    deps, automations = _read_deployments(served)
    assert deps["curate/region"].parameters == {"region": "demo", "source": "demo", "cell_m": 960}
    (schedule,) = deps["rebuild/weekly"].schedules
    assert schedule.schedule.cron == REBUILD_CRON and schedule.active
    # each trigger is an automation that runs its deployment with parameters from the event
    train_auto = automations["train-after-release"]
    assert train_auto.trigger.expect == {"spectralearth.release.published"}
    (action,) = train_auto.actions
    assert action.deployment_id == deps["train/after-release"].id
    assert action.parameters == {"release": "{{ event.payload.location }}"}
    eval_auto = automations["evaluate-after-train"]
    assert eval_auto.trigger.expect == {"spectralearth.model.trained"}
    assert eval_auto.actions[0].deployment_id == deps["evaluate/after-train"].id


def _normalise(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in (None, {}, [])}


def test_prefect_yaml_defines_the_same_deployments_as_serve():
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    from_yaml = {}
    for d in doc["deployments"]:
        flow_name = d["entrypoint"].rsplit(":", 1)[1]
        assert d["work_pool"]["name"] == "spectralearth-process"
        triggers = [
            _normalise({"name": t["name"], "expect": set(t["expect"]), "match": t["match"], "parameters": t["parameters"]})
            for t in d.get("triggers", [])
        ]
        crons = [s["cron"] for s in d.get("schedules", [])]
        from_yaml[f"{flow_name}/{d['name']}"] = (d.get("parameters", {}), crons, triggers)
    from_serve = {}
    for dep in build_deployments():
        triggers = [
            _normalise({"name": t.name, "expect": set(t.expect), "match": t.match.model_dump(), "parameters": t.parameters})
            for t in dep.triggers
        ]
        crons = [s.schedule.cron for s in dep.schedules or []]
        from_serve[f"{dep.flow_name}/{dep.name}"] = (dep.parameters, crons, triggers)
    assert set(from_yaml) == set(DEPLOYMENTS)
    assert from_yaml == from_serve


@pytest.mark.parametrize(
    "params, message",
    [
        pytest.param(["region=atlantis"], "unknown region 'atlantis'", id="unknown-region"),
        pytest.param(['sensors=["enmap","hyperion9"]'], "unknown product 'hyperion9'", id="unknown-sensor"),
        pytest.param(["start=2024-09-30", "end=2024-05-01"], "start=2024-09-30 is after end=2024-05-01", id="reversed-dates"),
        pytest.param(['cells=["32633_99999_99999"]'], "cells: 32633_99999_99999 not in region 'demo' at cell_m=960",
                     id="cell-matching-nothing"),  # issue 20.4: was a late 'not a release store' in validate
    ],
)
def test_bad_parameters_are_rejected_before_any_work(served, params, message, request):
    release = f"bad-{request.node.callspec.id}"
    args = ["deployment", "run", "curate/region", "--watch", "--watch-timeout", "180", "--param", f"release={release}"]
    for p in params:
        args += ["--param", p]
    proc = run_prefect(served, *args, timeout=240)
    assert proc.returncode != 0, proc.stdout
    run = next(r for r in flow_runs(served, "curate/region") if r.parameters.get("release") == release)
    assert run.state.is_failed()
    assert message in run.state.message  # one clear line, naming the parameter
    assert task_runs(served, run.id) == []  # not a single task started
    assert not (served.data / "runs" / release).exists()
    assert not (served.data / "releases" / f"{release}.zarr").exists()
