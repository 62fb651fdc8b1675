"""Frozen-encoder evaluation of SpectralEarth-FM (PANGAEA-style), on CPU or GPU.

``evaluate(checkpoint, tasks, head, out) -> report path`` runs the trained checkpoint and two
baselines (a random-init encoder and raw spectra + PCA + linear) on each task. Tasks are the
built-in real EnMAP task or task folders in the layouts documented in TASKS.md (next to this file).
"""

from .harness import EvalOptions, EvaluationError, evaluate, freeze, load_checkpoint
from .tasks import TaskAdapter, TaskError, TaskInfo, list_tasks, load_task

__all__ = [
    "EvalOptions", "EvaluationError", "TaskAdapter", "TaskError", "TaskInfo",
    "evaluate", "freeze", "list_tasks", "load_checkpoint", "load_task",
]
