"""The ``train`` flow: pretrain SpectralEarth-FM on a published release, then announce the model.

A thin flow over :func:`spectralearth_model.train.train`. The ``train/after-release`` deployment
runs it whenever ``spectralearth.release.published`` arrives; when it finishes it emits
``spectralearth.model.trained`` (payload: the exported encoder), which starts ``evaluate/after-train``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.events import emit_event

from flows.artifacts import publish_image, publish_table
from flows.params import ParameterError, train_run_name
from flows.settings import get_settings
from spectralearth_data.errors import SpectralEarthError

#: Event emitted when an encoder has been trained and exported; ``evaluate/after-train`` listens.
MODEL_EVENT = "spectralearth.model.trained"


@dataclass(frozen=True)
class TrainResult:
    """Where the trained model is."""

    run_id: str
    release: str
    out_dir: str
    checkpoint: str
    encoder: str
    steps: int


def resolve_release(release: str) -> Path:
    """A release store path, or a release id under the settings' releases folder."""
    p = Path(release)
    if not p.exists() and not release.endswith(".zarr") and "/" not in release:
        p = get_settings().releases_dir / f"{release}.zarr"
    if not p.exists():
        raise ParameterError(f"release: {release!r} is neither a release store nor a release id under "
                             f"{get_settings().releases_dir}")
    return p


def check_preset(preset: str) -> None:
    """The preset must be one the model package defines."""
    from spectralearth_model.config import preset as get_preset

    try:
        get_preset(preset)
    except SpectralEarthError as e:
        raise ParameterError(f"preset: {e}") from None


@task(name="train")
def train_model(release: str, preset: str, steps: int, out: str, options: dict[str, Any]) -> Any:
    """Run the trainer and return its summary; an existing checkpoint in ``out`` is resumed."""
    from spectralearth_model.train import TrainConfig
    from spectralearth_model.train import train as run_training

    resume = (Path(out) / "checkpoint.pt").exists()
    kw = {"progress": False, "resume": resume, "workers": get_settings().train_workers, **options}
    cfg = TrainConfig.make(release=Path(release), preset=preset, steps=steps, out=Path(out), **kw)
    return run_training(cfg)


@flow(name="train", flow_run_name=train_run_name, log_prints=True)
def train(
    release: str,
    preset: str = "tiny",
    steps: int | None = None,
    out: str | None = None,
    options: dict[str, Any] | None = None,
) -> TrainResult:
    """Pretrain an encoder on ``release`` (a store path or release id) and emit ``spectralearth.model.trained``.

    Args:
        release: release store path (``.../<id>.zarr``) or release id.
        preset: model preset (``spectralearth_model.config.preset``).
        steps: optimizer steps (default: the ``SPECTRALEARTH_TRAIN_STEPS`` setting).
        out: run folder (default ``<data>/models/<release id>-<preset>``); an existing run resumes.
        options: further ``TrainConfig`` fields (batch_size, lr, ...).
    """
    store = resolve_release(release)
    check_preset(preset)
    steps = steps or get_settings().train_steps
    if steps < 1:
        raise ParameterError(f"steps={steps}: expected at least 1")
    release_id = store.name.removesuffix(".zarr")
    run_id = f"{release_id}-{preset}"
    out_dir = Path(out) if out else get_settings().models_dir / run_id
    summary = train_model(str(store), preset, steps, str(out_dir), dict(options or {}))
    result = TrainResult(
        run_id=run_id, release=str(store), out_dir=str(out_dir), checkpoint=str(summary.checkpoint),
        encoder=str(summary.encoder), steps=steps,
    )
    _publish_training(run_id, summary)
    emit_event(
        event=MODEL_EVENT,
        resource={"prefect.resource.id": f"spectralearth.model.{run_id}", "prefect.resource.name": run_id},
        related=[{"prefect.resource.id": f"spectralearth.release.{release_id}", "prefect.resource.role": "release"}],
        payload={"checkpoint": result.encoder, "release": str(store), "out_dir": str(out_dir), "preset": preset},
    )
    get_run_logger().info("encoder of %s: %s", run_id, result.encoder)
    return result



def _publish_training(run_id: str, summary: Any) -> None:
    """The run's loss and monitor plot (a thumbnail) and its summary as artifacts."""
    plot = getattr(summary, "plot", None)
    if plot:
        publish_image(Path(plot), f"metrics-{run_id}", f"Loss and monitors of {run_id}")
    rows = [{"field": k, "value": str(v)} for k, v in _summary_fields(summary).items()]
    publish_table(rows, f"training-{run_id}", f"Summary of training run {run_id}")


def _summary_fields(summary: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(summary) and not isinstance(summary, type):
        return {f.name: getattr(summary, f.name) for f in dataclasses.fields(summary)
                if isinstance(getattr(summary, f.name), str | int | float | Path | None)}
    return {}
