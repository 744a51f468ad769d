"""Plumbing on one bare repository for ``LocalForge``: ref lookups, committing files without a
checkout, and the JSON records kept beside the git data.

Commits are built with a private index file (read-tree, update-index, write-tree, commit-tree)
and published with ``update-ref <new> <old>``, a compare-and-swap: a writer that bypasses the
lock can make this fail, never make it overwrite someone else's commit.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from stageflow.adapters.git import identity_env, run_git, try_git

M = TypeVar("M", bound=BaseModel)
ZERO_OID = "0" * 40  # bare repositories made by LocalForge use SHA-1 object names


def resolve_commit(git_dir: Path, ref: str) -> str | None:
    """The commit ``ref`` names (branch, tag or sha), or None."""
    out = try_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], git_dir)
    return out.strip() if out else None


def branch_commit(git_dir: Path, branch: str) -> str | None:
    return resolve_commit(git_dir, f"refs/heads/{branch}")


def is_ancestor(git_dir: Path, ancestor: str, descendant: str) -> bool:
    return try_git(["merge-base", "--is-ancestor", ancestor, descendant], git_dir) is not None


def list_refs(git_dir: Path, prefix: str) -> list[str]:
    """Short names under ``refs/<prefix>/`` (lstrip keeps 'a/b' whole, unlike :short)."""
    out = run_git(["for-each-ref", "--format=%(refname:lstrip=2)", f"refs/{prefix}/"], git_dir)
    return sorted(line for line in out.splitlines() if line)


def set_ref(git_dir: Path, ref: str, new: str, old: str | None, reason: str) -> None:
    """Point ``ref`` at ``new`` only if it still points at ``old`` (None: must not exist yet)."""
    run_git(["update-ref", "-m", reason, ref, new, old or ZERO_OID], git_dir)


def commit_tree(git_dir: Path, start: str | None, files: dict[str, str | None], message: str,
                author: tuple[str, str]) -> str | None:
    """A new commit with ``files`` applied on top of ``start`` (None: a root commit), or None
    when the resulting tree is the one ``start`` already has. Does not move any ref."""
    if start is None and all(content is None for content in files.values()):
        return None  # deleting files from an empty repository changes nothing
    with tempfile.TemporaryDirectory(prefix="stageflow-forge-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        run_git(["read-tree", f"{start}^{{tree}}"] if start else ["read-tree", "--empty"], git_dir, index)
        entries = []
        for path, content in files.items():
            if content is None:
                entries.append(f"0 {ZERO_OID}\t{path}")  # mode 0 removes the path from the index
            else:
                blob = run_git(["hash-object", "-w", "--stdin"], git_dir, input=content).strip()
                entries.append(f"100644 {blob}\t{path}")
        run_git(["update-index", "--index-info"], git_dir, index, input="\n".join(entries) + "\n")
        tree = run_git(["write-tree"], git_dir, index).strip()
    if start is not None and tree == run_git(["rev-parse", f"{start}^{{tree}}"], git_dir).strip():
        return None
    parents = ["-p", start] if start else []
    return run_git(["commit-tree", tree, *parents, "-F", "-"], git_dir, identity_env(*author),
                   input=message).strip()


class RecordStore:
    """Pull requests and releases as one JSON file each under ``<repo>.git/stageflow/<kind>/``
    (git ignores unknown directories inside a repository, and they go away with it)."""

    def __init__(self, git_dir: Path, kind: str):
        self.directory = git_dir / "stageflow" / kind

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str, model: type[M]) -> M | None:
        try:
            return model.model_validate_json(self.path(key).read_text())
        except FileNotFoundError:
            return None

    def load_all(self, model: type[M]) -> list[M]:
        if not self.directory.is_dir():
            return []
        return [model.model_validate_json(p.read_text()) for p in sorted(self.directory.glob("*.json"))]

    def save(self, key: str, record: BaseModel) -> None:
        # Write then rename, so a reader never sees half a record and a crash leaves the old one.
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record.model_dump(mode="json"), indent=2) + "\n")
        os.replace(tmp, self.path(key))


class JsonDocument:
    """One JSON object at ``<repo>.git/stageflow/<name>.json`` (repository settings such as
    variables or webhooks). ``private`` documents are created 0600 and stay so: they hold secret
    values, and the mode is set before the first byte is written."""

    def __init__(self, git_dir: Path, name: str, *, private: bool = False):
        self.path = git_dir / "stageflow" / f"{name}.json"
        self.private = private

    def load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def save(self, document: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if self.private else 0o644)
        with os.fdopen(fd, "w") as handle:
            if self.private:
                os.fchmod(handle.fileno(), 0o600)  # a leftover tmp file may have had another mode
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, self.path)
