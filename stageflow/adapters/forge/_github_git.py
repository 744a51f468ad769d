"""Git data API helpers for ``GitHubForge``: trees as path -> blob maps, the tree entries a change
needs, the entries that undo a merge, and one commit on top of a parent.

Working on blob names (git's SHA-1 of the content) lets ``commit_files`` skip unchanged files
without uploading them, and lets a revert reuse the old blobs without downloading them.
"""
from __future__ import annotations

import base64
import hashlib

from github import InputGitAuthor, InputGitTreeElement
from github.Repository import Repository

from stageflow.adapters.forge._github_errors import github_errors
from stageflow.errors import TerminalError

__all__ = ["BlobIndex", "blob_index", "blob_sha", "change_entries", "commit_tree", "revert_entries"]

BlobIndex = dict[str, tuple[str, str]]  # path -> (mode, blob sha)


def blob_sha(content: str) -> str:
    """The object name git gives ``content`` as a blob."""
    data = content.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def blob_index(gh_repo: Repository, commit: str) -> BlobIndex:
    """Every file in ``commit``'s tree (one recursive tree listing)."""
    with github_errors(f"read the tree of {commit} in {gh_repo.full_name}"):
        tree = gh_repo.get_git_tree(gh_repo.get_git_commit(commit).tree.sha, recursive=True)
    if tree.raw_data.get("truncated"):
        raise TerminalError(f"the tree of {commit} in {gh_repo.full_name} is too large for one API answer")
    return {e.path: (e.mode, e.sha) for e in tree.tree if e.type == "blob"}


def change_entries(gh_repo: Repository, current: BlobIndex, files: dict[str, str | None]) -> list[InputGitTreeElement]:
    """Tree entries that turn ``current`` into one with ``files`` applied (None deletes), uploading
    only blobs whose content differs; deleting a path that is not there is no change (GitHub
    would refuse it)."""
    entries = []
    with github_errors(f"upload files to {gh_repo.full_name}"):
        for path, content in files.items():
            mode, existing = current.get(path, ("100644", None))
            if content is None:
                if existing is not None:
                    entries.append(InputGitTreeElement(path, mode, "blob", sha=None))
            elif existing != blob_sha(content):
                blob = gh_repo.create_git_blob(base64.b64encode(content.encode()).decode(), "base64")
                entries.append(InputGitTreeElement(path, mode, "blob", sha=blob.sha))
    return entries


def revert_entries(before_merge: BlobIndex, after_merge: BlobIndex, at_tip: BlobIndex,
                   what: str) -> list[InputGitTreeElement]:
    """Entries that give every file the merge changed its content from before the merge. Only
    when the tip still has the merged content of all those files: a file changed again since
    would need a three-way merge, and guessing one is worse than refusing (TerminalError)."""
    changed = sorted(p for p in after_merge.keys() | before_merge.keys() if after_merge.get(p) != before_merge.get(p))
    if not changed:
        raise TerminalError(f"{what} changed no files; nothing to revert")
    moved_on = [p for p in changed if at_tip.get(p) != after_merge.get(p)]
    if moved_on:
        raise TerminalError(f"{what} cannot be reverted cleanly: {', '.join(moved_on)} changed since it was merged")
    return [InputGitTreeElement(p, before_merge[p][0], "blob", sha=before_merge[p][1]) if p in before_merge
            else InputGitTreeElement(p, after_merge[p][0], "blob", sha=None) for p in changed]


def commit_tree(gh_repo: Repository, parent: str, entries: list[InputGitTreeElement], message: str,
                author: tuple[str, str]) -> str:
    """One commit on ``parent`` with ``entries`` applied to its tree; moves no ref."""
    with github_errors(f"commit to {gh_repo.full_name}"):
        parent_commit = gh_repo.get_git_commit(parent)
        tree = gh_repo.create_git_tree(entries, parent_commit.tree)
        identity = InputGitAuthor(*author)
        return gh_repo.create_git_commit(message, tree, [parent_commit], author=identity, committer=identity).sha
