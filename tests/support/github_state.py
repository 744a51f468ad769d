"""What the GitHub stand-in remembers, and one handler per GitHub operation it answers.

Handlers are keyed by GitHub's ``operationId``: the server finds the operation in GitHub's
OpenAPI description first, so a handler only runs for a request the description allows. Response
bodies start from the schema's required fields (``Description.skeleton``) with the values that
matter laid over them; the server validates each one before sending it.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nacl.public import PrivateKey

from tests.support.git_objects import Commit, ObjectStore
from tests.support.openapi import Description

Answer = tuple[int, Any]  # (status, JSON body or None)
Handler = Callable[["GitHubState", dict[str, str], dict[str, str], Any], Answer]
HANDLERS: dict[str, Handler] = {}
NOW = "2026-01-01T00:00:00Z"


class Refusal(Exception):
    """A handler's 4xx answer: ``status`` and GitHub's ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def handles(*operation_ids: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for operation_id in operation_ids:
            HANDLERS[operation_id] = fn
        return fn
    return register


@dataclass
class RepoState:
    id: int
    owner: str
    name: str
    description: str
    private: bool
    default_branch: str = "main"
    is_template: bool = False
    refs: dict[str, str] = field(default_factory=dict)            # "refs/heads/main" -> commit
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)         # decrypted, for the tests to check
    environments: dict[str, list[str]] = field(default_factory=dict)
    hooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    key: PrivateKey = field(default_factory=PrivateKey.generate)


