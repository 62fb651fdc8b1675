"""Release version commands: publish, versions, diff (thin wrappers over spectralearth_data.release)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .output import console


def publish(
    release: Annotated[str, typer.Argument(help="Release folder or URL (s3://, gs://, az://).")],
    release_id: Annotated[str | None, typer.Option("--release-id", help="Release id (default: the published "
                                                   "one, else the store's).")] = None,
    rename: Annotated[bool, typer.Option("--rename", help="Allow a new id for a release already published "
                                         "under another one.")] = False,
) -> None:
    """Validate a release and publish what is committed as its next immutable version (versions/vN.json,
    compacted index, STAC, Croissant, README, release.json); refuses an empty release, a rename without
    --rename, and a publish with nothing new since the latest version."""
    from ..release.publish import publish as run
    from ..release.versions import latest
    from ..release.storage import open_location

    out = run(release, release_id, rename=rename)
    rec = latest(open_location(release, create=False))
    reused = sum(1 for e in rec["index"] if e["written_by"] != rec["id"]) if rec else 0
    typer.echo(f"published {rec['release_id']} {rec['id']} (parent {rec['parent'] or 'none'}): {rec['patches']} "
               f"patches, {len(rec['commit_log'])} commit-log objects, {len(rec['index'])} index objects "
               f"({reused} reused) -> {out}")


def versions(
    release: Annotated[str, typer.Argument(help="Release folder or URL.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the version records' summaries as JSON.")] = False,
) -> None:
    """List the published versions of a release (oldest first)."""
    from ..release.versions import list_versions

    recs = list_versions(release)
    rows = [{"id": r["id"], "parent": r["parent"], "created": r["created"], "release_id": r["release_id"],
             "patches": r["patches"], "cells": r["cells"], "counts": {k: v["patches"] for k, v in r["counts"].items()},
             "commit_log_objects": len(r["commit_log"]), "index_objects": len(r["index"]),
             "pipeline_version": r["pipeline_version"], "synthesized": r["synthesized"]} for r in recs]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo(f"{release}: no published version (run `spectralearth publish {release}`)")
        return
    from rich.table import Table

    t = Table(title=f"versions of {release}" + (" (SYNTHESIZED)" if any(r["synthesized"] for r in rows) else ""))
    for col in ("version", "parent", "created", "release id", "patches", "locations", "per product", "objects"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["id"], r["parent"] or "-", r["created"], r["release_id"], str(r["patches"]), str(r["cells"]),
                  " ".join(f"{k}:{v}" for k, v in sorted(r["counts"].items())),
                  f"{r['commit_log_objects']} log / {r['index_objects']} index")
    console().print(t)


def diff(
    release: Annotated[str, typer.Argument(help="Release folder or URL.")],
    old: Annotated[str, typer.Argument(help="Older version, e.g. v000001 (or 1).")],
    new: Annotated[str, typer.Argument(help="Newer version, e.g. v000002 (or 2).")],
    as_json: Annotated[bool, typer.Option("--json", help="Counts and the lists of added/removed patch ids as JSON.")] = False,
) -> None:
    """Patches added and removed between two versions, per product."""
    from ..release.versions import diff as run

    d = run(release, old, new)
    if as_json:
        typer.echo(json.dumps(d.as_dict(), indent=1))
        return
    from rich.table import Table

    t = Table(title=f"{release}: {d.old} -> {d.new}")
    for col in ("product", "added", "removed"):
        t.add_column(col)
    for p in sorted(set(d.added) | set(d.removed)):
        t.add_row(p, str(len(d.added.get(p, []))), str(len(d.removed.get(p, []))))
    t.add_row("total", str(sum(map(len, d.added.values()))), str(sum(map(len, d.removed.values()))))
    console().print(t)


def register(group) -> None:
    """Add publish, versions and diff to a command group (``spectralearth_data.cli.commands``)."""
    group.command("publish")(publish)
    group.command("versions")(versions)
    group.command("diff")(diff)
