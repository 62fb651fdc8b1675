"""Engine commands: tile, validate, export, quicklook, publish, upload (thin wrappers over engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: Exit code of a command stopped by Ctrl-C (128 + SIGINT, what a shell reports for it).
INTERRUPTED = 130


def tile(
    plan: Annotated[Path, typer.Argument(help="Plan GeoParquet from `spectralearth colocate`.")],
    store: Annotated[str, typer.Option("--store", help="Release: a folder (OUT.zarr) or an s3:// gs:// az:// URL; created or resumed.")],
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address (tcp://...), or 'synchronous'; default: a LocalCluster.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="LocalCluster worker processes (default: CPU count).")] = None,
    cells: Annotated[list[str] | None, typer.Option("--cell", help="Only these cell ids (repeatable).")] = None,
    patches_per_shard: Annotated[int, typer.Option("--patches-per-shard", help="Patches per Zarr shard.")] = 64,
    min_valid: Annotated[float, typer.Option("--min-valid", help="Drop patches with a smaller valid fraction.")] = 0.05,
    max_cloud: Annotated[float, typer.Option("--max-cloud", help="Drop patches with a larger cloud fraction.")] = 1.0,
    release_id: Annotated[str | None, typer.Option("--release-id", help="Release id for a new store (default: its name).")] = None,
    no_coreg: Annotated[bool, typer.Option("--no-coreg", help="Skip the HSI-to-S2 co-registration check (coreg_shift_px = NaN).")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    partition: Annotated[str | None, typer.Option("--partition", help="Tile only this partition's cells into its own batch "
                                                  "(the plan's `partition` column, or --partition-cells); writers of "
                                                  "different partitions may run at once.")] = None,
    partition_cells: Annotated[Path | None, typer.Option("--partition-cells", help="Text file: the partition's cell ids, "
                                                         "one per line.")] = None,
) -> None:
    """Reproject and tile a plan into the sharded Zarr release (resumes after a crash)."""
    from ..engine import TileConfig
    from ..engine import tile as run

    cfg = TileConfig(patches_per_shard=patches_per_shard, min_valid_fraction=min_valid,
                     max_cloud_fraction=max_cloud, coreg=not no_coreg, release_id=release_id)
    from ..engine.tile import TileInterrupted

    part_cells = None
    if partition_cells is not None:
        from ..errors import InputDataError

        try:
            part_cells = {ln.strip() for ln in partition_cells.read_text().splitlines() if ln.strip()}
        except OSError as e:
            raise InputDataError(f"{partition_cells}: cannot read the partition's cell ids ({e.strerror})") from None
    try:
        s = run(plan, store, scheduler=scheduler, workers=workers, progress=not no_progress, cells=cells or None,
                config=cfg, partition=partition, partition_cells=part_cells)
    except TileInterrupted as e:  # Ctrl-C: one line, exit 130 (128 + SIGINT, as a shell reports it)
        typer.echo(f"{e}; rerun the same command to resume", err=True)
        raise typer.Exit(INTERRUPTED) from None
    typer.echo(
        f"{s.patches_written} patches written, {s.patches_dropped} dropped"
        f"{' (' + ', '.join(f'{k}: {v}' for k, v in sorted(s.drop_reasons.items())) + ')' if s.drop_reasons else ''}, "
        f"{s.patches_skipped} already in the index, {s.tasks} tasks on {s.workers} worker(s) "
        f"in {s.seconds:.1f} s -> {store}"
    )


def validate(
    store: Annotated[str, typer.Argument(help="Release: a folder or an s3:// gs:// az:// URL.")],
    no_hashes: Annotated[bool, typer.Option("--no-hashes", help="Skip the sha256 check of every patch.")] = False,
) -> None:
    """Check every index row against the data; prints problems, exit 1 if any."""
    from ..release.validate import validate_store as run

    problems = run(store, check_hashes=not no_hashes)
    for p in problems:
        typer.echo(p)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {store}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{store}: valid")


def export(
    store: Annotated[Path, typer.Argument(help="Release store folder.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the exported release.")],
    all_products: Annotated[bool, typer.Option("--all", help="Include non-redistributable products (internal use).")] = False,
) -> None:
    """Copy a release without the products whose licence forbids redistribution (EnMAP, DESIS)."""
    from ..release.export import export as run

    typer.echo(f"exported to {run(store, out, redistributable_only=not all_products)}")


def quicklook(
    store: Annotated[Path, typer.Argument(help="Release store folder.")],
    cell: Annotated[str, typer.Option("--cell", help="Cell id, e.g. 32633_00380_06084.")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("quicklook.png"),
) -> None:
    """PNG of one location across products (RGB, SAR, LST, HSI mean spectrum)."""
    from ..release.quicklook import quicklook as run

    typer.echo(f"wrote {run(store, cell, out)}")


def upload(
    store: Annotated[Path, typer.Argument(help="Published release store folder (has release.json).")],
    url: Annotated[str, typer.Argument(help="Destination, e.g. s3://bucket/releases/NAME.zarr (any fsspec URL).")],
    storage_option: Annotated[list[str] | None, typer.Option(
        "--storage-option",
        help="Backend option KEY=VALUE (repeatable; JSON values parsed; dotted keys nest, e.g. "
             "client_kwargs.endpoint_url=http://host:9000). Prefer the environment for credentials.",
    )] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Copy a published release to object storage (chunks first, release.json last; resumes)."""
    from ..release.upload import parse_storage_options
    from ..release.upload import upload as run

    s = run(store, url, parse_storage_options(storage_option or []), progress=not no_progress)
    typer.echo(
        f"{s.files_uploaded} files uploaded ({s.bytes_uploaded / 1e6:.1f} MB), {s.files_skipped} already there "
        f"({s.bytes_skipped / 1e6:.1f} MB) in {s.seconds:.1f} s -> {s.url} (release {s.release_id})"
    )
    if s.remote_extra:
        typer.echo(f"note: {s.remote_extra} object(s) under {s.url} are not in the store; left as they are")
    if s.not_redistributable:
        typer.echo(
            f"note: {', '.join(s.not_redistributable)} may not be redistributed (licence); keep this "
            "location private, or upload the output of `spectralearth export` instead"
        )