class GitHubState:
    def __init__(self, description: Description, base_url: str, org: str, user: str):
        self.d = description
        self.base_url = base_url
        self.org, self.user = org, user
        self.users = {org: "Organization", user: "User", "alice": "User", "bob": "User"}
        self.user_ids = {login: i for i, login in enumerate(self.users, start=1)}
        self.repos: dict[tuple[str, str], RepoState] = {}
        self.git = ObjectStore()
        self._ids = itertools.count(100)

    # --- building responses -------------------------------------------------------------------
    def make(self, schema: str, overrides: dict[str, Any]) -> dict[str, Any]:
        return _merge(self.d.skeleton(f"/components/schemas/{schema}"), overrides)

    def user_obj(self, login: str) -> dict[str, Any]:
        return self.make("simple-user", {"login": login, "id": self.user_ids[login], "type": self.users[login],
                                         "url": f"{self.base_url}/users/{login}",
                                         "html_url": f"https://github.invalid/{login}"})

    def repo_url(self, repo: RepoState) -> str:
        return f"{self.base_url}/repos/{repo.owner}/{repo.name}"

    def repo_obj(self, repo: RepoState, schema: str = "full-repository") -> dict[str, Any]:
        return self.make(schema, {
            "id": repo.id, "name": repo.name, "full_name": f"{repo.owner}/{repo.name}",
            "owner": self.user_obj(repo.owner), "private": repo.private, "description": repo.description,
            "url": self.repo_url(repo), "html_url": f"https://github.invalid/{repo.owner}/{repo.name}",
            "clone_url": f"https://github.invalid/{repo.owner}/{repo.name}.git",
            "default_branch": repo.default_branch, "is_template": repo.is_template,
            "visibility": "private" if repo.private else "public"})

    def ref_obj(self, repo: RepoState, ref: str) -> dict[str, Any]:
        return self.make("git-ref", {"ref": ref, "url": f"{self.repo_url(repo)}/git/{ref}",
                                     "object": {"type": "commit", "sha": repo.refs[ref],
                                                "url": f"{self.repo_url(repo)}/git/commits/{repo.refs[ref]}"}})

    def git_commit_obj(self, repo: RepoState, sha: str) -> dict[str, Any]:
        c = self.git.commits[sha]
        url = f"{self.repo_url(repo)}/git/commits"
        return self.make("git-commit", {
            "sha": sha, "url": f"{url}/{sha}", "message": c.message,
            "author": {"name": c.author[0], "email": c.author[1], "date": c.date},
            "committer": {"name": c.committer[0], "email": c.committer[1], "date": c.date},
            "tree": {"sha": c.tree, "url": f"{self.repo_url(repo)}/git/trees/{c.tree}"},
            "parents": [{"sha": p, "url": f"{url}/{p}", "html_url": f"https://github.invalid/commit/{p}"}
                        for p in c.parents]})

    def tree_obj(self, repo: RepoState, sha: str, recursive: bool) -> dict[str, Any]:
        url = self.repo_url(repo)
        entries = [{"path": path, "mode": mode, "type": kind, "sha": obj,
                    "url": f"{url}/git/{'trees' if kind == 'tree' else 'blobs'}/{obj}",
                    **({"size": len(self.git.blobs[obj])} if kind == "blob" else {})}
                   for mode, kind, path, obj in self.git.listing(sha, recursive)]
        return self.make("git-tree", {"sha": sha, "url": f"{url}/git/trees/{sha}", "truncated": False,
                                      "tree": entries})

    def pull_obj(self, repo: RepoState, number: int, schema: str = "pull-request") -> dict[str, Any]:
        pr = repo.pulls[number]
        url = f"{self.repo_url(repo)}/pulls/{number}"
        side = {k: {"ref": pr[k], "sha": repo.refs.get(f"refs/heads/{pr[k]}", pr.get(f"{k}_sha", "0" * 40)),
                    "label": f"{repo.owner}:{pr[k]}", "user": self.user_obj(repo.owner),
                    "repo": self.repo_obj(repo, "repository")} for k in ("head", "base")}
        merged = pr["merged_at"] is not None
        return self.make(schema, {
            "id": pr["id"], "number": number, "url": url, "html_url": f"https://github.invalid/pull/{number}",
            "title": pr["title"], "body": pr["body"], "state": pr["state"], "merged_at": pr["merged_at"],
            "merge_commit_sha": pr["merge_commit_sha"], "user": self.user_obj(self.user), **side,
            **({"merged": merged, "mergeable": None} if schema == "pull-request" else {})})

    # --- lookups --------------------------------------------------------------------------------
    def repo(self, params: dict[str, str]) -> RepoState:
        repo = self.repos.get((params["owner"], params["repo"]))
        if repo is None:
            raise Refusal(404, "Not Found")
        return repo

    def resolve(self, repo: RepoState, ref: str) -> str | None:
        """A commit for a sha, "heads/x", "tags/x", "refs/..." or a bare branch or tag name."""
        if ref in self.git.commits:
            return ref
        for candidate in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if candidate in repo.refs:
                return repo.refs[candidate]
        return None

    def new_repo(self, owner: str, name: str, description: str | None, private: bool) -> RepoState:
        if (owner, name) in self.repos:
            raise Refusal(422, "Repository creation failed.")
        repo = RepoState(id=next(self._ids), owner=owner, name=name, description=description or "", private=private)
        self.repos[(owner, name)] = repo
        return repo

    def commit_flat(self, repo: RepoState, flat: dict[str, tuple[str, str]], message: str,
                    parents: list[str]) -> str:
        tree = self.git.put_tree_from_flat(flat)
        return self.git.put_commit(Commit(tree, parents, message, (self.user, "bot@x"), (self.user, "bot@x")))


def _merge(base: Any, overrides: Any) -> Any:
    if isinstance(base, dict) and isinstance(overrides, dict):
        out = dict(base)
        for key, value in overrides.items():
            out[key] = _merge(base.get(key), value) if isinstance(value, dict) else value
        return out
    return overrides


# ================================ handlers ==========================================================
# users and organisations
@handles("users/get-by-username")
def _get_user(s: GitHubState, p, q, body) -> Answer:
    login = p["username"]
    if login not in s.users:
        raise Refusal(404, "Not Found")
    return 200, s.make("public-user", {"login": login, "id": s.user_ids[login], "type": s.users[login],
                                       "url": f"{s.base_url}/users/{login}"})


