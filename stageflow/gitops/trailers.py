"""Git trailers (``Key: value`` lines closing a commit message) that tie an infrastructure commit
to what caused it, e.g. ``Stageflow-Flow-Run: <id>`` or ``Stageflow-Image-Digest: sha256:...``.

Writing and reading go through git's own trailer rules: the block is the last paragraph of the
message, and ``git log --format=%(trailers)`` parses it back, so keys compare case-insensitively.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from stageflow.errors import Problem, ValidationFailed

__all__ = ["TRAILER_KEY_RE", "message_with_trailers", "normalize_key", "parse_trailers", "validate_trailers"]

TRAILER_KEY_RE = re.compile(r"^[A-Za-z0-9-]+$", re.ASCII)


def normalize_key(key: str) -> str:
    """Python keyword arguments cannot hold '-', so ``Stageflow_Flow_Run`` means ``Stageflow-Flow-Run``."""
    return key.replace("_", "-")


def validate_trailers(trailers: Mapping[str, str]) -> None:
    """Raise ValidationFailed naming every key or value git would not keep as one trailer."""
    problems = []
    for key, value in trailers.items():
        if not isinstance(key, str) or not TRAILER_KEY_RE.match(key):
            problems.append(Problem(f"trailers[{key!r}]", "key must be letters, digits and '-' only"))
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(f"trailers[{key!r}]", "value must be a non-empty string"))
        elif "\n" in value or "\r" in value or value != value.strip():
            problems.append(Problem(f"trailers[{key!r}]", "value must be one line without surrounding whitespace"))
    if problems:
        raise ValidationFailed(problems, summary="invalid commit trailers")


def message_with_trailers(message: str, trailers: Mapping[str, str]) -> str:
    """``message`` followed by a blank line and the trailer block (which must be its own last
    paragraph: trailer-looking lines at the end of ``message`` would otherwise merge into it)."""
    validate_trailers(trailers)
    text = message.strip()
    if not text:
        raise ValidationFailed(Problem("message", "must not be empty"), summary="invalid commit message")
    if not trailers:
        return text + "\n"
    block = "\n".join(f"{key}: {value}" for key, value in trailers.items())
    return f"{text}\n\n{block}\n"


def parse_trailers(block: str) -> dict[str, str]:
    """The output of ``%(trailers:only=true,unfold=true)`` as a dict (a repeated key: last wins)."""
    trailers: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            trailers[key.strip()] = value.strip()
    return trailers
