"""PyGithub and ``requests`` failures translated into Stageflow's exception tree, in one place.

    5xx, connection errors, timeouts                          -> GitHubUnavailable (retryable)
    429; 403 with Retry-After, "secondary rate limit" wording
    or x-ratelimit-remaining: 0                                 -> GitHubRateLimited (retryable, carries the wait)
    422 "Update is not a fast forward" (a ref moved under us)  -> GitHubRace (retryable)
    404                                                         -> NotFound
    any other 4xx, 401 included                                 -> GitHubRefused (terminal) with GitHub's message

Messages name the operation, the status and GitHub's message; they never contain the token
(it only travels in the Authorization header, which neither PyGithub's exceptions nor ours show).
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
from github import GithubException

from stageflow.errors import NotFound, RetryableError, TerminalError

__all__ = ["GitHubRace", "GitHubRateLimited", "GitHubRefused", "GitHubUnavailable", "github_errors", "translate"]


class GitHubUnavailable(RetryableError):
    """GitHub did not answer, or answered 5xx. ``retry_after``: seconds GitHub asked us to wait."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class GitHubRateLimited(GitHubUnavailable):
    """A primary or secondary rate limit: retry after ``retry_after`` seconds (when GitHub said)."""


class GitHubRefused(TerminalError):
    """GitHub refused the request (4xx other than 404 and rate limits); ``status`` is its code."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class GitHubRace(RetryableError):
    """A ref moved between our read and our write; reading again and retrying resolves it."""


@contextmanager
def github_errors(operation: str) -> Iterator[None]:
    """Run PyGithub calls; re-raise their failures as Stageflow errors naming ``operation``."""
    try:
        yield
    except GithubException as exc:
        raise translate(exc, operation) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        # The text of a requests error names the URL (never the header that carries the token).
        raise GitHubUnavailable(f"{operation}: GitHub did not answer: {type(exc).__name__}") from exc


def translate(exc: GithubException, operation: str) -> Exception:
    status = exc.status
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    message = _github_message(exc.data)
    text = f"{operation}: GitHub answered {status}: {message}"
    if status >= 500:
        return GitHubUnavailable(text, _retry_after(headers))
    if status == 429 or (status == 403 and _rate_limited(headers, message)):
        wait = _retry_after(headers)
        return GitHubRateLimited(text + (f" (retry after {wait:.0f}s)" if wait is not None else ""), wait)
    if status == 422 and "not a fast forward" in message.lower():
        return GitHubRace(text)
    if status == 404:
        return NotFound(text)
    return GitHubRefused(text, status)


def _rate_limited(headers: Mapping[str, str], message: str) -> bool:
    lowered = message.lower()
    return ("retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"
            or "secondary rate limit" in lowered or "rate limit exceeded" in lowered)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After (seconds), else the primary limit's reset time when it is exhausted."""
    try:
        if "retry-after" in headers:
            return max(0.0, float(headers["retry-after"]))
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            return max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
    except ValueError:
        pass  # an HTTP-date or garbage: retry on our own schedule
    return None


def _github_message(data: Any) -> str:
    """GitHub's ``message`` plus the ``errors`` details it gives for 422s."""
    if not isinstance(data, dict):
        return str(data or "no message")[:500]
    message = str(data.get("message") or "no message")
    details = []
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            details.append(str(error.get("message") or ", ".join(f"{k}={v}" for k, v in sorted(error.items()))))
        else:
            details.append(str(error))
    return message + (f" ({'; '.join(details)})" if details else "")
