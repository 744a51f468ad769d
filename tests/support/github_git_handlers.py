"""The stand-in's handlers for file contents, commits and the git data API (refs, commits,
trees, blobs), over the ``ObjectStore`` in git_objects.py."""
from __future__ import annotations

import base64

from tests.support.git_objects import Commit
from tests.support.github_state import Answer, GitHubState, Refusal, handles


# contents and commits
@handles("repos/get-content")
def _get_content(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    commit = s.resolve(repo, q.get("ref", repo.default_branch))
    if commit is None:
        raise Refusal(404, f"No commit found for the ref {q.get('ref')}")
    flat = s.git.flat(s.git.commits[commit].tree)
    path = p["path"]
    if path not in flat:
        if not any(f.startswith(path + "/") for f in flat):
            raise Refusal(404, "Not Found")
        return 200, [s.make("content-directory/items", {"type": "file", "name": f.rsplit("/", 1)[-1], "path": f,
                                                         "sha": flat[f][1]})
                     for f in sorted(flat) if f.startswith(path + "/") and "/" not in f[len(path) + 1:]]
    data = s.git.blobs[flat[path][1]]
    url = f"{s.repo_url(repo)}/contents/{path}"
    return 200, s.make("content-file", {
        "type": "file", "encoding": "base64", "size": len(data), "name": path.rsplit("/", 1)[-1], "path": path,
        "content": base64.b64encode(data).decode(), "sha": flat[path][1], "url": url,
        "git_url": f"{s.repo_url(repo)}/git/blobs/{flat[path][1]}", "html_url": None, "download_url": None,
        "_links": {"self": url, "git": None, "html": None}})


@handles("repos/get-commit")
def _get_commit(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    sha = s.resolve(repo, p["ref"])
    if sha is None:
        raise Refusal(422, f"No commit found for SHA: {p['ref']}")
    c = s.git.commits[sha]
    return 200, s.make("commit", {
        "sha": sha, "url": f"{s.repo_url(repo)}/commits/{sha}",
        "commit": {"message": c.message, "tree": {"sha": c.tree, "url": f"{s.repo_url(repo)}/git/trees/{c.tree}"},
                   "url": f"{s.repo_url(repo)}/git/commits/{sha}"},
        "parents": [{"sha": x, "url": f"{s.repo_url(repo)}/commits/{x}"} for x in c.parents]})


# git data
@handles("git/get-ref")
def _get_ref(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    ref = f"refs/{p['ref']}"
    if ref not in repo.refs:
        raise Refusal(404, "Not Found")
    return 200, s.ref_obj(repo, ref)


@handles("git/create-ref")
def _create_ref(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if body["ref"] in repo.refs:
        raise Refusal(422, "Reference already exists")
    if not body["ref"].startswith("refs/") or body["ref"].count("/") < 2:
        raise Refusal(422, "Reference name is not valid")
    if body["sha"] not in s.git.commits:
        raise Refusal(422, "Object does not exist")
    repo.refs[body["ref"]] = body["sha"]
    return 201, s.ref_obj(repo, body["ref"])


@handles("git/update-ref")
def _update_ref(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    ref = f"refs/{p['ref']}"
    if ref not in repo.refs:
        raise Refusal(422, "Reference does not exist")
    if body["sha"] not in s.git.commits:
        raise Refusal(422, "Object does not exist")
    if not body.get("force") and not s.git.is_ancestor(repo.refs[ref], body["sha"]):
        raise Refusal(422, "Update is not a fast forward")
    repo.refs[ref] = body["sha"]
    return 200, s.ref_obj(repo, ref)


@handles("git/delete-ref")
def _delete_ref(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if repo.refs.pop(f"refs/{p['ref']}", None) is None:
        raise Refusal(422, "Reference does not exist")
    return 204, None


@handles("git/get-commit")
def _get_git_commit(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if p["commit_sha"] not in s.git.commits:
        raise Refusal(404, "Not Found")
    return 200, s.git_commit_obj(repo, p["commit_sha"])


@handles("git/create-commit")
def _create_git_commit(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if body["tree"] not in s.git.trees or any(x not in s.git.commits for x in body.get("parents", [])):
        raise Refusal(422, "Tree SHA or parent SHA does not exist")
    author = body.get("author") or {"name": s.user, "email": "bot@x"}
    committer = body.get("committer") or author
    sha = s.git.put_commit(Commit(body["tree"], list(body.get("parents", [])), body["message"],
                                  (author["name"], author["email"]), (committer["name"], committer["email"])))
    return 201, s.git_commit_obj(repo, sha)


@handles("git/get-tree")
def _get_tree(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if p["tree_sha"] not in s.git.trees:
        raise Refusal(404, "Not Found")
    return 200, s.tree_obj(repo, p["tree_sha"], recursive=q.get("recursive") not in (None, "", "0", "false"))


@handles("git/create-tree")
def _create_tree(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    flat = s.git.flat(body["base_tree"]) if body.get("base_tree") else {}
    for entry in body["tree"]:
        if entry.get("type", "blob") != "blob":
            raise Refusal(422, "the stand-in only writes blobs")
        if "content" in entry:
            flat[entry["path"]] = (entry["mode"], s.git.put_blob(entry["content"].encode()))
        elif entry.get("sha") is None:
            if flat.pop(entry["path"], None) is None:
                raise Refusal(422, f"GitRPC::BadObjectState: path {entry['path']} is not in the base tree")
        elif entry["sha"] not in s.git.blobs:
            raise Refusal(422, f"tree.sha {entry['sha']} is not a valid blob")
        else:
            flat[entry["path"]] = (entry["mode"], entry["sha"])
    return 201, s.tree_obj(repo, s.git.put_tree_from_flat(flat), recursive=False)


@handles("git/create-blob")
def _create_blob(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    raw = body["content"]
    data = base64.b64decode(raw) if body.get("encoding") == "base64" else raw.encode()
    sha = s.git.put_blob(data)
    return 201, s.make("short-blob", {"sha": sha, "url": f"{s.repo_url(repo)}/git/blobs/{sha}"})


@handles("git/get-blob")
def _get_blob(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    data = s.git.blobs.get(p["file_sha"])
    if data is None:
        raise Refusal(404, "Not Found")
    return 200, s.make("blob", {"sha": p["file_sha"], "size": len(data), "encoding": "base64",
                                "content": base64.b64encode(data).decode(),
                                "url": f"{s.repo_url(repo)}/git/blobs/{p['file_sha']}"})
