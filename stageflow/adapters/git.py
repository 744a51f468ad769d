"""A thin typed wrapper around the ``git`` CLI (no GitPython): one place that runs git, sets a
non-interactive environment, redacts credentials and sorts failures into terminal and retryable.

    run_git(["rev-parse", "HEAD"], cwd=checkout)             -> "3f2a...\\n"
    try_git(["cat-file", "blob", "HEAD:x"], cwd=checkout)     -> None when git says no
    run_git(["commit", "-F", "-"], cwd=checkout, env=identity_env("bot", "bot@x"), input="msg")

Failures raise ``GitError`` (terminal) or ``GitTransientError`` (retryable; ``PushRejected`` for a
push that lost a race). Both carry the command and git's output with ``://user:token@`` replaced
by ``://***@``: clone URLs may embed a token, and these messages end up in flow-run logs.
"""
from __future__ import annotations

import fcntl
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from stageflow.errors import Problem, RetryableError, StageflowError, TerminalError, ValidationFailed

__all__ = [
    "GitCommandFailed",
    "GitError",
    "GitTransientError",
    "exclusive_lock",
    "PushRejected",
    "identity_env",
    "redact",
    "ref_name_problem",
    "run_git",
    "tree_path_problem",
    "try_git",
    "validate_tree_paths",
]

DEFAULT_TIMEOUT = 300.0

# Settings a bot writer must not inherit from a person's ~/.gitconfig: a signing key it cannot
# unlock, or line-ending conversion that would make file contents differ from what was written.
_FIXED_CONFIG = ("-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false", "-c", "core.autocrlf=false")

# Variables that would point git at some other repository than ``cwd`` (set when running in a hook).
_REPO_OVERRIDES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                   "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX")

# Network and server-side hiccups worth retrying (git's messages, with LC_ALL=C).
_TRANSIENT_MARKERS = (
    "could not resolve host",
    "connection refused",
    "connection reset",
    "connection timed out",
    "operation timed out",
    "failed to connect",
    "the remote end hung up",
    "early eof",
    "rpc failed",
    "temporary failure in name resolution",
    "network is unreachable",
    "http 502", "http 503", "http 504",
    "the requested url returned error: 5",
    ".lock': file exists",  # another git process holds index.lock or a ref lock right now
)
# A push whose target ref moved since the last fetch: fetch, integrate, push again (never force).
_PUSH_RACE_MARKERS = (
    "non-fast-forward",
    "(fetch first)",
    "failed to update ref",
    "but expected",  # update-ref compare-and-swap lost: "is at X but expected Y"
    "reference already exists",
    "incorrect old value provided",
)

_URL_CREDENTIALS = re.compile(r"://[^/@\s'\"]+@")
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*(?:basic|bearer|token)?\s*)[^\s'\"]+")


class GitCommandFailed(StageflowError):
    """A git command exited non-zero; ``command`` and ``output`` are already redacted."""

    def __init__(self, command: Sequence[str], output: str, returncode: int | None):
        self.command = [redact(part) for part in command]
        self.output = redact(output).strip()
        self.returncode = returncode
        shown = " ".join(self.command)
        super().__init__(f"`{shown}` failed (exit {returncode}): {self.output or 'no output'}")

    @property
    def stderr(self) -> str:
        """What git said (stderr, or stdout when git explained itself there, as merges do)."""
        return self.output


class GitError(GitCommandFailed, TerminalError):
    """A git failure retrying will not fix: bad ref, merge conflict, auth refused, corrupt repo."""


class GitTransientError(GitCommandFailed, RetryableError):
    """A git failure that may pass: network trouble, a lock held by another git process."""


class PushRejected(GitTransientError):
    """The remote branch moved since our fetch; integrate the new commits and push again."""


def redact(text: str) -> str:
    """``text`` with credentials in URLs and Authorization headers replaced by ``***``."""
    return _AUTH_HEADER.sub(r"\1***", _URL_CREDENTIALS.sub("://***@", text))


def identity_env(name: str, email: str) -> dict[str, str]:
    """Author and committer identity for commits, merges, rebases and annotated tags."""
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}


