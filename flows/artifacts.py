"""Prefect artifacts of the flows: images, tables and stage timings, readable in the UI.

Artifacts are small: a table, or an image as a thumbnail of at most :data:`THUMB_PX` pixels
(a few tens of kB embedded as a data URL) whose description names the full-size file; the data
itself stays in the release. Outside a flow or task run (e.g. a library test) nothing is created
and the functions return quietly.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext, TaskRunContext

#: Longest side of an image artifact's thumbnail, in pixels.
THUMB_PX = 480
#: A thumbnail bigger than this (a PNG of noise) is linked by path rather than embedded.
MAX_EMBED_BYTES = 96_000


def _in_run() -> bool:
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def artifact_key(text: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes)."""
    out = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in out.split("-") if p)[:100]


def thumbnail(path: Path, max_px: int = THUMB_PX) -> bytes:
    """The image at ``path`` scaled down (never up) to ``max_px`` on its longest side, as PNG bytes."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGBA") if im.mode not in ("RGB", "RGBA") else im.copy()
        im.thumbnail((max_px, max_px))
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def publish_image(path: Path, key: str, description: str) -> None:
    """Show a thumbnail of the image at ``path`` in the UI (a small data URL), naming the file; an
    image whose thumbnail is still large is shown as its path only."""
    if not _in_run() or not Path(path).exists():
        return
    small = thumbnail(Path(path))
    if len(small) <= MAX_EMBED_BYTES:
        url = "data:image/png;base64," + base64.b64encode(small).decode()
        create_image_artifact(image_url=url, key=artifact_key(key), description=f"{description} (full size: {path})")
    else:
        create_markdown_artifact(f"**{description}**\n\n`{path}`", key=artifact_key(key))


class Progress:
    """A progress artifact (0-100 %) for ``total`` units of work, updated as they finish."""

    def __init__(self, total: int, key: str, description: str) -> None:
        self.total, self.done = max(int(total), 1), 0
        self.id = create_progress_artifact(0.0, key=artifact_key(key), description=description) if _in_run() else None

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.id is not None:
            update_progress_artifact(self.id, round(100.0 * min(self.done, self.total) / self.total, 1))


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
