"""The wheel works outside a checkout: catalogs and the built-in task data travel as package data.

The wheel is built from this checkout without network access, installed with ``--no-deps`` into a
fresh virtualenv in a temporary folder; its third-party dependencies come from the project's own
environment through a ``.pth`` line (a ``.pth`` file inside that folder, such as the editable
install's finder, is not run from there, so only the installed wheel provides our packages).
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin/`` folder of a fresh virtualenv holding only the built wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    str(ROOT), "-w", str(tmp / "dist")], check=True, capture_output=True, cwd=tmp)
    wheel = next((tmp / "dist").glob("spectralearth-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
    venv_py = tmp / "venv" / "bin" / "python"
    purelib = subprocess.run([str(venv_py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "project_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv_py), "install", "-q", "--no-deps",
                    str(wheel)], check=True, capture_output=True, cwd=tmp)
    return tmp / "venv" / "bin"


def _run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRALEARTH_")}
    env["PYTHONPATH"] = ""
    return subprocess.run([str(bin_dir / "spectralearth"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_package_comes_from_the_wheel(installed, tmp_path):
    out = subprocess.run([str(installed / "python"), "-c",
                          "import spectralearth_data, spectralearth_model.evaluate.tasks as t; "
                          "print(spectralearth_data.__file__); print(t.potsdam_dir())"],
                         cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(not p.startswith(str(ROOT)) for p in out), out
    assert len(list(Path(out[1], "images").glob("*.tif"))) == 6


def test_catalog_json_lists_the_seven_products(installed, tmp_path):
    r = _run(installed, "catalog", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    products = json.loads(r.stdout)
    names = sorted(p["name"] for p in products) if isinstance(products, list) else sorted(products)
    assert names == sorted(["enmap", "emit", "desis", "s2", "landsat", "lst", "s1"])


def test_demo_scenes_run_from_another_directory(installed, tmp_path):
    r = _run(installed, "demo-scenes", "--out", "scenes", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    catalog = json.loads((tmp_path / "scenes" / "catalog.json").read_text())
    assert catalog["type"] == "Catalog"
    assert len(list((tmp_path / "scenes").rglob("*.tif"))) >= 7
