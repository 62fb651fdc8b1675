"""Terminal output shared by the command modules (rich tables, help formatting).

* :func:`console` - a rich Console for tables: the terminal's width on a terminal; when stdout is
  piped or redirected, wide enough that no cell is cut (rich would otherwise assume 80 columns
  and truncate cells with an ellipsis, losing licence and provider names in a pipe).
* :func:`plain_flags_in_help` - boolean flags show as ``--debug``, not ``--debug <bool>``: the
  typer in use renders every option's type in rich help, flags included (typer's own ``--help``
  too); declaring the options otherwise cannot fix that, so flags are given no type column.
"""

from __future__ import annotations

import sys

#: Width of the console when stdout is not a terminal: tables are as wide as their content.
PIPE_WIDTH = 10_000


def console(file=None):
    """A rich Console writing to ``file`` (stdout); never truncates when not a terminal."""
    from rich.console import Console

    out = file if file is not None else sys.stdout
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        return Console(file=file)
    return Console(file=file, width=PIPE_WIDTH)


def plain_flags_in_help() -> None:
    """Show boolean flags in rich help without a ``<bool>`` type (idempotent)."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - a typer without it
        return
    original = TyperOption.display_type_rich
    if getattr(original, "_spectralearth_plain_flags", False):
        return

    def display_type_rich(self, ctx):
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._spectralearth_plain_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich
