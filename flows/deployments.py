"""The deployments, and the serve entry point that runs all of them from one process.

``curate/region``          curate one region (defaults: the demo region on synthesized scenes)
``rebuild/weekly``         cron schedule: rebuild a list of regions into new weekly releases
``train/after-release``    triggered by ``spectralearth.release.published``: pretrain on that release
``evaluate/after-train``   triggered by ``spectralearth.model.trained``: evaluate that encoder

Two ways to run them: ``spectralearth serve`` (this module; flow runs start as subprocesses of
the serving process) or ``prefect deploy --all`` with ``prefect.yaml`` and a process worker on
the pool ``spectralearth-process`` (workers anywhere that reach the server). Both define the same
four deployments; tests/flows checks that they agree.
"""

from __future__ import annotations

from typing import Any

from prefect.deployments.runner import EntrypointType
from prefect.events import DeploymentEventTrigger

from flows.curate import RELEASE_EVENT, curate
from flows.evaluate import evaluate
from flows.rebuild import rebuild
from flows.train import MODEL_EVENT, train

#: Regions and cron of the scheduled rebuild (Mondays 03:00 UTC). Real regions need real sources
#: (and network): override ``regions``/``source`` on the deployment for production.
REBUILD_CRON = "0 3 * * 1"
REBUILD_PARAMETERS: dict[str, Any] = {"regions": ["demo"], "source": "demo", "cell_m": 960}
CURATE_PARAMETERS: dict[str, Any] = {"region": "demo", "source": "demo", "cell_m": 960}
TRAIN_PARAMETERS: dict[str, Any] = {"preset": "tiny"}  # steps: SPECTRALEARTH_TRAIN_STEPS


def release_trigger() -> DeploymentEventTrigger:
    """Start a training run for each published release, on that release's store."""
    return DeploymentEventTrigger(
        name="train-after-release",
        expect={RELEASE_EVENT},
        match={"prefect.resource.id": "spectralearth.release.*"},
        parameters={"release": "{{ event.payload.location }}"},
    )


def model_trigger() -> DeploymentEventTrigger:
    """Start an evaluation for each trained encoder."""
    return DeploymentEventTrigger(
        name="evaluate-after-train",
        expect={MODEL_EVENT},
        match={"prefect.resource.id": "spectralearth.model.*"},
        parameters={"checkpoint": "{{ event.payload.checkpoint }}"},
    )


def build_deployments() -> list:
    """The four runner deployments (not yet registered; ``serve`` registers them)."""
    return [
        curate.to_deployment(
            name="region",
            parameters=dict(CURATE_PARAMETERS),
            description="Curate one region into a release (default: the demo region, synthesized scenes).",
            tags=["spectralearth", "curate"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        rebuild.to_deployment(
            name="weekly",
            cron=REBUILD_CRON,
            parameters=dict(REBUILD_PARAMETERS),
            description="Weekly rebuild of a list of regions into new releases.",
            tags=["spectralearth", "curate", "scheduled"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        train.to_deployment(
            name="after-release",
            triggers=[release_trigger()],
            parameters=dict(TRAIN_PARAMETERS),
            description="Pretrain SpectralEarth-FM on each published release.",
            tags=["spectralearth", "train"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        evaluate.to_deployment(
            name="after-train",
            triggers=[model_trigger()],
            description="Evaluate each trained encoder (PANGAEA-style).",
            tags=["spectralearth", "evaluate"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
    ]


def serve_all(limit: int | None = None) -> None:
    """Register every deployment and run their flow runs from this process until interrupted."""
    from prefect import serve

    serve(*build_deployments(), limit=limit)


if __name__ == "__main__":
    serve_all()
