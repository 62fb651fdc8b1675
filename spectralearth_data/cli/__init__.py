"""The data commands of the ``spectralearth`` command line, and the pieces every layer's app shares.

The commands are thin typer wrappers over library functions, one module per area; this package
holds only the curation commands (catalog, demo-scenes, search, colocate, tile, validate, export,
quicklook, publish, versions, diff, partitions, upload), so it imports neither torch nor Prefect. The full ``spectralearth``
app, with the model and orchestration commands, is composed in :mod:`flows.cli`.

Shared by every layer's app:

* :func:`command_group` - a nameless group of commands that :func:`make_app` merges into an app;
* :func:`make_app` - the app: the groups' commands in order, plus the ``--debug`` option;
* :func:`run` - runs an app; a :class:`~spectralearth_data.errors.SpectralEarthError` is printed
  as one line (``error: ...``) with exit code 2; ``--debug`` shows the traceback instead;
* :func:`.output.console` - the rich Console of the tables (full width when piped).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ..credentials import install_log_redaction
from ..errors import SpectralEarthError
from .access_cmd import check_access_cmd
from .catalog_cmd import catalog
from .demo_cmd import demo_scenes
from .discovery_cmd import colocate_cmd, search_cmd
from .engine_cmd import export, quicklook, tile, upload, validate
from .inspect_cmd import inspect_item
from .output import plain_flags_in_help
from .partitions_cmd import partitions_cmd
from .release_cmd import diff, publish, versions

plain_flags_in_help()  # boolean options show as `--debug`, not `--debug <bool>`


def command_group() -> typer.Typer:
    """An empty, nameless group of commands, for :func:`make_app` to merge into an app."""
    return typer.Typer(add_completion=False)


def _debug_option(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
) -> None:
    if debug:
        os.environ["SPECTRALEARTH_DEBUG"] = "1"


def make_app(*groups: typer.Typer, help: str) -> typer.Typer:
    """A ``spectralearth`` app with the commands of ``groups``, in that order, and ``--debug``."""
    app = typer.Typer(
        name="spectralearth",
        help=help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_debug_option)
    for group in groups:
        app.add_typer(group)  # no name: its commands join the app's own
    return app


def run(app: typer.Typer) -> None:
    """Run ``app``: a SpectralEarthError becomes one ``error: ...`` line and exit code 2
    (with ``--debug`` or ``SPECTRALEARTH_DEBUG`` set, the traceback instead).

    Every entry point comes through here, so this is where the process-wide log redaction of
    read-time credentials is installed (GDAL names signed URLs in its warnings)."""
    install_log_redaction()
    try:
        app()
    except SpectralEarthError as e:
        if os.environ.get("SPECTRALEARTH_DEBUG") or "--debug" in sys.argv:
            raise
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)


#: The data commands, in the order they appear in ``spectralearth --help``.
commands = command_group()
commands.command("catalog")(catalog)
commands.command("demo-scenes")(demo_scenes)
commands.command("search")(search_cmd)
commands.command("inspect-item")(inspect_item)
commands.command("check-access")(check_access_cmd)
commands.command("colocate")(colocate_cmd)
commands.command("partitions")(partitions_cmd)
commands.command("tile")(tile)
commands.command("validate")(validate)
commands.command("export")(export)
commands.command("quicklook")(quicklook)
commands.command("publish")(publish)
commands.command("versions")(versions)
commands.command("diff")(diff)
commands.command("upload")(upload)

#: The data commands alone, as an app (no torch, no Prefect).
app = make_app(commands, help="Curate SpectralEarth-MM (multi-sensor hyperspectral patches).")


def main() -> None:
    """Run the data commands alone (the ``spectralearth`` console script is :func:`flows.cli.main`)."""
    run(app)
