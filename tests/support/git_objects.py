"""A tiny in-memory git object store for the GitHub stand-in: blobs, trees and commits with the
object names real git gives them (SHA-1), so a client that computes blob names itself (to skip
unchanged files) is checked against the real rule."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

Flat = dict[str, tuple[str, str]]  # path -> (mode, blob sha)


@dataclass
class Commit:
    tree: str
    parents: list[str]
    message: str
    author: tuple[str, str]
    committer: tuple[str, str]
    date: str = "2026-01-01T00:00:00Z"


@dataclass
class ObjectStore:
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)  # (mode, type, name, sha)
    commits: dict[str, Commit] = field(default_factory=dict)

    # --- writing --------------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        sha = _hash(b"blob", data)
        self.blobs[sha] = data
        return sha

    def put_tree_from_flat(self, flat: Flat) -> str:
        """Nested git trees for a flat path -> blob map; returns the root tree's name."""
        children: dict[str, Flat] = {}
        entries: list[tuple[str, str, str, str]] = []
        for path, (mode, sha) in flat.items():
            head, _, rest = path.partition("/")
            if rest:
                children.setdefault(head, {})[rest] = (mode, sha)
            else:
                entries.append((mode, "blob", head, sha))
        for name, sub in children.items():
            entries.append(("40000", "tree", name, self.put_tree_from_flat(sub)))
        # git orders tree entries by name, a directory sorting as if its name ended in "/".
        entries.sort(key=lambda e: e[2] + ("/" if e[1] == "tree" else ""))
        raw = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha) for mode, _, name, sha in entries)
        sha = _hash(b"tree", raw)
        self.trees[sha] = entries
        return sha

    def put_commit(self, commit: Commit) -> str:
        lines = [f"tree {commit.tree}", *(f"parent {p}" for p in commit.parents),
                 f"author {commit.author[0]} <{commit.author[1]}> 1767225600 +0000",
                 f"committer {commit.committer[0]} <{commit.committer[1]}> 1767225600 +0000", "", commit.message]
        sha = _hash(b"commit", "\n".join(lines).encode())
        self.commits[sha] = commit
        return sha

    # --- reading --------------------------------------------------------------------------------
    def flat(self, tree: str, prefix: str = "") -> Flat:
        out: Flat = {}
        for mode, kind, name, sha in self.trees[tree]:
            if kind == "tree":
                out.update(self.flat(sha, f"{prefix}{name}/"))
            else:
                out[f"{prefix}{name}"] = (mode, sha)
        return out

    def listing(self, tree: str, recursive: bool, prefix: str = "") -> list[tuple[str, str, str, str]]:
        """(mode, type, path, sha) as the trees API lists them, sub-trees included."""
        out = []
        for mode, kind, name, sha in self.trees[tree]:
            out.append((mode, kind, f"{prefix}{name}", sha))
            if kind == "tree" and recursive:
                out.extend(self.listing(sha, True, f"{prefix}{name}/"))
        return out

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return ancestor in self.ancestors(descendant)

    def ancestors(self, commit: str) -> list[str]:
        """``commit`` and all its ancestors, nearest first (breadth first)."""
        seen, queue = [], [commit]
        while queue:
            sha = queue.pop(0)
            if sha in seen:
                continue
            seen.append(sha)
            queue.extend(self.commits[sha].parents)
        return seen

    def merge_trees(self, ours: str, theirs: str) -> Flat | None:
        """The file-level three-way merge of two commits, or None on a conflict."""
        base_commit = next((c for c in self.ancestors(theirs) if self.is_ancestor(c, ours)), None)
        base = self.flat(self.commits[base_commit].tree) if base_commit else {}
        mine, other = self.flat(self.commits[ours].tree), self.flat(self.commits[theirs].tree)
        merged: Flat = {}
        for path in base.keys() | mine.keys() | other.keys():
            b, m, o = base.get(path), mine.get(path), other.get(path)
            if m == o or o == b:
                result = m
            elif m == b:
                result = o
            else:
                return None
            if result is not None:
                merged[path] = result
        return merged


def _hash(kind: bytes, data: bytes) -> str:
    return hashlib.sha1(kind + b" %d\0" % len(data) + data).hexdigest()
