"""``spectralearth demo-scenes``: synthesize the offline demo scenes and their STAC catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo_scenes(
    out: Annotated[Path, typer.Option("--out", help="Folder for the scenes and catalog.json (new, empty or a previous demo).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives identical scenes.")] = 0,
) -> None:
    """Write SYNTHESIZED scenes of every product over the demo region, plus a static STAC catalog."""
    from ..demo import make_demo_scenes

    summary = make_demo_scenes(out, seed=seed)
    typer.echo(f"SYNTHESIZED demo scenes (seed {seed}) - not real acquisitions - written to {summary.out_dir}")
    for product, n in summary.items.items():
        typer.echo(f"  {product:<8} {n} synthesized scene(s)")
    typer.echo(f"  {summary.files} files, {summary.bytes / 1e6:.1f} MB, {summary.seconds:.1f} s")
    typer.echo(f"STAC catalog: {summary.catalog}  (search it with --source demo or local:{summary.catalog})")
