"""Stageflow's own exception tree: every vendor error is translated into one of these at the
adapter boundary (raised ``from`` the original), so flows decide on retries by type alone.

    StageflowError
    ├── TerminalError        never retried: bad input, missing things, unrecoverable states
    │   ├── ValidationFailed   input or spec violates a rule (names file, field and rule)
    │   └── NotFound           a named app, service, image, repository ... does not exist
    └── RetryableError       transient: connection refused, 5xx, API server unavailable, push race
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StageflowError", "TerminalError", "ValidationFailed", "Problem", "NotFound", "RetryableError", "is_retryable"]


class StageflowError(Exception):
    """Base of every error Stageflow raises on purpose."""


class TerminalError(StageflowError):
    """A failure that retrying cannot fix."""


class NotFound(TerminalError):
    """A named thing does not exist."""


class RetryableError(StageflowError):
    """A transient failure: the same call may succeed later."""


@dataclass(frozen=True)
class Problem:
    """One rule broken by one field: ``file: field: rule``."""

    field: str
    rule: str
    file: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.field}: {self.rule}"


class ValidationFailed(TerminalError):
    """Input broke one or more rules; ``problems`` lists each one."""

    def __init__(self, problems: list[Problem] | Problem, summary: str = "invalid input"):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.summary = summary
        super().__init__(f"{summary}:\n" + "\n".join(f"  - {p}" for p in self.problems))


def is_retryable(exc: BaseException) -> bool:
    """Retry only what is known to be transient; unknown errors are not retried blindly."""
    return isinstance(exc, RetryableError)
