"""``spectralearth_data.atomic``: the one write-temp-then-rename helper every writer uses."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spectralearth_data.atomic import atomic_path, temp_path


def test_success_replaces_the_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "sub" / "table.parquet"
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(".") and tmp.name.endswith(".tmp")
        pq.write_table(pa.table({"a": [1, 2]}), tmp)
        assert not out.exists()  # nothing visible before the block ends
    assert pq.read_table(out)["a"].to_pylist() == [1, 2]
    assert sorted(p.name for p in out.parent.iterdir()) == ["table.parquet"]


def test_an_error_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    out = tmp_path / "manifest.json"
    out.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(out) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("disk full")
    assert out.read_text() == "old"
    assert not temp_path(out).exists() and [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_temporary_left_by_a_kill_is_invisible_to_plain_parquet_readers(tmp_path):
    """What a kill -9 between write and rename leaves: a dot file, skipped by a folder read."""
    parts = tmp_path / "parts"
    with atomic_path(parts / "part-0.parquet") as tmp:
        pq.write_table(pa.table({"a": [1]}), tmp)
    pq.write_table(pa.table({"a": [9]}), temp_path(parts / "part-1.parquet"))  # the kill's leftover
    assert pq.read_table(parts)["a"].to_pylist() == [1]
