"""The ``spectralearth`` command line: thin typer commands over library functions.

Each area registers its commands from its own module (``register(app)``), so the command files
stay small and independent. A :class:`~spectralearth_data.errors.SpectralEarthError` is printed
as one line (``error: ...``) with exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from ..errors import SpectralEarthError

app = typer.Typer(
    name="spectralearth",
    help="Curate SpectralEarth-MM (multi-sensor hyperspectral patches) and pretrain SpectralEarth-FM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: Command modules, in the order their commands appear in --help.
COMMAND_MODULES = (
    "catalog_cmd",  # catalog
    "demo_cmd",  # demo-scenes
    "discovery_cmd",  # search, colocate
    "engine_cmd",  # tile, validate, export, quicklook, publish, upload
    "model_cmd",  # model-info
    "train_cmd",  # train
    "evaluate_cmd",  # evaluate
    "orchestrate_cmd",  # serve, demo
)


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    if debug:
        os.environ["SPECTRALEARTH_DEBUG"] = "1"


for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _e:  # an area not built yet
        if _e.name != f"{__name__}.{_name}":
            raise
        continue
    _mod.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SpectralEarthError as e:
        if os.environ.get("SPECTRALEARTH_DEBUG") or "--debug" in sys.argv:
            raise
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
