"""The stand-in's handlers for pull requests, releases and repository settings (protection,
Actions variables and secrets, environments, webhooks). Users and repositories are in
github_state.py, git data in github_git_handlers.py; all register into ``HANDLERS`` by GitHub's
operationId."""
from __future__ import annotations

import base64
from typing import Any

from nacl.public import SealedBox

from tests.support.github_state import NOW, Answer, GitHubState, Refusal, RepoState, handles


# pull requests
@handles("pulls/list")
def _list_pulls(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    state = q.get("state", "open")
    head = q.get("head")
    out = []
    for number, pr in sorted(repo.pulls.items()):
        if state != "all" and pr["state"] != state:
            continue
        if head is not None and head != f"{repo.owner}:{pr['head']}":
            continue
        if "base" in q and q["base"] != pr["base"]:
            continue
        out.append(s.pull_obj(repo, number, "pull-request-simple"))
    return 200, out


@handles("pulls/create")
def _create_pull(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    head, base = body["head"].split(":")[-1], body["base"]
    for name in (head, base):
        if f"refs/heads/{name}" not in repo.refs:
            raise Refusal(422, f"Validation Failed: {name} does not exist")
    if any(pr["head"] == head and pr["base"] == base and pr["state"] == "open" for pr in repo.pulls.values()):
        raise Refusal(422, f"Validation Failed: A pull request already exists for {repo.owner}:{head}.")
    if s.git.is_ancestor(repo.refs[f"refs/heads/{head}"], repo.refs[f"refs/heads/{base}"]):
        raise Refusal(422, f"Validation Failed: No commits between {base} and {head}")
    number = max(repo.pulls, default=0) + 1
    repo.pulls[number] = {"id": 1000 + number, "title": body.get("title") or "", "body": body.get("body"),
                          "head": head, "base": base, "state": "open", "merged_at": None, "merge_commit_sha": None}
    return 201, s.pull_obj(repo, number)


def _pull(s: GitHubState, p: dict[str, str]) -> tuple[RepoState, dict[str, Any], int]:
    repo = s.repo(p)
    number = int(p["pull_number"])
    if number not in repo.pulls:
        raise Refusal(404, "Not Found")
    return repo, repo.pulls[number], number


@handles("pulls/get")
def _get_pull(s: GitHubState, p, q, body) -> Answer:
    repo, _, number = _pull(s, p)
    return 200, s.pull_obj(repo, number)


@handles("pulls/update")
def _update_pull(s: GitHubState, p, q, body) -> Answer:
    repo, pr, number = _pull(s, p)
    for key in ("title", "body"):
        if key in body:
            pr[key] = body[key]
    if body.get("state") in ("open", "closed") and pr["merged_at"] is None:
        pr["state"] = body["state"]
    return 200, s.pull_obj(repo, number)


@handles("pulls/merge")
def _merge_pull(s: GitHubState, p, q, body) -> Answer:
    repo, pr, number = _pull(s, p)
    if pr["state"] != "open":
        raise Refusal(405, "Pull Request is not mergeable")
    body = body or {}
    base_ref, head_ref = f"refs/heads/{pr['base']}", f"refs/heads/{pr['head']}"
    ours, theirs = repo.refs[base_ref], repo.refs[head_ref]
    if "sha" in body and body["sha"] != theirs:
        raise Refusal(409, "Head branch was modified. Review and try the merge again.")
    if body.get("merge_method", "merge") != "merge":
        raise Refusal(405, "the stand-in only makes merge commits")
    merged = s.git.merge_trees(ours, theirs)
    if merged is None:
        raise Refusal(405, "Pull Request is not mergeable")
    title = body.get("commit_title") or f"Merge pull request #{number} from {repo.owner}/{pr['head']}"
    message = title + (f"\n\n{body['commit_message']}" if body.get("commit_message") else "")
    sha = s.commit_flat(repo, merged, message, [ours, theirs])
    repo.refs[base_ref] = sha
    pr.update(state="closed", merged_at=NOW, merge_commit_sha=sha, head_sha=theirs, base_sha=ours)
    return 200, s.make("pull-request-merge-result", {"sha": sha, "merged": True,
                                                      "message": "Pull Request successfully merged"})


# releases
def _release_obj(s: GitHubState, repo: RepoState, tag: str) -> dict[str, Any]:
    r = repo.releases[tag]
    url = f"{s.repo_url(repo)}/releases/{r['id']}"
    return s.make("release", {"id": r["id"], "tag_name": tag, "name": r["name"], "body": r["body"],
                              "target_commitish": r["target"], "url": url, "draft": False, "prerelease": False,
                              "author": s.user_obj(s.user), "created_at": NOW, "published_at": NOW})


@handles("repos/get-release-by-tag")
def _get_release(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if p["tag"] not in repo.releases:
        raise Refusal(404, "Not Found")
    return 200, _release_obj(s, repo, p["tag"])


@handles("repos/create-release")
def _create_release(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    tag = body["tag_name"]
    if tag in repo.releases:
        raise Refusal(422, "Validation Failed: tag_name already_exists")
    if f"refs/tags/{tag}" not in repo.refs:
        commit = s.resolve(repo, body.get("target_commitish") or repo.default_branch)
        if commit is None:
            raise Refusal(422, "Validation Failed: target_commitish is invalid")
        repo.refs[f"refs/tags/{tag}"] = commit
    repo.releases[tag] = {"id": 5000 + len(repo.releases), "name": body.get("name"), "body": body.get("body"),
                          "target": body.get("target_commitish") or repo.default_branch}
    return 201, _release_obj(s, repo, tag)


# branch protection (classic)
@handles("repos/update-branch-protection")
def _protect(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if f"refs/heads/{p['branch']}" not in repo.refs:
        raise Refusal(404, "Branch not found")
    repo.protection[p["branch"]] = body
    return 200, s.make("protected-branch", _protection_fields(s, repo, p["branch"]))


@handles("repos/get-branch-protection")
def _get_protection(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if p["branch"] not in repo.protection:
        raise Refusal(404, "Branch not protected")
    return 200, s.make("branch-protection", _protection_fields(s, repo, p["branch"]))


def _protection_fields(s: GitHubState, repo: RepoState, branch: str) -> dict[str, Any]:
    stored = repo.protection[branch]
    url = f"{s.repo_url(repo)}/branches/{branch}/protection"
    out: dict[str, Any] = {"url": url}
    if stored.get("required_status_checks"):
        contexts = stored["required_status_checks"].get("contexts") or [
            c["context"] for c in stored["required_status_checks"].get("checks", [])]
        out["required_status_checks"] = {"url": f"{url}/required_status_checks", "contexts": contexts,
                                         "checks": [{"context": c, "app_id": None} for c in contexts],
                                         "strict": stored["required_status_checks"]["strict"],
                                         "contexts_url": f"{url}/required_status_checks/contexts"}
    if stored.get("required_pull_request_reviews") is not None:
        reviews = stored["required_pull_request_reviews"]
        out["required_pull_request_reviews"] = {
            "url": f"{url}/required_pull_request_reviews",
            "required_approving_review_count": reviews.get("required_approving_review_count", 0),
            "dismiss_stale_reviews": bool(reviews.get("dismiss_stale_reviews")),
            "require_code_owner_reviews": bool(reviews.get("require_code_owner_reviews"))}
    if stored.get("enforce_admins") is not None:
        out["enforce_admins"] = {"url": f"{url}/enforce_admins", "enabled": bool(stored["enforce_admins"])}
    return out


# Actions variables and secrets
def _variable_obj(s: GitHubState, name: str, value: str) -> dict[str, Any]:
    return s.make("actions-variable", {"name": name, "value": value, "created_at": NOW, "updated_at": NOW})


@handles("actions/list-repo-variables")
def _list_variables(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    items = [_variable_obj(s, n, v) for n, v in sorted(repo.variables.items())]
    return 200, {"total_count": len(items), "variables": items}


@handles("actions/get-repo-variable")
def _get_variable(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if p["name"] not in repo.variables:
        raise Refusal(404, "Not Found")
    return 200, _variable_obj(s, p["name"], repo.variables[p["name"]])


@handles("actions/create-repo-variable")
def _create_variable(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if body["name"].upper() in repo.variables:
        raise Refusal(409, "Already exists - Variable already exists")
    repo.variables[body["name"].upper()] = body["value"]
    return 201, {}


@handles("actions/update-repo-variable")
def _update_variable(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if p["name"] not in repo.variables:
        raise Refusal(404, "Not Found")
    repo.variables[p["name"]] = body["value"]
    return 204, None


@handles("actions/get-repo-public-key")
def _public_key(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    key = base64.b64encode(bytes(repo.key.public_key)).decode()
    return 200, s.make("actions-public-key", {"key_id": f"key-{repo.id}", "key": key})


@handles("actions/create-or-update-repo-secret")
def _put_secret(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if body.get("key_id") != f"key-{repo.id}":
        raise Refusal(422, "Bad request - key_id does not match the repository's public key")
    try:
        value = SealedBox(repo.key).decrypt(base64.b64decode(body["encrypted_value"])).decode()
    except Exception:  # noqa: BLE001 - any failure to open the box is GitHub's 422
        raise Refusal(422, "Bad request - encrypted_value cannot be decrypted with the repository key") from None
    created = p["secret_name"] not in repo.secrets
    repo.secrets[p["secret_name"]] = value
    return (201, {}) if created else (204, None)


@handles("actions/list-repo-secrets")
def _list_secrets(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    items = [s.make("actions-secret", {"name": n, "created_at": NOW, "updated_at": NOW}) for n in sorted(repo.secrets)]
    return 200, {"total_count": len(items), "secrets": items}


# environments
def _environment_obj(s: GitHubState, repo: RepoState, name: str) -> dict[str, Any]:
    reviewers = repo.environments[name]
    rules = [{"id": 1, "node_id": "rule", "type": "required_reviewers", "prevent_self_review": False,
              "reviewers": [{"type": "User", "reviewer": s.user_obj(login)} for login in reviewers]}] if reviewers else []
    return s.make("environment", {"id": 7000 + sorted(repo.environments).index(name), "name": name,
                                  "url": f"{s.repo_url(repo)}/environments/{name}", "created_at": NOW,
                                  "updated_at": NOW, "protection_rules": rules})


@handles("repos/get-environment")
def _get_environment(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if p["environment_name"] not in repo.environments:
        raise Refusal(404, "Not Found")
    return 200, _environment_obj(s, repo, p["environment_name"])


@handles("repos/create-or-update-environment")
def _put_environment(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    by_id = {i: login for login, i in s.user_ids.items()}
    logins = []
    for reviewer in (body or {}).get("reviewers") or []:
        if reviewer.get("type") != "User" or reviewer.get("id") not in by_id:
            raise Refusal(422, f"Validation Failed: reviewer {reviewer} is not a user of this stand-in")
        logins.append(by_id[reviewer["id"]])
    repo.environments[p["environment_name"]] = sorted(logins)
    return 200, _environment_obj(s, repo, p["environment_name"])


# webhooks
def _hook_obj(s: GitHubState, repo: RepoState, hook_id: int) -> dict[str, Any]:
    hook = repo.hooks[hook_id]
    config = {k: v for k, v in hook["config"].items() if k != "secret"}
    if "secret" in hook["config"]:
        config["secret"] = "********"  # GitHub never shows it
    url = f"{s.repo_url(repo)}/hooks/{hook_id}"
    return s.make("hook", {"id": hook_id, "name": "web", "type": "Repository", "active": hook["active"],
                           "events": hook["events"], "config": config, "url": url, "test_url": f"{url}/test",
                           "ping_url": f"{url}/pings", "deliveries_url": f"{url}/deliveries",
                           "created_at": NOW, "updated_at": NOW, "last_response": {"code": None, "status": None,
                                                                                   "message": None}})


@handles("repos/list-webhooks")
def _list_hooks(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    return 200, [_hook_obj(s, repo, i) for i in sorted(repo.hooks)]


@handles("repos/create-webhook")
def _create_hook(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    if any(h["config"].get("url") == body["config"]["url"] for h in repo.hooks.values()):
        raise Refusal(422, "Validation Failed: Hook already exists on this repository")
    hook_id = 9000 + len(repo.hooks)
    repo.hooks[hook_id] = {"config": dict(body["config"]), "events": body.get("events", ["push"]),
                           "active": body.get("active", True)}
    return 201, _hook_obj(s, repo, hook_id)


@handles("repos/update-webhook")
def _update_hook(s: GitHubState, p, q, body) -> Answer:
    repo = s.repo(p)
    hook = repo.hooks.get(int(p["hook_id"]))
    if hook is None:
        raise Refusal(404, "Not Found")
    if "config" in body:
        hook["config"] = dict(body["config"])
    for key in ("events", "active"):
        if key in body:
            hook[key] = body[key]
    return 200, _hook_obj(s, repo, int(p["hook_id"]))
