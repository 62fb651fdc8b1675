"""Helpers of the flow tests: the server handle, polling, the prefect CLI and API reads."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEPLOYMENTS = ("curate/region", "rebuild/weekly", "train/after-release", "evaluate/after-train")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PrefectServer:
    url: str  # the API root, http://127.0.0.1:PORT/api
    home: Path
    log: Path
    data: Path  # SPECTRALEARTH_DATA of every flow run in the session

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a subprocess that talks to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_API_URL=self.url,
            PREFECT_HOME=str(self.home / "client"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="INFO",
            SPECTRALEARTH_DATA=str(self.data),
            SPECTRALEARTH_RETRY_BACKOFF_S="0.2",
            SPECTRALEARTH_TRAIN_STEPS="3",
            SPECTRALEARTH_DASK_WORKERS="1",
            SPECTRALEARTH_CHUNK_CELLS="2",  # several tile chunks per run: a kill lands mid-run
            PYTHONPATH=str(REPO),
        )
        env.update(extra)
        return env


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5, proc=None, log=None):
    """Poll ``predicate()`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            tail = Path(log).read_text()[-3000:] if log else ""
            pytest.fail(f"{what}: process exited with {proc.returncode}\n{tail}")
        time.sleep(interval)
    tail = Path(log).read_text()[-3000:] if log else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def run_prefect(server: PrefectServer, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the ``prefect`` CLI against the session's server."""
    return subprocess.run(
        [str(BIN / "prefect"), *args], check=False, env=server.env(), capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def flow_runs(server: PrefectServer, deployment: str) -> list:
    """Flow runs of ``flow/deployment``, newest first (read through the real API)."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(deployment)
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        )


def task_runs(server: PrefectServer, flow_run_id) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def deployments_named(server: PrefectServer, names) -> dict:
    """The registered deployments among ``names`` (``flow/deployment``), by name."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    found = {}
    with temporary_settings(updates={PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
        for name in names:
            try:
                found[name] = client.read_deployment_by_name(name)
            except ObjectNotFound:
                pass
    return found
