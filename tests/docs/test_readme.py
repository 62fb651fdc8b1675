"""The README runs as written (issue 20, item 2): every ``bash`` and ``python`` block of README.md
is run, in order, in one fresh working folder, against the SYNTHESIZED demo scenes.

A block that cannot run here says so in the README itself with a comment on the line before it,
``<!-- readme-test: skip: REASON -->`` (a Prefect server, Docker, the network, or the suite
itself); the test checks that every such reason names where that block is covered instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(?P<reason>.+?)\s*-->")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None  # the reason, when the README says this block is not run here


def readme_blocks(text: str) -> list[Block]:
    """The fenced ``bash``/``python`` blocks of ``text`` with their skip reasons."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w+)\s*$", lines[i])
        if m and m.group(1) in ("bash", "python"):
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            prev = lines[i - 1] if i else ""
            sk = SKIP.search(prev)
            blocks.append(Block(i + 1, m.group(1), "\n".join(lines[i + 1 : j]) + "\n", sk and sk.group("reason")))
            i = j
        i += 1
    return blocks


def test_the_parser_sees_blocks_and_skip_comments():
    text = "a\n```bash\necho 1\n```\n<!-- readme-test: skip: needs X; covered by tests/x.py -->\n```python\nprint(2)\n```\n"
    got = readme_blocks(text)
    assert [(b.lang, b.text, b.skip) for b in got] == [
        ("bash", "echo 1\n", None), ("python", "print(2)\n", "needs X; covered by tests/x.py")]


def test_every_readme_block_runs_as_written(tmp_path):
    blocks = readme_blocks((REPO / "README.md").read_text())
    ran = [b for b in blocks if b.skip is None]
    assert len(ran) >= 3, "the README should show the pipeline by hand"
    for b in blocks:
        if b.skip is not None:  # a skipped block names where it is covered instead
            assert "covered by" in b.skip, f"README line {b.line}: say where this block is covered"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "SPECTRALEARTH_DATA": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}
    for b in ran:
        cmd = ["bash", "-euo", "pipefail", "-c", b.text] if b.lang == "bash" else [sys.executable, "-c", b.text]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"README line {b.line} ({b.lang}) failed:\n{b.text}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
