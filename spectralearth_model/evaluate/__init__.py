"""Frozen-encoder evaluation of SpectralEarth-FM (PANGAEA-style), on CPU or GPU.

``evaluate(checkpoint, tasks, head, out) -> report path`` runs the trained checkpoint and three
baselines (a random-init encoder, raw bands pooled to the token grid + PCA + the same head, and raw
spectra per pixel + PCA + linear) on each task, plus a sub-token head for segmentation, with
bootstrap 95 % intervals. Tasks are the built-in real EnMAP tasks or task folders in the layouts
documented in TASKS.md (next to this file).
"""

from .harness import EvalOptions, EvaluationError, evaluate, freeze, load_checkpoint
from .tasks import TaskAdapter, TaskError, TaskInfo, list_tasks, load_task

__all__ = [
    "EvalOptions", "EvaluationError", "TaskAdapter", "TaskError", "TaskInfo",
    "evaluate", "freeze", "list_tasks", "load_checkpoint", "load_task",
]
