"""Which task failures are worth retrying, and the retry options the flows put on their tasks.

Only *transient* failures are retried: a dropped connection, a timeout, a source error that does
not say otherwise. One layer retries, not two: a :class:`SourceError` marked ``retryable=False``
(the library already spent its own HTTP retries, or the failure is permanent) is not retried again
here, nor is a host name that does not resolve or a refused connection
(:func:`~spectralearth_data.errors.connection_failure`). A user error (unknown region, malformed
plan) or a bug fails at once, so nobody waits minutes of backoff for an answer that cannot change.
"""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from flows.settings import get_settings
from spectralearth_data.errors import SourceError, connection_failure


def transient_types() -> tuple[type[BaseException], ...]:
    """Exception types that mean "try again later" (network, timeouts, an unavailable source)."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError, SourceError]
    try:  # requests and httpx are how pystac-client, earthaccess and Prefect talk HTTP
        import requests

        types += [requests.ConnectionError, requests.Timeout]
    except ImportError:  # pragma: no cover - requests is a dependency
        pass
    try:
        import httpx

        types += [httpx.TransportError]
    except ImportError:  # pragma: no cover - httpx comes with prefect
        pass
    return tuple(types)


def is_transient(exc: BaseException | None) -> bool:
    """True when ``exc`` (or an exception it was raised from) is a transient failure."""
    if connection_failure(exc) is not None:
        return False
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, SourceError) and exc.retryable is False:
            return False
        if isinstance(exc, transient_types()):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run only for a transient error."""
    try:
        state.result(raise_on_failure=True)
    except BaseException as exc:  # noqa: BLE001 - the state's stored exception, re-raised to classify it
        return is_transient(exc)
    return False


def retry_options(retries: int | None = None, backoff_s: float | None = None) -> dict[str, Any]:
    """Keyword options for ``@task`` / ``task.with_options``: transient-only retries, backoff, jitter.

    Defaults come from the settings (``SPECTRALEARTH_RETRIES``, ``SPECTRALEARTH_RETRY_BACKOFF_S``):
    delays of ``backoff_s * 2**k`` seconds, +/- 50 % jitter so parallel tasks do not retry in step.
    """
    s = get_settings()
    n = s.retries if retries is None else retries
    b = s.retry_backoff_s if backoff_s is None else backoff_s
    return {
        "retries": n,
        "retry_delay_seconds": exponential_backoff(backoff_factor=b)(n) if n else 0,
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_if_transient,
    }
