"""docker/ stays consistent with the tree (there is no Docker engine on CI: `.ci/run` also runs
`docker compose config`; here we check what the files refer to)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_declares_the_services():
    doc = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = doc["services"]
    assert {"prefect-server", "worker", "dask-scheduler", "dask-worker-1", "dask-worker-2"} <= set(services)
    for name in ("dask-worker-1", "dask-worker-2"):
        assert "tcp://dask-scheduler:8786" in services[name]["command"]
    assert services["worker"]["environment"]["PREFECT_API_URL"].startswith("http://prefect-server:4200")


def test_dockerfile_copies_existing_paths():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    sources = [m.group(1) for m in re.finditer(r"^COPY (\S+(?: \S+)*) \S+$", text, re.M)]
    paths = [p for line in sources for p in line.split()]
    assert paths, "Dockerfile has no COPY lines"
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"Dockerfile copies paths that do not exist: {missing}"
