"""``GitHubForge``'s repository settings: classic branch protection, Actions variables and
secrets, environments and webhooks.

- Branch protection is the classic API (``PUT .../branches/{branch}/protection``); PyGithub has
  no rulesets API. The body is written here in full rather than through
  ``Branch.edit_protection``, which sends ``null`` for fields GitHub's description types as
  plain booleans, and needs an extra GET of the branch.
- Secrets are encrypted by PyGithub with a PyNaCl sealed box for the repository's public key;
  GitHub never gives values back, so ``set_secret`` always writes and answers True.
- Variable updates go through the requester, not ``Variable.edit``, which swallows a refusal.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from github import Github
from github.EnvironmentProtectionRuleReviewer import ReviewerParams
from github.Repository import Repository
from pydantic import SecretStr

from stageflow.adapters.forge._github_errors import github_errors
from stageflow.adapters.forge.base import (
    BranchProtection, Environment, Webhook, validate_config_name, validate_environment_name,
    validate_ref_name, validate_webhook,
)
from stageflow.errors import NotFound, Problem, ValidationFailed

__all__ = ["GitHubRepositorySettings"]


class GitHubRepositorySettings:
    """Mixed into ``GitHubForge``, which provides ``_gh``, ``_repo`` and ``_require_branch``."""

    if TYPE_CHECKING:
        _gh: Github

        def _repo(self, name: str) -> Repository: ...

        def _require_branch(self, gh_repo: Repository, branch: str) -> str: ...

    # --- branch protection --------------------------------------------------------------------
    def protect_branch(self, repo: str, branch: str = "main", *, required_checks: list[str],
                       required_reviews: int = 1) -> bool:
        try:
            wanted = BranchProtection(required_checks=required_checks, required_reviews=required_reviews)
        except ValueError as exc:
            raise ValidationFailed(Problem("required_reviews", "must be an integer from 0 to 6"),
                                   summary="invalid branch protection") from exc
        if self.get_branch_protection(repo, branch) == wanted:
            return False
        gh_repo = self._repo(repo)
        self._require_branch(gh_repo, branch)
        body = {
            # strict: the branch must be up to date with base before merging, so checks ran on
            # what will actually land.
            "required_status_checks": {"strict": True, "contexts": wanted.required_checks}
            if wanted.required_checks else None,
            "enforce_admins": True,
            "required_pull_request_reviews": {"required_approving_review_count": wanted.required_reviews,
                                              "dismiss_stale_reviews": True},
            "restrictions": None,
        }
        with github_errors(f"protect {branch} of {gh_repo.full_name}"):
            self._gh.requester.requestJsonAndCheck("PUT", _protection_url(gh_repo, branch), input=body)
        return True

    def get_branch_protection(self, repo: str, branch: str = "main") -> BranchProtection | None:
        gh_repo = self._repo(repo)
        validate_ref_name(branch, field="branch")
        try:
            with github_errors(f"read protection of {branch} in {gh_repo.full_name}"):
                _, data = self._gh.requester.requestJsonAndCheck("GET", _protection_url(gh_repo, branch))
        except NotFound:
            return None  # "Branch not protected" (or no such branch)
        checks = data.get("required_status_checks") or {}
        contexts = checks.get("contexts") or [c["context"] for c in checks.get("checks") or []]
        reviews = data.get("required_pull_request_reviews") or {}
        return BranchProtection(required_checks=contexts,
                                required_reviews=reviews.get("required_approving_review_count", 0))

    # --- Actions variables and secrets --------------------------------------------------------
    def set_variable(self, repo: str, name: str, value: str) -> bool:
        validate_config_name(name, field="variable")
        if not isinstance(value, str):
            raise ValidationFailed(Problem("value", "must be a string"), summary=f"invalid variable {name!r}")
        gh_repo = self._repo(repo)
        url = f"{gh_repo.url}/actions/variables/{quote(name, safe='')}"
        try:
            with github_errors(f"read variable {name} of {gh_repo.full_name}"):
                current = gh_repo.get_variable(name).value
        except NotFound:
            current = None
        if current == value:
            return False
        with github_errors(f"set variable {name} of {gh_repo.full_name}"):
            if current is None:
                gh_repo.create_variable(name, value)
            else:
                self._gh.requester.requestJsonAndCheck("PATCH", url, input={"name": name, "value": value})
        return True

    def get_variables(self, repo: str) -> dict[str, str]:
        gh_repo = self._repo(repo)
        with github_errors(f"list variables of {gh_repo.full_name}"):
            return dict(sorted((v.name, v.value) for v in gh_repo.get_variables()))

    def set_secret(self, repo: str, name: str, value: SecretStr) -> bool:
        validate_config_name(name, field="secret")
        if not isinstance(value, SecretStr):
            raise ValidationFailed(Problem("value", "must be a pydantic SecretStr"), summary=f"invalid secret {name!r}")
        gh_repo = self._repo(repo)
        with github_errors(f"set secret {name} of {gh_repo.full_name}"):
            gh_repo.create_secret(name, value.get_secret_value(), secret_type="actions")
        return True

    def list_secrets(self, repo: str) -> list[str]:
        gh_repo = self._repo(repo)
        with github_errors(f"list secrets of {gh_repo.full_name}"):
            return sorted(secret.name for secret in gh_repo.get_secrets(secret_type="actions"))

    # --- environments -------------------------------------------------------------------------
    def ensure_environment(self, repo: str, name: str, *, reviewers: list[str] | None = None) -> bool:
        validate_environment_name(name)
        wanted = Environment(name=name, reviewers=list(reviewers or []))
        if self.get_environment(repo, name) == wanted:
            return False
        gh_repo = self._repo(repo)
        with github_errors(f"set environment {name} of {gh_repo.full_name}"):
            params = [ReviewerParams("User", self._gh.get_user(login).id) for login in wanted.reviewers]
            gh_repo.create_environment(name, reviewers=params)
        return True

    def get_environment(self, repo: str, name: str) -> Environment | None:
        validate_environment_name(name)
        gh_repo = self._repo(repo)
        try:
            with github_errors(f"read environment {name} of {gh_repo.full_name}"):
                raw = gh_repo.get_environment(name).raw_data
        except NotFound:
            return None
        logins = [r["reviewer"]["login"] for rule in raw.get("protection_rules") or []
                  if rule.get("type") == "required_reviewers"
                  for r in rule.get("reviewers") or [] if r.get("type") == "User"]
        return Environment(name=name, reviewers=logins)

    # --- webhooks -----------------------------------------------------------------------------
    def ensure_webhook(self, repo: str, url: str, *, events: list[str],
                       secret: SecretStr | None = None) -> bool:
        validate_webhook(url, events)
        gh_repo = self._repo(repo)
        wanted = sorted(set(events))
        config: dict[str, Any] = {"url": url, "content_type": "json", "insecure_ssl": "0"}
        if secret is not None:
            config["secret"] = secret.get_secret_value()
        with github_errors(f"set webhook {url} of {gh_repo.full_name}"):
            hook = next((h for h in gh_repo.get_hooks() if h.config.get("url") == url), None)
            if hook is None:
                gh_repo.create_hook("web", config, events=wanted, active=True)
                return True
            if secret is None and sorted(hook.events) == wanted and hook.active:
                return False
            edit: dict[str, Any] = {"events": wanted, "active": True}
            if secret is not None:
                edit["config"] = config  # without a secret given, the config (and its secret) stays
            self._gh.requester.requestJsonAndCheck("PATCH", hook.url, input=edit)
            return True

    def list_webhooks(self, repo: str) -> list[Webhook]:
        gh_repo = self._repo(repo)
        with github_errors(f"list webhooks of {gh_repo.full_name}"):
            return sorted((Webhook(url=h.config.get("url", ""), events=h.events, has_secret="secret" in h.config)
                           for h in gh_repo.get_hooks() if h.name == "web"), key=lambda w: w.url)


def _protection_url(gh_repo: Repository, branch: str) -> str:
    return f"{gh_repo.url}/branches/{quote(branch, safe='')}/protection"
