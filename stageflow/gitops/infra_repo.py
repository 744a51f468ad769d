"""``InfraRepo``: the checkout of the infrastructure repository that flows write through.

    infra = InfraRepo(repo.clone_url, workdir / "infra")
    checkout = infra.sync()                                   # clone or fetch + hard reset
    sha = infra.commit_and_push({"apps/shop/test/orders.yaml": text}, "shop/orders: test -> 3f2a",
                                {"Stageflow-Flow-Run": run_id})  # None when the file already says so

Pushes are never forced. When another writer pushed first, our commit is rebased onto theirs;
if both changed the same lines, our files are written again on top of the new tip (the later
writer's content wins, both commits stay in history). Every public method that touches the
checkout holds a lock beside it, so two threads sharing one workdir take turns.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

from stageflow.adapters.git import (
    GitCommandFailed, GitError, PushRejected, exclusive_lock, identity_env, redact, ref_name_problem, run_git, try_git,
    validate_tree_paths,
)
from stageflow.errors import NotFound, Problem, RetryableError, TerminalError, ValidationFailed
from stageflow.gitops.trailers import message_with_trailers, normalize_key, parse_trailers, validate_trailers

__all__ = ["CommitRecord", "InfraRepo"]

_FIELD = "\x1f"
_LOG_FORMAT = _FIELD.join(["%H", "%s", "%an <%ae>", "%aI", "%(trailers:only=true,unfold=true)"])
# Paths are file names, never patterns: 'values-*.yaml' must not match its neighbours.
_LITERAL_PATHS = {"GIT_LITERAL_PATHSPECS": "1"}


class CommitRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sha: str
    subject: str
    trailers: dict[str, str]
    author: str
    date: datetime


class InfraRepo:
    """One working checkout of ``clone_url`` at ``workdir``, tracking ``branch``."""

    def __init__(self, clone_url: str, workdir: Path, *, branch: str = "main",
                 author: tuple[str, str] = ("stageflow", "stageflow@localhost"),
                 auth_header: SecretStr | None = None):
        if (problem := ref_name_problem(branch)) is not None:
            raise ValidationFailed(Problem("branch", problem), summary=f"invalid branch name {branch!r}")
        self.clone_url = clone_url
        self.workdir = Path(workdir)
        self.branch = branch
        self._identity = identity_env(*author)
        # Credentials for an https remote (e.g. GitHub) travel as an HTTP header that git reads
        # from its environment for fetch and push only: never in the URL, .git/config or argv.
        self._remote_env = {} if auth_header is None else {
            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": auth_header.get_secret_value()}

    @staticmethod
    def basic_auth(user: str, token: SecretStr) -> SecretStr:
        """The ``Authorization`` header for token auth over https (GitHub: user ``x-access-token``)."""
        raw = f"{user}:{token.get_secret_value()}".encode()
        return SecretStr(f"Authorization: Basic {base64.b64encode(raw).decode()}")

    def __repr__(self) -> str:
        return f"InfraRepo({redact(self.clone_url)!r}, {str(self.workdir)!r}, branch={self.branch!r})"

    # --- public API ---------------------------------------------------------------------------
    def sync(self) -> Path:
        """Clone if missing, else fetch and hard-reset to ``origin/<branch>``; the checkout path."""
        with self._locked():
            self._sync()
        return self.workdir

    def head(self) -> str:
        """The commit the checkout is at."""
        sha = self._head()
        if sha is None:
            raise NotFound(f"{self!r} has no commits on {self.branch!r} yet")
        return sha

    def commit_and_push(self, files: dict[str, str | None], message: str,
                        trailers: dict[str, str] | None = None, *, attempts: int = 5) -> str | None:
        """Write ``files`` (None deletes) onto the latest ``origin/<branch>``, commit with
        ``trailers`` and push. Returns the pushed commit, or None when nothing changed.
        Raises RetryableError after losing ``attempts`` push races in a row."""
        validate_tree_paths(list(files))
        validate_trailers(trailers or {})
        if attempts < 1:
            raise ValidationFailed(Problem("attempts", "must be at least 1"), summary="invalid commit_and_push")
        text = message_with_trailers(message, trailers or {})
        with self._locked():
            self._sync()
            if not self._stage_and_commit(files, text):
                return None
            for attempt in range(1, attempts + 1):
                try:
                    run_git(["push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}"], self.workdir,
                            self._remote_env)
                    return self.head()
                except PushRejected as exc:
                    lost = exc
                if attempt < attempts and not self._integrate_remote(files, text):
                    return None  # the other writer already pushed exactly our change
        raise RetryableError(f"push to {redact(self.clone_url)} ({self.branch}) lost {attempts} races "
                             f"with other writers; try again") from lost

    def log(self, path: str | None = None, *, max_count: int = 100) -> list[CommitRecord]:
        """Newest first: commits of the checkout (touching ``path`` if given)."""
        if path is not None:
            validate_tree_paths([path], field="path")
        if self._head() is None:
            return []
        out = run_git(["log", "-z", f"--max-count={int(max_count)}", f"--format={_LOG_FORMAT}", "HEAD",
                       "--", *([path] if path else [])], self.workdir, _LITERAL_PATHS)
        return [_record(chunk) for chunk in out.split("\0") if chunk.strip()]

    def find_commit_with_trailers(self, **trailers: str) -> CommitRecord | None:
        """The newest commit whose trailers include all of ``trailers`` (keys case-insensitive;
        ``Stageflow_Flow_Run=`` means ``Stageflow-Flow-Run``)."""
        wanted = {normalize_key(key): value for key, value in trailers.items()}
        validate_trailers(wanted)
        if not wanted:
            raise ValidationFailed(Problem("trailers", "name at least one trailer"), summary="invalid search")
        if self._head() is None:
            return None
        # Let git narrow the history with fixed-string greps, then check the parsed trailers.
        greps = [arg for key, value in wanted.items() for arg in ("--grep", f"{key}: {value}")]
        out = run_git(["log", "-z", "--fixed-strings", "--regexp-ignore-case", "--all-match", *greps,
                       f"--format={_LOG_FORMAT}", "HEAD"], self.workdir)
        for chunk in out.split("\0"):
            if chunk.strip():
                record = _record(chunk)
                found = {key.lower(): value for key, value in record.trailers.items()}
                if all(found.get(key.lower()) == value for key, value in wanted.items()):
                    return record
        return None

    def commits_between(self, old: str, new: str, *, max_count: int = 200) -> list[str] | None:
        """``"<sha7> <subject>"`` of each commit reachable from ``new`` but not ``old``, newest
        first; None when either commit is not in this checkout's history."""
        for sha in (old, new):
            if not re.fullmatch(r"[0-9a-f]{7,40}", sha):
                raise ValidationFailed(Problem("commit", f"must be a hex commit id (found {sha!r})"),
                                       summary="invalid commit range")
            if try_git(["cat-file", "-e", f"{sha}^{{commit}}"], self.workdir) is None:
                return None
        out = run_git(["log", f"--max-count={int(max_count)}", "--format=%h %s", f"{old}..{new}"], self.workdir)
        return [line for line in out.splitlines() if line.strip()]

    def show_file(self, path: str, ref: str = "HEAD") -> str | None:
        """``path`` as of ``ref`` (a sha, branch, tag or ``HEAD~1``-style expression), or None."""
        validate_tree_paths([path], field="path")
        if not ref or ref.startswith("-") or any(ch.isspace() or ch == ":" for ch in ref):
            raise ValidationFailed(Problem("ref", "must be a revision without spaces or ':'"), summary="invalid ref")
        return try_git(["cat-file", "blob", f"{ref}:{path}"], self.workdir)

    # --- helpers ------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with exclusive_lock(self.workdir.parent / f".{self.workdir.name}.lock"):
            yield

    def _head(self) -> str | None:
        if not (self.workdir / ".git").is_dir():
            return None
        out = try_git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], self.workdir)
        return out.strip() if out else None

    def _sync(self) -> None:
        if not (self.workdir / ".git").is_dir():
            if self.workdir.exists() and any(self.workdir.iterdir()):
                # A reset would wipe it: refuse rather than guess that the directory is scratch.
                raise TerminalError(f"{self.workdir} exists and is not a git checkout; "
                                    f"remove it or choose another workdir")
            self.workdir.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", str(self.workdir)], None)
            run_git(["remote", "add", "origin", self.clone_url], self.workdir)
        else:
            # Adopt the checkout, even if its URL changed (a rotated token, a moved forge).
            run_git(["remote", "set-url", "origin", self.clone_url], self.workdir)
            self._abort_unfinished()
        self._reset_to(self._fetch())

    def _fetch(self) -> str | None:
        """Fetch ``branch``; its commit, or None while the remote has no such branch."""
        remote_ref = f"refs/remotes/origin/{self.branch}"
        try:
            run_git(["fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{self.branch}:{remote_ref}"],
                    self.workdir, self._remote_env)
        except GitError as exc:
            if "couldn't find remote ref" not in exc.output.lower():
                raise
            try_git(["update-ref", "-d", remote_ref], self.workdir)
            return None
        return run_git(["rev-parse", remote_ref], self.workdir).strip()

    def _reset_to(self, commit: str | None) -> None:
        if commit is not None:
            run_git(["checkout", "--quiet", "--force", "-B", self.branch, commit], self.workdir)
        else:  # empty remote: an unborn branch with an empty index, so the first commit is a root
            run_git(["symbolic-ref", "HEAD", f"refs/heads/{self.branch}"], self.workdir)
            try_git(["update-ref", "-d", f"refs/heads/{self.branch}"], self.workdir)
            run_git(["read-tree", "--empty"], self.workdir)
        run_git(["clean", "-ffdxq"], self.workdir)

    def _abort_unfinished(self) -> None:
        """A process killed mid-rebase leaves state that makes the next rebase refuse to start."""
        git_dir = self.workdir / ".git"
        if (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists():
            try_git(["rebase", "--abort"], self.workdir)
        if (git_dir / "MERGE_HEAD").exists():
            try_git(["merge", "--abort"], self.workdir)

    def _stage_and_commit(self, files: dict[str, str | None], text: str) -> bool:
        """Write, stage and commit ``files`` on the current checkout; False if nothing changed."""
        written = [path for path, content in files.items() if content is not None]
        deleted = [path for path, content in files.items() if content is None]
        for path in written:
            target = self.workdir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[path].encode())  # bytes: no newline translation
        for path in deleted:
            (self.workdir / path).unlink(missing_ok=True)
        if written:  # --force: a .gitignore in the repo must not silently drop a managed file
            run_git(["add", "--force", "--", *written], self.workdir, _LITERAL_PATHS)
        if deleted:
            run_git(["rm", "--quiet", "--cached", "--ignore-unmatch", "--", *deleted], self.workdir, _LITERAL_PATHS)
        if not self._index_differs_from_head():
            return False
        run_git(["commit", "--quiet", "--no-verify", "--cleanup=verbatim", "-F", "-"], self.workdir,
                self._identity, input=text)
        return True

    def _index_differs_from_head(self) -> bool:
        if self._head() is None:
            return bool(run_git(["ls-files"], self.workdir).strip())
        tree = run_git(["write-tree"], self.workdir).strip()
        return tree != run_git(["rev-parse", "HEAD^{tree}"], self.workdir).strip()

    def _integrate_remote(self, files: dict[str, str | None], text: str) -> bool:
        """After a rejected push: put our commit on top of the new remote tip. False when the
        remote already has our change (nothing left to push)."""
        remote = self._fetch()
        if remote is None:
            return True  # the branch vanished remotely: pushing recreates it
        try:
            run_git(["rebase", "--quiet", remote], self.workdir, self._identity)
        except GitCommandFailed:
            # Both sides changed the same lines. Our files are the newer intent: write them
            # again on the new tip instead of failing the flow over a textual conflict.
            try_git(["rebase", "--abort"], self.workdir)
            self._reset_to(remote)
            return self._stage_and_commit(files, text)
        # A rebase drops a commit whose change is already upstream, leaving us at the remote tip.
        return self.head() != remote


def _record(chunk: str) -> CommitRecord:
    sha, subject, author, date, trailers = chunk.lstrip("\n").split(_FIELD, 4)
    return CommitRecord(sha=sha, subject=subject, trailers=parse_trailers(trailers), author=author, date=date)
