"""The model commands of the ``spectralearth`` command line: model-info, train, evaluate.

Thin typer wrappers over :mod:`spectralearth_model`; torch is imported inside the commands, so
importing this package stays light. Built on the shared pieces of :mod:`spectralearth_data.cli`
(the layer below); the full ``spectralearth`` app is composed in :mod:`flows.cli`.
"""

from __future__ import annotations

from spectralearth_data.cli import command_group, make_app, run

from .evaluate_cmd import evaluate
from .model_cmd import model_info
from .train_cmd import train

#: The model commands, in the order they appear in ``spectralearth --help``.
commands = command_group()
commands.command("model-info")(model_info)
commands.command("train")(train)
commands.command("evaluate")(evaluate)

#: The model commands alone, as an app (no Prefect).
app = make_app(commands, help="Pretrain and evaluate SpectralEarth-FM.")


def main() -> None:
    """Run the model commands alone (the ``spectralearth`` console script is :func:`flows.cli.main`)."""
    run(app)
