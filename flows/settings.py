"""Settings of the orchestration layer, read once from the environment (``SPECTRALEARTH_*``).

Flows take their science parameters (region, period, products, release id) as Prefect
parameters; *where* things are written and *which* Dask cluster runs the tiling are properties
of the machine a flow runs on, so they come from here instead. Nothing secret lives here:
credentials stay with the readers (DESIGN.md, "Scenes and the plan").
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FlowSettings(BaseSettings):
    """Machine-level settings of the flows (environment variables ``SPECTRALEARTH_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="SPECTRALEARTH_", frozen=True, extra="ignore")

    data: Path = Field(
        Path.home() / ".spectralearth",
        description="Data folder (SPECTRALEARTH_DATA): releases/, runs/ (scenes, plans, images), "
        "models/, reports/, scenes/ (demo)",
    )
    dask_address: str | None = Field(
        None,
        description="Address of an existing Dask scheduler (tcp://host:8786) for tiling; "
        "None starts a LocalCluster for the flow run",
    )
    dask_workers: int = Field(2, gt=0, description="Workers of the LocalCluster started when no address is set")
    dask_threads_per_worker: int = Field(1, gt=0, description="Threads per LocalCluster worker")
    dask_processes: bool = Field(
        False,
        description="LocalCluster workers as processes (True) or threads in the flow process (False, "
        "cheaper to start on small machines)",
    )
    chunk_cells: int = Field(4, gt=0, description="Cells per tile task (the unit mapped over Dask)")
    train_steps: int = Field(100, gt=0, description="Steps of a triggered training run (train/after-release)")
    train_workers: int = Field(0, ge=0, description="DataLoader worker processes of a flow's training run")
    retries: int = Field(3, ge=0, description="Retries of a task that failed with a transient error")
    retry_backoff_s: float = Field(2.0, ge=0, description="First retry delay; doubles each retry")

    @property
    def releases_dir(self) -> Path:
        return self.data / "releases"

    @property
    def runs_dir(self) -> Path:
        return self.data / "runs"

    @property
    def models_dir(self) -> Path:
        return self.data / "models"

    @property
    def reports_dir(self) -> Path:
        return self.data / "reports"

    @property
    def demo_dir(self) -> Path:
        return self.data / "scenes"


def get_settings() -> FlowSettings:
    """The settings as the environment gives them now (not cached: tests and workers set env)."""
    return FlowSettings()
