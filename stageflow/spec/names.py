"""Naming rules of the platform, as pure functions that return the broken rule in plain words.

Each ``*_problem`` function returns ``None`` when the value is fine, else one sentence that is
shown to a person verbatim (``file: field: rule``). The pydantic models and the flow/CLI input
checks share these functions, so a name is judged the same way wherever it enters.
"""
from __future__ import annotations

import re
from typing import Literal

from stageflow.errors import Problem, ValidationFailed

__all__ = [
    "STAGES",
    "Stage",
    "app_name_problem",
    "chart_version_problem",
    "commit_problem",
    "digest_problem",
    "image_repository_problem",
    "label_problem",
    "namespace",
    "registry_problem",
    "split_image_reference",
    "tag_problem",
    "validate_name",
]

Stage = Literal["test", "prod"]
STAGES: tuple[Stage, ...] = ("test", "prod")

LABEL_MAX = 63  # Kubernetes DNS-1123 label limit (names of namespaces, pods, services ...)
REPOSITORY_MAX = 100  # forge repository names: same alphabet, longer limit
IMAGE_NAME_MAX = 255  # distribution/reference NameTotalLengthMax
# Every stage gets namespace "<app>-<stage>", so the longest stage suffix bounds app names.
APP_NAME_MAX = LABEL_MAX - max(len(f"-{stage}") for stage in STAGES)

LABEL_RULE = ("must be a DNS-1123 label: lowercase letters, digits and '-', "
              "starting and ending with a letter or digit")
_LABEL_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?", re.ASCII)

# Reserved because the platform or Kubernetes already owns these names or their namespaces.
# "kube": its namespaces would be kube-*; "cluster": terraform/cluster/<name> holds the cluster roots.
_RESERVED_APPS = frozenset({"cluster", "core-services", "default", "kube"})
SERVICE_NAME_MAX = 53  # Helm release names (the release is named after the service)
_RESERVED_APP_PREFIX = "kube-"

# OCI distribution reference grammar (github.com/distribution/reference, regexp.go).
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_PORT_RE = re.compile(
    rf"(?P<host>{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::(?P<port>[0-9]+))?",
    re.ASCII)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}", re.ASCII)
_COMMIT_RE = re.compile(r"[0-9a-f]{7,40}", re.ASCII)
# semver.org's recommended pattern (Helm chart versions are SemVer 2).
_SEMVER_RE = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?", re.ASCII)

IMAGE_REPOSITORY_RULE = (
    "must be an image repository (OCI reference grammar): an optional registry host[:port]/, then "
    "'/'-separated path components of lowercase letters and digits joined by '.', '_', '__' or '-'")


def namespace(app: str, stage: str) -> str:
    """The Kubernetes namespace an app runs in at a stage."""
    return f"{app}-{stage}"


def label_problem(value: str, *, max_length: int = LABEL_MAX) -> str | None:
    """Why ``value`` is not a DNS-1123 label of at most ``max_length`` characters, or None."""
    rules = []
    if not _LABEL_RE.fullmatch(value):
        rules.append(LABEL_RULE)
    if len(value) > max_length:
        rules.append(f"must be at most {max_length} characters long (is {len(value)})")
    return "; ".join(rules) or None


def app_name_problem(value: str) -> str | None:
    """Label rules plus what an app name needs beyond them: not reserved, namespaces that fit."""
    if (problem := label_problem(value)) is not None:
        return problem
    if value in _RESERVED_APPS or value.startswith(_RESERVED_APP_PREFIX):
        return ("is reserved: 'cluster', 'core-services', 'default', 'kube' and names starting with 'kube-' "
                "belong to the platform or to Kubernetes")
    if len(value) > APP_NAME_MAX:
        longest = max((namespace(value, stage) for stage in STAGES), key=len)
        return (f"is {len(value)} characters long, but app names may have at most {APP_NAME_MAX}: "
                f"the namespace '{longest}' (<app>-<stage>) must be a DNS-1123 label of at most "
                f"{LABEL_MAX} characters")
    return None


def service_name_problem(value: str) -> str | None:
    """Label rules plus what a service name needs: it names a Kubernetes Service (which must start
    with a letter, DNS-1035) and a Helm release (at most 53 characters)."""
    if (problem := label_problem(value, max_length=SERVICE_NAME_MAX)) is not None:
        return problem
    if not value[0].isalpha():
        return "must start with a letter: it names a Kubernetes Service (DNS-1035 label)"
    return None