def run_git(args: Sequence[str], cwd: Path | str | None, env: Mapping[str, str] | None = None, *,
            input: str | bytes | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Run ``git <args>`` in ``cwd`` and return its stdout (undecoded newlines, exact content).

    Raises PushRejected / GitTransientError for failures worth retrying, GitError otherwise.
    """
    command = ["git", *args]
    if cwd is not None and not Path(cwd).is_dir():
        raise TerminalError(f"cannot run `{redact(' '.join(command))}`: directory {cwd} does not exist")
    try:
        completed = subprocess.run(
            ["git", *_FIXED_CONFIG, *args], cwd=cwd, env=_environment(env),
            input=input.encode() if isinstance(input, str) else input,
            capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        # ``from None``: TimeoutExpired's own text repeats the unredacted command line.
        raise GitTransientError(command, f"timed out after {timeout:.0f}s", None) from None
    except FileNotFoundError as exc:
        raise TerminalError("the git executable was not found on PATH") from exc
    stdout = completed.stdout.decode("utf-8", errors="replace")
    if completed.returncode == 0:
        return stdout
    stderr = completed.stderr.decode("utf-8", errors="replace")
    # Merges report conflicts on stdout; show whichever stream has the explanation.
    output = stderr if stderr.strip() else stdout
    raise _classify(output)(command, output, completed.returncode)


def try_git(args: Sequence[str], cwd: Path | str | None, env: Mapping[str, str] | None = None, *,
            input: str | bytes | None = None, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """Like ``run_git`` but a terminal failure means "no" and returns None (for probes such as
    ``rev-parse --verify``); transient failures still raise, because "no" would be a guess."""
    try:
        return run_git(args, cwd, env, input=input, timeout=timeout)
    except GitError:
        return None


@contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``lock_file``; it serialises threads and processes alike,
    because every holder opens its own file description."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tree_path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file inside a repository tree, or None."""
    if not path or path != path.strip():
        return "must be a non-empty path without surrounding whitespace"
    if any(ch in path for ch in "\0\n\r\\\""):
        return "must not contain NUL, line breaks, backslashes or double quotes"
    if path.startswith("/"):
        return "must be relative to the repository root"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "must not contain empty, '.' or '..' components"
    if any(part.lower() == ".git" for part in parts):
        return "must not reach into '.git'"
    return None


def validate_tree_paths(paths: Sequence[str], *, field: str = "files") -> None:
    """Raise ValidationFailed naming every path that cannot be written into a tree."""
    problems = [Problem(f"{field}[{path!r}]", problem)
                for path in paths if (problem := tree_path_problem(path)) is not None]
    if problems:
        raise ValidationFailed(problems, summary="invalid file paths")


_REF_NAME_RE = re.compile(r"[A-Za-z0-9._/-]+", re.ASCII)


def ref_name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe branch or tag name, or None (git check-ref-format rules plus a
    conservative alphabet, so a name can never be read as a command-line option)."""
    if not _REF_NAME_RE.fullmatch(name or ""):
        return "must be letters, digits, '.', '_', '-' and '/' only"
    if name.startswith(("-", "/", ".")) or name.endswith(("/", ".", ".lock")):
        return "must not start with '-', '/' or '.', nor end with '/', '.' or '.lock'"
    if "//" in name or ".." in name or "/." in name or name == "HEAD":
        return "must not contain '//', '..' or '/.', and must not be 'HEAD'"
    return None


def _classify(output: str) -> type[GitCommandFailed]:
    lowered = output.lower()
    if any(marker in lowered for marker in _PUSH_RACE_MARKERS):
        return PushRejected
    if any(marker in lowered for marker in _TRANSIENT_MARKERS):
        return GitTransientError
    return GitError


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _REPO_OVERRIDES}
    # Never wait for a person: no credential prompts, no ssh host-key questions.
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    # English messages, so the markers above classify failures the same on every machine.
    env["LC_ALL"] = "C"
    env["LANGUAGE"] = "C"
    env.update(extra or {})
    return env
