"""The ``evaluate`` flow: the PANGAEA-style evaluation of a frozen encoder checkpoint.

A thin flow over :func:`spectralearth_model.evaluate.evaluate`; ``evaluate/after-train`` runs it on
each ``spectralearth.model.trained`` event. The report (Markdown) is shown as an artifact.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.artifacts import publish_markdown
from flows.params import ParameterError, evaluate_run_name
from flows.settings import get_settings

#: The task the embedded demo evaluates on (the real EnMAP Potsdam fixture task).
DEFAULT_TASKS = ("enmap-potsdam",)


def check_tasks(tasks: list[str] | None) -> list[str]:
    """Built-in task names or existing task folders; the default is :data:`DEFAULT_TASKS`."""
    from spectralearth_model.evaluate import list_tasks

    names = list(tasks) if tasks else list(DEFAULT_TASKS)
    known = list_tasks()
    for t in names:
        if t not in known and not Path(t).is_dir():
            raise ParameterError(
                f"tasks: {t!r} is neither a built-in task ({', '.join(sorted(known))}) nor a task folder"
            )
    return names


def check_head(head: str) -> None:
    """``head`` must be one of the harness's probe heads (:data:`spectralearth_model.evaluate.heads.HEADS`)."""
    from spectralearth_model.evaluate.heads import HEADS

    if head not in HEADS:
        raise ParameterError(f"head={head!r}: expected one of {', '.join(HEADS)}")


@task(name="evaluate")
def evaluate_checkpoint(checkpoint: str, tasks: list[str], head: str, out: str) -> str:
    """Run the evaluation harness; returns the report path."""
    from spectralearth_model.evaluate import evaluate as run_evaluation

    return str(run_evaluation(Path(checkpoint), list(tasks), head=head, out=Path(out)))


@flow(name="evaluate", flow_run_name=evaluate_run_name, log_prints=True)
def evaluate(
    checkpoint: str,
    tasks: list[str] | None = None,
    head: str = "linear",
    out: str | None = None,
) -> str:
    """Evaluate the encoder at ``checkpoint`` on ``tasks`` with a ``head`` probe; returns the report path."""
    ckpt = Path(checkpoint)
    if not ckpt.exists():
        raise ParameterError(f"checkpoint: {checkpoint!r} does not exist")
    check_head(head)
    task_names = check_tasks(tasks)
    out_dir = Path(out) if out else get_settings().reports_dir / f"{ckpt.parent.name}-{head}"
    report = evaluate_checkpoint(str(ckpt), task_names, head, str(out_dir))
    text = Path(report).read_text() if Path(report).suffix == ".md" and Path(report).exists() else f"`{report}`"
    publish_markdown(text[:200_000], f"evaluation-{ckpt.parent.name}-{head}", "Evaluation report")
    get_run_logger().info("evaluation report: %s", report)
    return report
