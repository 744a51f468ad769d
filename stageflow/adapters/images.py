"""Build and push images through a Docker engine (the ``docker`` SDK).

Vendor errors are translated here (raised ``from`` the original):

    engine unreachable, or a build/push error that names a transient network fault -> RetryableError
    any other build or push error (bad Dockerfile, missing file, denied push)        -> TerminalError

The SDK talks to the engine's ``/build`` endpoint, which is the classic builder (not BuildKit):
``RUN --mount`` and other BuildKit-only syntax is not available.

    >>> images = Images("unix:///var/run/docker.sock")                   # doctest: +SKIP
    >>> images.build_and_push(Path("services/orders"), "127.0.0.1:5000/shop/orders", "abc123")
    'sha256:...'
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import docker
import requests

from stageflow.errors import Problem, RetryableError, TerminalError, ValidationFailed

__all__ = ["Images", "split_tag"]

# Failures a later attempt can get past: the registry or engine was down, slow or overloaded.
_TRANSIENT = re.compile(
    r"connection refused|connection reset|i/o timeout|timeout exceeded|TLS handshake timeout|"
    r"unexpected EOF|broken pipe|toomanyrequests|too many requests|"
    r"\b50[0234]\b|service unavailable|bad gateway",
    re.IGNORECASE,
)
_LOG_LINES = 15


def split_tag(reference: str) -> tuple[str, str]:
    """``127.0.0.1:5000/shop/orders:abc`` -> (``127.0.0.1:5000/shop/orders``, ``abc``); a tag is required."""
    name, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag or not name:
        raise ValidationFailed(Problem("tag", f"{reference!r} must name a tag (repository:tag)"))
    return name, tag


class Images:
    """Builds and pushes images on one Docker engine; use as a context manager or call ``close()``."""

    def __init__(self, docker_host: str, *, timeout: float = 600.0):
        self.docker_host = docker_host
        self._timeout = timeout
        self._client: docker.DockerClient | None = None

    def __enter__(self) -> Images:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def build(self, context: Path, tag: str, *, buildargs: dict[str, str] | None = None,
              dockerfile: str = "Dockerfile") -> str:
        """Build ``context`` into an image tagged ``tag``; returns the image id (``sha256:...``)."""
        context = Path(context)
        if not (context / dockerfile).is_file():
            raise ValidationFailed(Problem("dockerfile", f"{context / dockerfile} does not exist"))
        split_tag(tag)
        client = self._docker()
        try:
            image, _log = client.images.build(path=str(context), tag=tag, dockerfile=dockerfile,
                                              buildargs=buildargs or {}, rm=True, forcerm=True)
        except docker.errors.BuildError as exc:
            raise _classify(f"building {tag} failed: {exc.msg}", _tail(exc.build_log)) from exc
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise _classify(f"building {tag} failed: {exc}", "") from exc
        return image.id

    def push(self, tag: str) -> str:
        """Push ``repository:tag`` to its registry; returns the manifest digest the registry stored."""
        repository, version = split_tag(tag)
        client = self._docker()
        digest: str | None = None
        log: list[dict] = []
        try:
            for event in client.api.push(repository, tag=version, stream=True, decode=True):
                log.append(event)
                if "error" in event:
                    raise _classify(f"pushing {tag} failed: {event['error']}", _tail(log))
                digest = (event.get("aux") or {}).get("Digest") or digest
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise _classify(f"pushing {tag} failed: {exc}", _tail(log)) from exc
        if not digest:
            raise TerminalError(f"pushing {tag} finished without reporting a digest{_tail(log)}")
        return digest

    def build_and_push(self, context: Path, repository: str, tag: str, *,
                       buildargs: dict[str, str] | None = None, dockerfile: str = "Dockerfile") -> str:
        """Build ``context`` as ``repository:tag`` and push it; returns the pushed digest.

        Safe to run twice: the rebuild comes from the layer cache and the registry
        accepts an identical push again.
        """
        reference = f"{repository}:{tag}"
        self.build(context, reference, buildargs=buildargs, dockerfile=dockerfile)
        return self.push(reference)

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.DockerClient(base_url=self.docker_host, timeout=int(self._timeout))
            except docker.errors.DockerException as exc:
                raise RetryableError(f"Docker engine at {self.docker_host} is unavailable: {exc}") from exc
        return self._client


def _classify(message: str, log: str) -> TerminalError | RetryableError:
    error_type = RetryableError if _TRANSIENT.search(message) else TerminalError
    return error_type(message + log)


def _tail(events: Iterable[dict]) -> str:
    """The last lines of a build or push log, for an error message a person can act on."""
    lines: list[str] = []
    for event in events:
        text = event.get("stream") or event.get("error") or event.get("status") or ""
        text = f"{event['id']}: {text}" if event.get("id") and "status" in event else text
        lines.extend(line for line in str(text).splitlines() if line.strip())
    if not lines:
        return ""
    return "\n--- last log lines ---\n" + "\n".join(lines[-_LOG_LINES:])
