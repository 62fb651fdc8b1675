"""The layers: the data package stands alone (no torch, Prefect, flows or model package)."""

from __future__ import annotations

import json
import subprocess
import sys

#: What the data layer must never pull in, directly or through another module.
UPPER = ("torch", "prefect", "flows", "spectralearth_model")

_PROBE = """
import importlib, json, pkgutil, sys
import spectralearth_data
names = sorted(m.name for m in pkgutil.walk_packages(spectralearth_data.__path__, "spectralearth_data."))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_every_data_module_imports_without_the_layers_above():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) > 40  # the probe really walked the package
    assert {"spectralearth_data.cli", "spectralearth_data.release", "spectralearth_data.grid",
            "spectralearth_data.credentials"} <= set(result["modules"])
    leaked = [m for m in UPPER if m in result["loaded"]]
    assert not leaked, f"importing spectralearth_data loaded {leaked}"


def test_the_model_package_does_not_import_flows():
    probe = (
        "import importlib, pkgutil, sys, spectralearth_model\n"
        "for m in pkgutil.walk_packages(spectralearth_model.__path__, 'spectralearth_model.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('flows' in {n.split('.')[0] for n in sys.modules})"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
