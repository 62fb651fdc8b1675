"""Engine commands: tile, validate, export, quicklook, publish, upload (thin wrappers over engine)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def tile(
        plan: Path = typer.Argument(..., help="Plan GeoParquet from `spectralearth colocate`."),
        store: Path = typer.Option(..., "--store", help="Release store folder (OUT.zarr); created or resumed."),
        scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://...), or 'synchronous'; default: a LocalCluster."),
        workers: int = typer.Option(None, "--workers", help="LocalCluster worker processes (default: CPU count)."),
        cells: list[str] = typer.Option(None, "--cell", help="Only these cell ids (repeatable)."),
        patches_per_shard: int = typer.Option(64, "--patches-per-shard", help="Patches per Zarr shard."),
        min_valid: float = typer.Option(0.05, "--min-valid", help="Drop patches with a smaller valid fraction."),
        max_cloud: float = typer.Option(1.0, "--max-cloud", help="Drop patches with a larger cloud fraction."),
        release_id: str = typer.Option(None, "--release-id", help="Release id for a new store (default: its name)."),
        no_coreg: bool = typer.Option(False, "--no-coreg", help="Skip the HSI-to-S2 co-registration check (coreg_shift_px = NaN)."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    ) -> None:
        """Reproject and tile a plan into the sharded Zarr release (resumes after a crash)."""
        from ..engine import TileConfig
        from ..engine import tile as run

        cfg = TileConfig(patches_per_shard=patches_per_shard, min_valid_fraction=min_valid,
                         max_cloud_fraction=max_cloud, coreg=not no_coreg, release_id=release_id)
        s = run(plan, store, scheduler=scheduler, workers=workers, progress=not no_progress, cells=cells or None, config=cfg)
        typer.echo(
            f"{s.patches_written} patches written, {s.patches_dropped} dropped"
            f"{' (' + ', '.join(f'{k}: {v}' for k, v in sorted(s.drop_reasons.items())) + ')' if s.drop_reasons else ''}, "
            f"{s.patches_skipped} already in the index, {s.tasks} tasks on {s.workers} worker(s) "
            f"in {s.seconds:.1f} s -> {store}"
        )

    @app.command()
    def validate(
        store: Path = typer.Argument(..., help="Release store folder."),
        no_hashes: bool = typer.Option(False, "--no-hashes", help="Skip the sha256 check of every patch."),
    ) -> None:
        """Check every index row against the data; prints problems, exit 1 if any."""
        from ..engine import validate as run

        problems = run(store, check_hashes=not no_hashes)
        for p in problems:
            typer.echo(p)
        if problems:
            typer.echo(f"{len(problems)} problem(s) in {store}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{store}: valid")

    @app.command()
    def export(
        store: Path = typer.Argument(..., help="Release store folder."),
        out: Path = typer.Option(..., "--out", help="New folder for the exported release."),
        all_products: bool = typer.Option(False, "--all", help="Include non-redistributable products (internal use)."),
    ) -> None:
        """Copy a release without the products whose licence forbids redistribution (EnMAP, DESIS)."""
        from ..engine import export as run

        typer.echo(f"exported to {run(store, out, redistributable_only=not all_products)}")

    @app.command()
    def quicklook(
        store: Path = typer.Argument(..., help="Release store folder."),
        cell: str = typer.Option(..., "--cell", help="Cell id, e.g. 32633_00380_06084."),
        out: Path = typer.Option(Path("quicklook.png"), "--out", help="PNG to write."),
    ) -> None:
        """PNG of one location across products (RGB, SAR, LST, HSI mean spectrum)."""
        from ..engine import quicklook as run

        typer.echo(f"wrote {run(store, cell, out)}")

    @app.command()
    def publish(
        store: Path = typer.Argument(..., help="Release store folder."),
        release_id: str = typer.Option(..., "--release-id", help="Release id to publish under."),
    ) -> None:
        """Validate a store and write its release manifest (release.json)."""
        from ..engine import publish as run

        typer.echo(f"wrote {run(store, release_id)}")

    @app.command()
    def upload(
        store: Path = typer.Argument(..., help="Published release store folder (has release.json)."),
        url: str = typer.Argument(..., help="Destination, e.g. s3://bucket/releases/NAME.zarr (any fsspec URL)."),
        storage_option: list[str] = typer.Option(
            None, "--storage-option",
            help="Backend option KEY=VALUE (repeatable; JSON values parsed; dotted keys nest, e.g. "
                 "client_kwargs.endpoint_url=http://host:9000). Prefer the environment for credentials.",
        ),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    ) -> None:
        """Copy a published release to object storage (chunks first, release.json last; resumes)."""
        from ..engine.upload import parse_storage_options
        from ..engine.upload import upload as run

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
