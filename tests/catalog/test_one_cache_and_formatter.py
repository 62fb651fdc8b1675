"""The catalog's one sensor-spec cache (by catalog folder and name) and the one formatter of
pydantic errors (catalog files, sources, the training config)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from spectralearth_data.catalog import catalog_root, load_catalog, sensor_spec
from spectralearth_data.errors import describe_validation

CATALOGS = Path(__file__).resolve().parents[2] / "catalogs"


def test_sensor_specs_are_parsed_once_per_catalog_folder(tmp_path):
    enmap = sensor_spec("enmap")
    assert sensor_spec("enmap") is enmap and sensor_spec("enmap", catalog_root()) is enmap
    assert load_catalog()["enmap"] is enmap  # the whole catalog comes from the same cache
    copy = tmp_path / "catalogs"
    shutil.copytree(CATALOGS, copy)
    other = sensor_spec("enmap", copy)
    assert other is not enmap and other == enmap and load_catalog(copy)["enmap"] is other


def test_the_engine_reads_sensor_specs_through_the_catalog_cache():
    import importlib

    for module in ("spectralearth_data.engine.tasks", "spectralearth_data.engine.tile"):
        assert importlib.import_module(module).sensor_spec is sensor_spec


class _Pair(BaseModel):
    a: int
    b: int

    @model_validator(mode="after")
    def _ordered(self):
        if self.a > self.b:
            raise ValueError("a must not exceed b")
        return self


def _error(**kw) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        _Pair(**kw)
    return err.value


def test_one_line_names_where_the_field_and_counts_the_others():
    assert describe_validation(_error(a="x", b=1), "f.yaml") == (
        "f.yaml: a: Input should be a valid integer, unable to parse string as an integer")
    assert describe_validation(_error(), "training config").endswith(": a: Field required (+1 more)")
    assert describe_validation(_error(a=2, b=1), "f.yaml") == "f.yaml: (top level): Value error, a must not exceed b"
    assert describe_validation(_error(a=1), "s.yaml", loc_prefix="sources.3.") == "s.yaml: sources.3.b: Field required"
