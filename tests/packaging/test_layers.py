"""The layers: each package imports only the ones below it (data < model < flows), checked in a
fresh interpreter that imports every module of the package."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module({package!r})
names = sorted(m.name for m in pkgutil.walk_packages(package.__path__, {package!r} + "."))
for name in names:
    importlib.import_module(name)
print(json.dumps({{"modules": names, "loaded": sorted(sys.modules)}}))
"""


def _import_all(package: str) -> tuple[list[str], set[str]]:
    """(every module of ``package``, every module loaded after importing them all)."""
    out = subprocess.run([sys.executable, "-c", _PROBE.format(package=package)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["modules"], set(result["loaded"])


def _tops(loaded: set[str]) -> set[str]:
    return {m.split(".")[0] for m in loaded}


def test_every_data_module_imports_without_the_layers_above():
    modules, loaded = _import_all("spectralearth_data")
    assert len(modules) > 40  # the probe really walked the package
    assert {"spectralearth_data.cli", "spectralearth_data.release", "spectralearth_data.grid",
            "spectralearth_data.credentials"} <= set(modules)
    leaked = sorted(_tops(loaded) & {"torch", "prefect", "flows", "spectralearth_model"})
    assert not leaked, f"importing spectralearth_data loaded {leaked}"


def test_the_release_package_imports_no_search_or_tiling_code():
    """The loader, the flows and the engine build on the release package; it builds on none of them."""
    _, loaded = _import_all("spectralearth_data.release")
    leaked = sorted(m for m in loaded if m.startswith(("spectralearth_data.sources", "spectralearth_data.engine"))
                    or m.split(".")[0] in ("torch", "prefect", "flows", "spectralearth_model"))
    assert not leaked, f"importing spectralearth_data.release loaded {leaked}"


def test_the_model_package_does_not_import_flows():
    modules, loaded = _import_all("spectralearth_model")
    assert "spectralearth_model.cli" in modules
    assert "flows" not in _tops(loaded) and "prefect" not in _tops(loaded)
