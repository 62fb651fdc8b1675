"""The ``spectralearth`` console script: the data and model commands, plus ``serve`` (serve every
Prefect deployment) and ``demo`` (end to end).

``demo`` runs the flows directly (curate -> train -> evaluate on synthesized demo scenes), so it
needs no Prefect server; with ``PREFECT_API_URL`` set, the runs show up in that server's UI.
Heavy imports (Prefect, the flows) stay inside the commands so ``spectralearth --help`` stays fast.

The app is composed here, the top layer, from :mod:`spectralearth_data.cli` and
:mod:`spectralearth_model.cli`; the lower layers' command packages never import this one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from spectralearth_data.cli import command_group, make_app, run
from spectralearth_data.cli import commands as data_commands
from spectralearth_model.cli import commands as model_commands

#: Default data folder of ``spectralearth demo`` (relative to where it runs).
DEMO_OUT = Path("out/demo")


def _demo(out: Path, steps: int, preset: str, tasks: list[str] | None) -> dict[str, str]:
    """Run curate -> train -> evaluate with the data folder ``out``; returns where things are."""
    os.environ["SPECTRALEARTH_DATA"] = str(out.resolve())
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # cluster start/stop chatter
    _isolate_prefect(out)
    from flows.curate import curate
    from flows.evaluate import check_tasks, evaluate
    from flows.params import ParameterError, check_curate
    from flows.train import check_preset, train

    # every parameter is checked before the first scene is synthesized
    check_curate("demo", source="demo", cell_m=960)
    check_preset(preset)
    check_tasks(tasks)
    if steps < 1:
        raise ParameterError(f"--steps {steps}: expected at least 1")
    release = curate(region="demo", source="demo", cell_m=960)
    model = train(release=release.store, preset=preset, steps=steps)
    report = evaluate(checkpoint=model.encoder, tasks=tasks)
    return {
        "release": release.store,
        "manifest": release.manifest,
        "patches": f"{release.patches_written} written, {release.cells_skipped} cells already done",
        "checkpoint": model.checkpoint,
        "encoder": model.encoder,
        "report": report,
        "runs": os.environ.get("PREFECT_API_URL") or f"{os.environ['PREFECT_HOME']} (temporary Prefect server)",
    }


def _isolate_prefect(out: Path) -> None:
    """Without ``PREFECT_API_URL`` the flows run on a temporary local server; give it its own
    database under ``out`` so the demo never contends with (or writes into) ``~/.prefect``.
    Must run before Prefect is imported: its settings are read from the environment once."""
    if os.environ.get("PREFECT_API_URL"):
        return
    home = Path(os.environ.setdefault("PREFECT_HOME", str((out / "prefect").resolve())))
    home.mkdir(parents=True, exist_ok=True)  # Prefect creates it on import, without parents
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # a busy small machine can take longer than the default 20 s to start the temporary server
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


#: Default of ``serve --wait``: seconds to wait for a Prefect server that is still starting.
SERVE_WAIT_S = 10.0


def wait_for_server(url: str, wait_s: float) -> None:
    """Return once the Prefect API at ``url`` answers ``/health``; poll for up to ``wait_s`` seconds
    (a server that is starting), then raise :class:`~flows.params.ParameterError` in one line that
    names the URL and how to start a server. ``wait_s`` 0 probes once."""
    import time

    import httpx

    from flows.params import ParameterError

    health = url.rstrip("/") + "/health"
    deadline = time.monotonic() + max(wait_s, 0.0)
    while True:
        try:
            res = httpx.get(health, timeout=max(1.0, min(5.0, deadline - time.monotonic())))
            if res.status_code == 200:
                return
            why = f"{health} answers HTTP {res.status_code}"
            if res.status_code == 404:
                why += " (is PREFECT_API_URL the API root, ending in /api?)"
        except httpx.HTTPError as e:
            why = f"{type(e).__name__}: {str(e).strip() or 'no answer'}"
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    raise ParameterError(
        f"no Prefect server answers at PREFECT_API_URL={url} ({why}; waited {wait_s:g} s): start one with "
        f"`prefect server start` (or fix PREFECT_API_URL), or give a starting server longer with --wait SECONDS"
    )


def serve(
    limit: Annotated[int | None, typer.Option(help="Most flow runs at once (default: no limit).")] = None,
    wait: Annotated[float, typer.Option(
        "--wait", min=0, help="Seconds to wait for the Prefect server at PREFECT_API_URL to answer "
        "(one that is starting); 0 checks once.")] = SERVE_WAIT_S,
) -> None:
    """Register and serve every deployment: curate/region, rebuild/weekly, train/after-release,
    evaluate/after-train. Needs PREFECT_API_URL pointing at a running Prefect server."""
    from prefect.settings import PREFECT_API_URL

    from flows.deployments import serve_all
    from flows.params import ParameterError

    url = PREFECT_API_URL.value()
    if not url:  # a temporary server would vanish with this process
        raise ParameterError(
            "PREFECT_API_URL is not set: start a server (prefect server start) and "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    wait_for_server(url, wait)
    serve_all(limit=limit)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Data folder for scenes, release, model, report.")] = DEMO_OUT,
    steps: Annotated[int, typer.Option(help="Training steps.")] = 30,
    preset: Annotated[str, typer.Option(help="Model preset.")] = "tiny",
    task: Annotated[list[str] | None, typer.Option(
        "--task", help="Evaluation task (repeatable; default: the built-in one).")] = None,
    show_config: Annotated[bool, typer.Option("--show-config", help="Print the resolved settings and stop.")] = False,
) -> None:
    """End-to-end demo on SYNTHESIZED scenes: demo scenes -> curate -> train -> evaluate."""
    if show_config:
        os.environ["SPECTRALEARTH_DATA"] = str(out.resolve())
        from flows.settings import get_settings

        typer.echo(json.dumps(get_settings().model_dump(mode="json"), indent=2, sort_keys=True))
        return
    typer.echo("SpectralEarth demo: every scene below is SYNTHESIZED (no real observation).")
    where = _demo(out, steps, preset, task or None)
    typer.echo("SpectralEarth demo finished (synthesized scenes):")
    for key in ("release", "manifest", "patches", "checkpoint", "encoder", "report", "runs"):
        typer.echo(f"  {key:<10} {where[key]}")


#: The orchestration commands, after the data and model ones in ``spectralearth --help``.
commands = command_group()
commands.command("serve")(serve)
commands.command("demo")(demo)

#: The whole ``spectralearth`` command line.
app = make_app(
    data_commands,
    model_commands,
    commands,
    help="Curate SpectralEarth-MM (multi-sensor hyperspectral patches) and pretrain SpectralEarth-FM.",
)


def main() -> None:
    """Console-script entry point (``spectralearth``); :func:`run` installs the log redaction."""
    run(app)
