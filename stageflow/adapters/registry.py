"""OCI distribution API client: resolve a tag to its digest, check a digest, list tags.

Every vendor error is translated here (raised ``from`` the original):

    connection refused / timeout / HTTP 5xx / 429  -> RegistryUnavailable (retryable)
    HTTP 404, MANIFEST_UNKNOWN, NAME_UNKNOWN       -> ImageNotFound (terminal)
    HTTP 401 / 403 and any other 4xx               -> TerminalError

Messages name the image reference, never a credential.

    >>> with Registry("127.0.0.1:5000") as registry:          # doctest: +SKIP
    ...     registry.resolve("shop/orders", "abc123")
    'sha256:...'
"""
from __future__ import annotations

import hashlib
import re
import time
from typing import NoReturn

import httpx
from pydantic import SecretStr

from stageflow.errors import NotFound, Problem, RetryableError, TerminalError, ValidationFailed

__all__ = ["ImageNotFound", "Registry", "RegistryUnavailable", "MANIFEST_MEDIA_TYPES", "parse", "wait_for_tag"]

# Ask for every manifest kind we can use; without this a registry may down-convert to schema 1
# and report a digest that no pusher ever saw.
MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)
_NOT_FOUND_CODES = {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"}

# Grammar from the distribution spec (reference.go), so bad input fails before any request.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_DOCKER_HUB = "docker.io"


class RegistryUnavailable(RetryableError):
    """The registry did not answer, or answered 5xx / 429: the same call may succeed later."""


class ImageNotFound(NotFound):
    """The repository, tag or digest does not exist in the registry."""


def parse(image: str) -> tuple[str, str]:
    """Split an image name into (registry address, repository path).

    ``127.0.0.1:5000/shop/orders`` -> ``("127.0.0.1:5000", "shop/orders")``; like Docker, a first
    component without ``.`` or ``:`` (and not ``localhost``) means Docker Hub. A tag or digest is
    refused rather than silently dropped, so callers cannot lose the part they meant.
    """
    name = image.strip()
    last = name.rsplit("/", 1)[-1]
    if "@" in name or ":" in last:
        raise ValidationFailed(Problem("image", f"{image!r} must not carry a tag or digest here"))
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        address, path = first, rest
    else:
        address, path = _DOCKER_HUB, name if "/" in name else f"library/{name}"
    _check_repository(path, field="image")
    return address, path


class Registry:
    """A client for one registry; use as a context manager or call ``close()``.

    Credentials are sent as HTTP basic auth. TODO: the bearer-token flow (``WWW-Authenticate:
    Bearer realm=...``, used by Docker Hub, GHCR, Harbor) belongs in ``_auth``; until then such a
    registry answers 401 and the call fails as a TerminalError that says so.
    """

    def __init__(self, address: str, *, scheme: str = "http", username: str | None = None,
                 password: SecretStr | None = None, timeout: float = 10.0):
        if scheme not in ("http", "https"):
            raise ValidationFailed(Problem("scheme", "must be http or https"))
        self.address = address
        self._username = username
        self._password = password
        host = "registry-1.docker.io" if address == _DOCKER_HUB else address
        self._client = httpx.Client(base_url=f"{scheme}://{host}", timeout=timeout, auth=self._auth(),
                                    follow_redirects=True)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def ping(self) -> None:
        """Raise unless the registry answers the API base endpoint ``GET /v2/``."""
        self._request("GET", "/v2/", what=f"registry {self.address}")

    def resolve(self, repository: str, tag: str) -> str:
        """The digest the tag points at (``sha256:...``); ImageNotFound if the tag does not exist."""
        _check_repository(repository)
        if not _TAG.fullmatch(tag):
            raise ValidationFailed(Problem("tag", f"{tag!r} is not a valid tag"))
        what = f"image {self.address}/{repository}:{tag}"
        url = f"/v2/{repository}/manifests/{tag}"
        headers = {"Accept": _ACCEPT}
        response = self._request("HEAD", url, what=what, headers=headers)
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        # Some registries omit the header on HEAD; the digest of a manifest is that of its bytes.
        response = self._request("GET", url, what=what, headers=headers)
        return response.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(response.content).hexdigest()

    def exists(self, repository: str, digest: str) -> bool:
        """True when a manifest with this digest is stored in the repository."""
        _check_repository(repository)
        if not _DIGEST.fullmatch(digest):
            raise ValidationFailed(Problem("digest", f"{digest!r} is not a valid digest"))
        try:
            self._request("HEAD", f"/v2/{repository}/manifests/{digest}",
                          what=f"image {self.address}/{repository}@{digest}", headers={"Accept": _ACCEPT})
        except ImageNotFound:
            return False
        return True

    def tags(self, repository: str) -> list[str]:
        """Every tag of the repository (following pagination); ImageNotFound for an unknown one."""
        _check_repository(repository)
        url: str | None = f"/v2/{repository}/tags/list"
        found: list[str] = []
        while url:
            response = self._request("GET", url, what=f"repository {self.address}/{repository}")
            found.extend(response.json().get("tags") or [])
            url = response.links.get("next", {}).get("url")
        return found

    def _auth(self) -> httpx.Auth | None:
        """Hook for registry authentication (see the class docstring for the bearer TODO)."""
        if self._username is None:
            return None
        secret = self._password.get_secret_value() if self._password else ""
        return httpx.BasicAuth(self._username, secret)

    def _request(self, method: str, url: str, *, what: str, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = self._client.request(method, url, headers=headers)
        except httpx.TransportError as exc:
            raise RegistryUnavailable(f"registry {self.address} is unavailable ({type(exc).__name__}) "
                                      f"while looking up {what}") from exc
        if response.is_success:
            return response
        _raise_for(response, what=what, address=self.address)


def wait_for_tag(registry: Registry, repository: str, tag: str, *, timeout: float, interval: float = 2.0) -> str:
    """Resolve ``repository:tag`` (or check ``repository@sha256:...`` exists, when ``tag`` is a
    digest), polling while it is missing or the registry is unavailable.

    A CI push may still be landing when a promotion starts, so absence is only final after
    ``timeout`` seconds: then ImageNotFound (terminal). If the registry itself was still
    unavailable at the last attempt, that RegistryUnavailable is raised instead, because
    "not found" would be a claim nobody checked.
    """
    by_digest = tag.startswith("sha256:")
    reference = f"{registry.address}/{repository}{'@' if by_digest else ':'}{tag}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not by_digest:
                return registry.resolve(repository, tag)
            if registry.exists(repository, tag):
                return tag
            raise ImageNotFound(f"image {reference} not found")
        except (ImageNotFound, RegistryUnavailable) as exc:
            last = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(interval, remaining))
    if isinstance(last, RegistryUnavailable):
        raise last
    raise ImageNotFound(f"image {reference} not found in the registry after {timeout:g}s") from last


def _check_repository(path: str, field: str = "repository") -> None:
    if not path or not all(_PATH_COMPONENT.fullmatch(part) for part in path.split("/")):
        raise ValidationFailed(Problem(field, f"{path!r} is not a valid repository path "
                                              "(lowercase letters, digits, separators . _ - /)"))


def _error_codes(response: httpx.Response) -> list[str]:
    """The ``errors[].code`` values of a distribution-API error body (empty for HEAD or non-JSON)."""
    try:
        return [str(e.get("code")) for e in response.json().get("errors", [])]
    except (ValueError, AttributeError):
        return []


def _raise_for(response: httpx.Response, *, what: str, address: str) -> NoReturn:
    status = response.status_code
    codes = _error_codes(response)
    detail = f"HTTP {status}" + (f" {', '.join(codes)}" if codes else "")
    if status >= 500 or status == 429:
        raise RegistryUnavailable(f"registry {address} is unavailable ({detail}) while looking up {what}")
    if status == 404 or _NOT_FOUND_CODES & set(codes):
        raise ImageNotFound(f"{what} not found in the registry ({detail})")
    if status in (401, 403):
        raise TerminalError(f"registry {address} refused access to {what} ({detail}); "
                            "check the registry credentials")
    raise TerminalError(f"registry {address} rejected the request for {what} ({detail})")
