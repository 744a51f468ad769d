"""The one retry policy: retry what the core marks as transient (RetryableError), never a
terminal error such as bad input or a missing image."""
from __future__ import annotations

from typing import Any

from stageflow.errors import RetryableError

# Backoff for transient faults: an API server restart or a registry blip lasts seconds.
RETRIES = 5
RETRY_DELAYS = [1, 2, 4, 8, 15]


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn`` for every Stageflow task."""
    try:
        state.result()
    except RetryableError:
        return True
    except BaseException:  # noqa: BLE001 - anything else is terminal by definition
        return False
    return False


RETRY_POLICY: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": retry_transient,
}
