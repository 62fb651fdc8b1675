"""``spectralearth model-info``: the SpectralEarth-FM presets and their parameters per component."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def model_info(
    preset: Annotated[str, typer.Option("--preset", "-p", help="Model preset: tiny, small or base.")] = "tiny",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    show_config: Annotated[bool, typer.Option("--show-config", help="Also print the resolved config.")] = False,
) -> None:
    """Print the parameters per component of a SpectralEarth-FM preset."""
    from spectralearth_model.config import preset as make_preset
    from spectralearth_model.summary import parameter_table

    cfg = make_preset(preset)
    rows = parameter_table(cfg)
    if as_json:
        doc = {"preset": cfg.name, "parameters": {r.component: r.parameters for r in rows}}
        if show_config:
            doc["config"] = cfg.to_dict()
        typer.echo(json.dumps(doc, indent=2))
        return
    from spectralearth_data.cli.output import console as make_console
    from rich.table import Table

    table = Table(title=f"SpectralEarth-FM preset {cfg.name!r}: sensors {', '.join(cfg.sensor_names)}")
    table.add_column("component")
    table.add_column("parameters", justify="right")
    for r in rows:
        table.add_row(r.component, f"{r.parameters:,}")
    console = make_console()
    console.print(table)
    if show_config:
        cfg_view = {k: v for k, v in cfg.to_dict().items() if k != "sensors"}
        console.print_json(json.dumps(cfg_view))