def validate_name(field: str, value: str, *, kind: Literal["app", "service"]) -> None:
    """Check an app or service name given to a flow or the CLI; raise ValidationFailed if bad."""
    if kind not in ("app", "service"):
        raise ValueError(f"kind must be 'app' or 'service', not {kind!r}")  # a programming error
    problem = app_name_problem(value) if kind == "app" else service_name_problem(value)
    if problem is not None:
        raise ValidationFailed(Problem(field, problem), summary=f"invalid {kind} name {value!r}")


def registry_problem(value: str) -> str | None:
    """Why ``value`` is not a registry ``host[:port]`` (as in ``127.0.0.1:5000``), or None."""
    match = _HOST_PORT_RE.fullmatch(value)
    if match is None:
        return ("must be a registry host[:port] such as '127.0.0.1:5000' or 'registry.example.com', "
                "without scheme or path")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        return f"port must be between 1 and 65535 (is {port})"
    return None


def image_repository_problem(value: str) -> str | None:
    """Why ``value`` is not an image repository without tag or digest, or None."""
    if "@" in value:
        return f"must not include a digest ('@...'): {IMAGE_REPOSITORY_RULE}"
    components = value.split("/")
    # As in Docker: a first component with '.' or ':' (or 'localhost') names a registry.
    if len(components) > 1 and ("." in components[0] or ":" in components[0] or components[0] == "localhost"):
        registry, components = components[0], components[1:]
        if (problem := registry_problem(registry)) is not None:
            return f"registry '{registry}' {problem}"
    if ":" in components[-1]:
        return f"must not include a tag (':...'): {IMAGE_REPOSITORY_RULE}"
    if not all(_PATH_COMPONENT_RE.fullmatch(c) for c in components):
        return IMAGE_REPOSITORY_RULE
    if len(value) > IMAGE_NAME_MAX:
        return f"must be at most {IMAGE_NAME_MAX} characters long (is {len(value)})"
    return None


def tag_problem(value: str) -> str | None:
    """Why ``value`` is not an image tag, or None."""
    if _TAG_RE.fullmatch(value):
        return None
    return ("must be an image tag: up to 128 letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'")


def digest_problem(value: str) -> str | None:
    """Why ``value`` is not a sha256 image digest, or None."""
    if _DIGEST_RE.fullmatch(value):
        return None
    return "must be an image digest 'sha256:' followed by 64 lowercase hexadecimal characters"


def commit_problem(value: str) -> str | None:
    """Why ``value`` is not a git commit id (abbreviated or full), or None."""
    if _COMMIT_RE.fullmatch(value):
        return None
    return "must be a git commit id: 7 to 40 lowercase hexadecimal characters (quote it in YAML)"


def chart_version_problem(value: str) -> str | None:
    """Why ``value`` is not a SemVer 2 version (what Helm requires of chart versions), or None."""
    if _SEMVER_RE.fullmatch(value):
        return None
    return "must be a semantic version such as '0.1.0' (MAJOR.MINOR.PATCH, quoted in YAML)"


def split_image_reference(ref: str, *, field: str = "image") -> tuple[str, str | None, str | None]:
    """Split a full image reference into (repository, tag, digest).

    >>> split_image_reference("127.0.0.1:5000/shop/orders:abc123")
    ('127.0.0.1:5000/shop/orders', 'abc123', None)
    """
    name, digest = ref.split("@", 1) if "@" in ref else (ref, None)
    # A ':' after the last '/' starts the tag; one before it belongs to the registry port.
    slash = name.rfind("/")
    colon = name.find(":", slash + 1)
    repository, tag = (name[:colon], name[colon + 1:]) if colon != -1 else (name, None)
    problems = []
    if (problem := image_repository_problem(repository)) is not None:
        problems.append(Problem(field, f"repository '{repository}' {problem}"))
    if tag is not None and (problem := tag_problem(tag)) is not None:
        problems.append(Problem(field, f"tag '{tag}' {problem}"))
    if digest is not None and (problem := digest_problem(digest)) is not None:
        problems.append(Problem(field, f"digest '{digest}' {problem}"))
    if problems:
        raise ValidationFailed(problems, summary=f"invalid image reference {ref!r}")
    return repository, tag, digest