@handles("users/get-authenticated")
def _get_me(s: GitHubState, p, q, body) -> Answer:
    return _get_user(s, {"username": s.user}, q, body)


@handles("orgs/get")
def _get_org(s: GitHubState, p, q, body) -> Answer:
    if s.users.get(p["org"]) != "Organization":
        raise Refusal(404, "Not Found")
    return 200, s.make("organization-full", {"login": p["org"], "id": s.user_ids[p["org"]],
                                             "url": f"{s.base_url}/orgs/{p['org']}"})


# repositories
@handles("repos/get")
def _get_repo(s: GitHubState, p, q, body) -> Answer:
    return 200, s.repo_obj(s.repo(p))


@handles("repos/create-in-org", "repos/create-for-authenticated-user")
def _create_repo(s: GitHubState, p, q, body) -> Answer:
    owner = p.get("org", s.user)
    if owner not in s.users:
        raise Refusal(404, "Not Found")
    repo = s.new_repo(owner, body["name"], body.get("description"), bool(body.get("private")))
    repo.is_template = bool(body.get("is_template"))
    if body.get("auto_init"):
        blob = s.git.put_blob(f"# {repo.name}\n".encode())
        repo.refs["refs/heads/main"] = s.commit_flat(repo, {"README.md": ("100644", blob)}, "Initial commit", [])
    return 201, s.repo_obj(repo)


@handles("repos/create-using-template")
def _create_from_template(s: GitHubState, p, q, body) -> Answer:
    template = s.repo({"owner": p["template_owner"], "repo": p["template_repo"]})
    if not template.is_template:
        raise Refusal(422, f"{template.owner}/{template.name} is not a template repository")
    repo = s.new_repo(body.get("owner", s.user), body["name"], body.get("description"), bool(body.get("private")))
    tip = template.refs.get(f"refs/heads/{template.default_branch}")
    if tip is not None:
        flat = s.git.flat(s.git.commits[tip].tree)
        repo.refs["refs/heads/main"] = s.commit_flat(repo, flat, "Initial commit", [])
    return 201, s.repo_obj(repo)


@handles("repos/delete")
def _delete_repo(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    del s.repos[(repo.owner, repo.name)]
    return 204, None


@handles("repos/rename-branch")
def _rename_branch(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    old, new = f"refs/heads/{p['branch']}", f"refs/heads/{body['new_name']}"
    if old not in repo.refs:
        raise Refusal(404, "Branch not found")
    repo.refs[new] = repo.refs.pop(old)
    if repo.default_branch == p["branch"]:
        repo.default_branch = body["new_name"]
    sha = repo.refs[new]
    return 201, s.make("branch-with-protection", {
        "name": body["new_name"], "protected": False, "protection_url": f"{s.repo_url(repo)}/branches/x/protection",
        "commit": s.make("commit", {"sha": sha, "url": f"{s.repo_url(repo)}/commits/{sha}"}),
        "_links": {"html": "https://github.invalid/", "self": f"{s.repo_url(repo)}/branches/{body['new_name']}"}})


@handles("repos/list-branches")
def _list_branches(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    return 200, [s.make("short-branch", {"name": ref.removeprefix("refs/heads/"), "protected": False,
                                         "commit": {"sha": sha, "url": f"{s.repo_url(repo)}/commits/{sha}"}})
                 for ref, sha in sorted(repo.refs.items()) if ref.startswith("refs/heads/")]


@handles("repos/list-tags")
def _list_tags(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    return 200, [s.make("tag", {"name": ref.removeprefix("refs/tags/"),
                                "commit": {"sha": sha, "url": f"{s.repo_url(repo)}/commits/{sha}"}})
                 for ref, sha in sorted(repo.refs.items()) if ref.startswith("refs/tags/")]
