"""``LocalForge``: the embedded platform's git forge, bare repositories under one directory.

    forge = LocalForge(Path(".stageflow/forge"))
    info, created = forge.create_repo("infrastructure")        # root/infrastructure.git
    forge.commit_files("infrastructure", {"README.md": "hi\\n"}, "Initial commit")

Pull requests and releases are JSON records inside the repository (``<name>.git/stageflow/``);
releases also create an annotated tag. Repository settings (protection, variables, secrets,
environments, webhooks) are JSON documents beside them (``_local_settings.py``). Every change to one repository happens under that
repository's lock, so concurrent writers serialise per repository and never block each other
across repositories; scratch clones live in private temporary directories.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from stageflow.adapters.forge._bare import (
    RecordStore, branch_commit, commit_tree, is_ancestor, list_refs, resolve_commit, set_ref,
)
from stageflow.adapters.forge._local_settings import LocalRepositorySettings
from stageflow.adapters.forge.base import (
    DEFAULT_AUTHOR, PullRequest, PullRequestState, Release, RepoInfo, revert_branch_name, validate_commit,
    validate_ref_name, validate_repo_name,
)
from stageflow.adapters.git import GitError, exclusive_lock, identity_env, run_git, try_git, validate_tree_paths
from stageflow.errors import NotFound, Problem, TerminalError, ValidationFailed

__all__ = ["LocalForge"]


class LocalForge(LocalRepositorySettings):
    """A ``Forge`` over bare repositories ``root/<name>.git``, driven by the git CLI."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    # --- repositories -------------------------------------------------------------------------
    def create_repo(self, name: str, *, description: str = "",
                    default_branch: str = "main") -> tuple[RepoInfo, bool]:
        validate_repo_name(name)
        validate_ref_name(default_branch, field="default_branch")
        with self._lock(name):
            if (existing := self.get_repo(name)) is not None:
                return existing, False
            # Initialise beside the final path and rename: a crash never leaves a half repository
            # that a later call would adopt.
            self.root.mkdir(parents=True, exist_ok=True)
            staging = self.root / f".creating-{name}-{uuid.uuid4().hex}"
            try:
                run_git(["init", "--quiet", "--bare", str(staging)], None)
                run_git(["symbolic-ref", "HEAD", f"refs/heads/{default_branch}"], staging)
                (staging / "description").write_text((description or name) + "\n")
                os.rename(staging, self._git_dir(name))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            return self._info(name), True

    def get_repo(self, name: str) -> RepoInfo | None:
        validate_repo_name(name)
        return self._info(name) if (self._git_dir(name) / "HEAD").is_file() else None

    def delete_repo(self, name: str) -> bool:
        validate_repo_name(name)
        with self._lock(name):
            if not self._git_dir(name).exists():
                return False
            shutil.rmtree(self._git_dir(name))
            return True

    # --- files and commits --------------------------------------------------------------------
    def read_file(self, repo: str, path: str, ref: str = "main") -> str | None:
        git_dir = self._existing(repo)
        validate_ref_name(ref, field="ref")
        validate_tree_paths([path], field="path")
        commit = resolve_commit(git_dir, ref)
        if commit is None:
            return None
        return try_git(["cat-file", "blob", f"{commit}:{path}"], git_dir)

    def commit_files(self, repo: str, files: dict[str, str | None], message: str, *,
                     branch: str = "main", base: str | None = None,
                     author: tuple[str, str] = DEFAULT_AUTHOR) -> str | None:
        git_dir = self._existing(repo)
        validate_commit(files, message, branch=branch, base=base)
        with self._lock(repo):
            parent = branch_commit(git_dir, branch)
            start = parent if parent is not None else self._branch_start(git_dir, repo, base)
            commit = commit_tree(git_dir, start, files, message, author)
            if commit is None:
                if parent is None and start is not None:
                    # Nothing to write, but the caller still asked for the branch to exist.
                    set_ref(git_dir, f"refs/heads/{branch}", start, None, "stageflow: create branch")
                return None
            set_ref(git_dir, f"refs/heads/{branch}", commit, parent, "stageflow: commit files")
            return commit

    def head_commit(self, repo: str, ref: str = "main") -> str | None:
        git_dir = self._existing(repo)
        validate_ref_name(ref, field="ref")
        return resolve_commit(git_dir, ref)

    # --- branches -----------------------------------------------------------------------------
    def list_branches(self, repo: str) -> list[str]:
        return list_refs(self._existing(repo), "heads")

    def create_branch(self, repo: str, name: str, from_ref: str = "main") -> bool:
        git_dir = self._existing(repo)
        validate_ref_name(name, field="branch")
        validate_ref_name(from_ref, field="from_ref")
        with self._lock(repo):
            if branch_commit(git_dir, name) is not None:
                return False
            start = resolve_commit(git_dir, from_ref)
            if start is None:
                raise NotFound(f"cannot create branch {name!r} in {repo!r}: ref {from_ref!r} does not exist")
            set_ref(git_dir, f"refs/heads/{name}", start, None, "stageflow: create branch")
            return True

    def delete_branch(self, repo: str, name: str) -> bool:
        git_dir = self._existing(repo)
        validate_ref_name(name, field="branch")
        with self._lock(repo):
            current = branch_commit(git_dir, name)
            if current is None:
                return False
            if name == self._default_branch(git_dir):
                raise TerminalError(f"refusing to delete the default branch {name!r} of {repo!r}")
            run_git(["update-ref", "-d", f"refs/heads/{name}", current], git_dir)
            return True

    # --- pull requests ------------------------------------------------------------------------
    def find_pull_request(self, repo: str, head: str, base: str = "main",
                          state: PullRequestState | Literal["all"] = "open") -> PullRequest | None:
        matches = [pr for pr in self._pulls(repo).load_all(PullRequest)
                   if pr.head == head and pr.base == base and state in ("all", pr.state)]
        return max(matches, key=lambda pr: pr.number, default=None)

    def open_pull_request(self, repo: str, head: str, base: str, title: str,
                          body: str) -> tuple[PullRequest, bool]:
        git_dir = self._existing(repo)
        validate_ref_name(head, field="head")
        validate_ref_name(base, field="base")
        if head == base:
            raise ValidationFailed(Problem("head", "must differ from base"), summary="invalid pull request")
        with self._lock(repo):
            if (existing := self.find_pull_request(repo, head, base, "open")) is not None:
                return existing, False
            for role, branch in (("head", head), ("base", base)):
                if branch_commit(git_dir, branch) is None:
                    raise NotFound(f"cannot open a pull request in {repo!r}: {role} branch {branch!r} does not exist")
            store = self._pulls(repo)
            number = max((pr.number for pr in store.load_all(PullRequest)), default=0) + 1
            pr = PullRequest(number=number, title=title, body=body, head=head, base=base, state="open",
                             merge_commit=None, web_url=store.path(str(number)).as_uri())
            store.save(str(number), pr)
            return pr, True

    def get_pull_request(self, repo: str, number: int) -> PullRequest | None:
        return self._pulls(repo).load(str(int(number)), PullRequest)

    def merge_pull_request(self, repo: str, number: int, message: str | None = None) -> PullRequest:
        git_dir = self._existing(repo)
        with self._lock(repo):
            pr = self._require_pull(repo, number)
            if pr.state == "merged":
                return pr
            if pr.state == "closed":
                raise TerminalError(f"pull request #{number} in {repo!r} is closed and cannot be merged")
            head_sha = branch_commit(git_dir, pr.head)
            base_sha = branch_commit(git_dir, pr.base)
            if head_sha is None or base_sha is None:
                raise TerminalError(f"pull request #{number} in {repo!r}: branch {pr.head!r} or {pr.base!r} is gone")
            if is_ancestor(git_dir, head_sha, base_sha):
                # Already in base (e.g. an earlier attempt merged, then died before recording it).
                merge_commit = _merge_that_brought(git_dir, head_sha, base_sha)
            else:
                text = message or f"Merge pull request #{number} from {pr.head}\n\n{pr.title}\n"
                merge_commit = self._merge_in_scratch_clone(git_dir, repo, pr, text)
            merged = pr.model_copy(update={"state": "merged", "merge_commit": merge_commit})
            self._pulls(repo).save(str(number), merged)
            return merged

    def close_pull_request(self, repo: str, number: int) -> PullRequest:
        with self._lock(repo):
            pr = self._require_pull(repo, number)
            if pr.state != "open":
                return pr  # closed stays closed, merged stays merged
            closed = pr.model_copy(update={"state": "closed"})
            self._pulls(repo).save(str(number), closed)
            return closed

    def revert_pull_request(self, repo: str, number: int, *,
                            title: str | None = None) -> tuple[PullRequest, bool]:
        git_dir = self._existing(repo)
        branch = revert_branch_name(number)
        with self._lock(repo):
            pr = self._require_pull(repo, number)
            if pr.state != "merged" or pr.merge_commit is None:
                raise TerminalError(f"pull request #{number} in {repo!r} is {pr.state}, only a merged one can be reverted")
            # An earlier attempt's revert, open or already merged, is the answer to this call too.
            for state in ("open", "merged"):
                if (earlier := self.find_pull_request(repo, branch, pr.base, state)) is not None:
                    return earlier, False
            if branch_commit(git_dir, branch) is None:
                self._revert_in_scratch_clone(git_dir, repo, pr, branch)
        # Outside the lock (open_pull_request takes it; flock does not nest); it adopts a PR a
        # concurrent caller opened in between.
        body = f"Reverts #{number} (merge commit {pr.merge_commit})."
        return self.open_pull_request(repo, branch, pr.base, title or f'Revert "{pr.title}"', body)

    # --- releases and tags --------------------------------------------------------------------
    def create_release(self, repo: str, tag: str, *, ref: str = "main", name: str | None = None,
                       body: str = "") -> tuple[Release, bool]:
        git_dir = self._existing(repo)
        validate_ref_name(tag, field="tag")
        validate_ref_name(ref, field="ref")
        releases = RecordStore(git_dir, "releases")
        with self._lock(repo):
            if (existing := releases.load(tag, Release)) is not None:
                return existing, False
            # A tag pushed without a release is adopted as it stands: tags are immutable.
            commit = resolve_commit(git_dir, f"refs/tags/{tag}")
            if commit is None:
                commit = resolve_commit(git_dir, ref)
                if commit is None:
                    raise NotFound(f"cannot release {tag!r} in {repo!r}: ref {ref!r} does not exist")
                text = f"{name or tag}\n\n{body}".rstrip() + "\n"
                run_git(["tag", "--annotate", "--file=-", tag, commit], git_dir,
                        identity_env(*DEFAULT_AUTHOR), input=text)
            release = Release(tag=tag, name=name or tag, body=body, commit=commit)
            releases.save(tag, release)
            return release, True

    def get_release(self, repo: str, tag: str) -> Release | None:
        git_dir = self._existing(repo)
        validate_ref_name(tag, field="tag")
        return RecordStore(git_dir, "releases").load(tag, Release)

    def list_tags(self, repo: str) -> list[str]:
        return list_refs(self._existing(repo), "tags")

    # --- helpers ------------------------------------------------------------------------------
    def _git_dir(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def _existing(self, name: str) -> Path:
        validate_repo_name(name)
        git_dir = self._git_dir(name)
        if not (git_dir / "HEAD").is_file():
            raise NotFound(f"repository {name!r} does not exist in the local forge at {self.root}")
        return git_dir

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        # Outside the repository, so creating and deleting it happen under the same lock.
        with exclusive_lock(self.root / ".locks" / f"{name}.lock"):
            yield

    def _info(self, name: str) -> RepoInfo:
        git_dir = self._git_dir(name)
        url = git_dir.as_uri()
        return RepoInfo(name=name, clone_url=url, default_branch=self._default_branch(git_dir), web_url=url)

    @staticmethod
    def _default_branch(git_dir: Path) -> str:
        return run_git(["symbolic-ref", "--short", "HEAD"], git_dir).strip()

    def _branch_start(self, git_dir: Path, repo: str, base: str | None) -> str | None:
        """Where a new branch starts: ``base`` or the default branch; None only while the
        repository has no commits at all (the first commit is a root commit)."""
        start_branch = base or self._default_branch(git_dir)
        start = branch_commit(git_dir, start_branch)
        if start is None and (base is not None or list_refs(git_dir, "heads")):
            raise NotFound(f"branch {start_branch!r} does not exist in {repo!r}")
        return start

    def _pulls(self, repo: str) -> RecordStore:
        return RecordStore(self._existing(repo), "pulls")

    def _require_pull(self, repo: str, number: int) -> PullRequest:
        pr = self.get_pull_request(repo, number)
        if pr is None:
            raise NotFound(f"pull request #{number} does not exist in {repo!r}")
        return pr

    @staticmethod
    def _merge_in_scratch_clone(git_dir: Path, repo: str, pr: PullRequest, message: str) -> str:
        with tempfile.TemporaryDirectory(prefix="stageflow-merge-") as scratch:
            work = Path(scratch) / "work"
            run_git(["clone", "--quiet", "--no-tags", "--single-branch", "--branch", pr.base,
                     str(git_dir), str(work)], None)
            run_git(["fetch", "--quiet", "--no-tags", "origin", f"refs/heads/{pr.head}"], work)
            try:
                run_git(["merge", "--no-ff", "--no-edit", "-m", message, "FETCH_HEAD"], work,
                        identity_env(*DEFAULT_AUTHOR))
            except GitError as exc:
                raise TerminalError(f"pull request #{pr.number} in {repo!r} cannot be merged: "
                                    f"{pr.head!r} conflicts with {pr.base!r}: {exc.output}") from exc
            # We hold the repository lock, so this is a fast-forward of the base branch.
            run_git(["push", "--quiet", "origin", f"HEAD:refs/heads/{pr.base}"], work)
            return run_git(["rev-parse", "HEAD"], work).strip()

    @staticmethod
    def _revert_in_scratch_clone(git_dir: Path, repo: str, pr: PullRequest, branch: str) -> None:
        """Commit the inverse of ``pr``'s merge commit on top of its base, as ``branch``."""
        merge_commit = pr.merge_commit or ""
        parents = run_git(["rev-list", "--parents", "-n1", merge_commit], git_dir).split()[1:]
        with tempfile.TemporaryDirectory(prefix="stageflow-revert-") as scratch:
            work = Path(scratch) / "work"
            run_git(["clone", "--quiet", "--no-tags", "--single-branch", "--branch", pr.base,
                     str(git_dir), str(work)], None)
            mainline = ["-m", "1"] if len(parents) > 1 else []  # undo relative to the base side
            try:
                run_git(["revert", "--no-commit", *mainline, merge_commit], work, identity_env(*DEFAULT_AUTHOR))
            except GitError as exc:
                raise TerminalError(f"pull request #{pr.number} in {repo!r} cannot be reverted cleanly: "
                                    f"later changes to {pr.base!r} conflict with it: {exc.output}") from exc
            if try_git(["diff", "--cached", "--quiet"], work) is not None:
                raise TerminalError(f"pull request #{pr.number} in {repo!r} is already undone on {pr.base!r}")
            message = f'Revert "{pr.title}"\n\nThis reverts pull request #{pr.number}, merge commit {merge_commit}.\n'
            run_git(["commit", "--quiet", "--no-verify", "-F", "-"], work, identity_env(*DEFAULT_AUTHOR), input=message)
            run_git(["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], work)


def _merge_that_brought(git_dir: Path, head_sha: str, base_sha: str) -> str:
    """The oldest merge commit on base that has ``head_sha`` as a parent, else base's tip."""
    out = run_git(["rev-list", "--merges", "--parents", "--ancestry-path", f"{head_sha}..{base_sha}"], git_dir)
    for line in reversed(out.splitlines()):
        commit, *parents = line.split()
        if head_sha in parents:
            return commit
    return base_sha
