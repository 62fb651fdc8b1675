"""A real Prefect server process for the flow tests, and helpers to talk to it.

The session starts ``prefect server start`` on a free localhost port (its own PREFECT_HOME in a
temporary folder, analytics and UI off), polls ``/api/health`` until it answers, and stops the
process group at the end. Served deployments run in a ``spectralearth serve`` subprocess with
the same environment, so flow runs are real subprocesses talking to the real server.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
import requests
from prefect_helpers import (
    BIN,
    DEPLOYMENTS,
    REPO,
    PrefectServer,
    deployments_named,
    free_port,
    stop_process,
    wait_for,
)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Iterator[PrefectServer]:
    root = tmp_path_factory.mktemp("prefect")
    port = free_port()
    server = PrefectServer(
        url=f"http://127.0.0.1:{port}/api", home=root, log=root / "server.log", data=root / "data"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(root / "server"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
    )
    with open(server.log, "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def healthy() -> bool:
        try:
            return requests.get(f"{server.url}/health", timeout=2).ok
        except requests.RequestException:
            return False

    try:
        wait_for(healthy, 120, "the Prefect server to answer /api/health", proc=proc, log=server.log)
        yield server
    finally:
        stop_process(proc)


@pytest.fixture
def prefect_api(prefect_server: PrefectServer, monkeypatch) -> Iterator[PrefectServer]:
    """Run flows *in this process* against the session's server (and its data folder)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("SPECTRALEARTH_DATA", str(prefect_server.data))
    monkeypatch.setenv("SPECTRALEARTH_RETRY_BACKOFF_S", "0.2")
    monkeypatch.setenv("SPECTRALEARTH_DASK_WORKERS", "1")
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}):
        yield prefect_server
        # send this test's logs and events now, while the server still answers
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)


@pytest.fixture(scope="session")
def served(prefect_server: PrefectServer) -> Iterator[PrefectServer]:
    """``spectralearth serve`` running for the session, with every deployment registered."""
    log = prefect_server.home / "serve.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(BIN / "spectralearth"), "serve"], cwd=REPO, env=prefect_server.env(),
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def registered() -> bool:
        return "being served" in log.read_text() and len(deployments_named(prefect_server, DEPLOYMENTS)) == len(DEPLOYMENTS)

    try:
        wait_for(registered, 120, "`spectralearth serve` to register the deployments", interval=2, proc=proc, log=log)
        yield prefect_server
    finally:
        stop_process(proc)


