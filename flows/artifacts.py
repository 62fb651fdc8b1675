"""Prefect artifacts of the flows: images, tables and stage timings, readable in the UI.

Artifacts are small (a table, a PNG of at most a few hundred kB embedded as a data URL); the
data itself stays in the release. Outside a flow or task run (e.g. a library test) nothing is
created and the functions return quietly.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact
from prefect.context import FlowRunContext, TaskRunContext

#: Images larger than this are linked by path rather than embedded.
MAX_EMBED_BYTES = 1_500_000


def _in_run() -> bool:
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def artifact_key(text: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes)."""
    out = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in out.split("-") if p)[:100]


def publish_image(path: Path, key: str, description: str) -> None:
    """Show the PNG at ``path`` in the UI (embedded as a data URL) or, if large, its path."""
    if not _in_run() or not Path(path).exists():
        return
    raw = Path(path).read_bytes()
    if len(raw) <= MAX_EMBED_BYTES:
        url = "data:image/png;base64," + base64.b64encode(raw).decode()
        create_image_artifact(image_url=url, key=artifact_key(key), description=f"{description} ({path})")
    else:
        create_markdown_artifact(f"**{description}**\n\n`{path}`", key=artifact_key(key))


def publish_table(rows: list[dict], key: str, description: str) -> None:
    if _in_run() and rows:
        create_table_artifact(table=rows, key=artifact_key(key), description=description)


def publish_markdown(text: str, key: str, description: str) -> None:
    if _in_run():
        create_markdown_artifact(text, key=artifact_key(key), description=description)


class StageTimer:
    """Wall-clock seconds per named stage of a flow, published as one table."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.rows.append({"stage": name, "seconds": round(time.perf_counter() - t0, 2)})

    def publish(self, key: str) -> None:
        total = round(sum(r["seconds"] for r in self.rows), 2)
        publish_table(self.rows + [{"stage": "total", "seconds": total}], key, "Seconds per stage")
