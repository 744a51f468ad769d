"""``LocalForge``'s repository settings: branch protection, Actions variables and secrets,
environments and webhooks, as JSON documents inside the bare repository (``<name>.git/stageflow/``).

Nothing here enforces the settings (the local forge runs no CI and sends no webhooks); they are
kept so that onboarding can be written and tested once against the ``Forge`` interface. Secret
values (Actions secrets, webhook secrets) live in one 0600 document, are never returned and never
appear in a message.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from stageflow.adapters.forge._bare import JsonDocument, branch_commit
from stageflow.adapters.forge.base import (
    BranchProtection, Environment, Webhook, validate_config_name, validate_environment_name,
    validate_ref_name, validate_webhook,
)
from stageflow.errors import NotFound, Problem, ValidationFailed

__all__ = ["LocalRepositorySettings"]


class LocalRepositorySettings:
    """Mixed into ``LocalForge``, which provides ``_existing`` (repo name -> git dir, or NotFound)
    and ``_lock`` (the per-repository lock every change is made under)."""

    if TYPE_CHECKING:
        def _existing(self, name: str) -> Path: ...

        def _lock(self, name: str) -> AbstractContextManager[None]: ...

    # --- branch protection --------------------------------------------------------------------
    def protect_branch(self, repo: str, branch: str = "main", *, required_checks: list[str],
                       required_reviews: int = 1) -> bool:
        git_dir = self._existing(repo)
        validate_ref_name(branch, field="branch")
        wanted = _protection(required_checks, required_reviews)
        with self._lock(repo):
            if branch_commit(git_dir, branch) is None:
                raise NotFound(f"cannot protect branch {branch!r} of {repo!r}: it does not exist")
            return _put(JsonDocument(git_dir, "protection"), branch, wanted.model_dump())

    def get_branch_protection(self, repo: str, branch: str = "main") -> BranchProtection | None:
        git_dir = self._existing(repo)
        validate_ref_name(branch, field="branch")
        stored = JsonDocument(git_dir, "protection").load().get(branch)
        return BranchProtection.model_validate(stored) if stored is not None else None

    # --- Actions variables and secrets --------------------------------------------------------
    def set_variable(self, repo: str, name: str, value: str) -> bool:
        git_dir = self._existing(repo)
        validate_config_name(name, field="variable")
        if not isinstance(value, str):
            raise ValidationFailed(Problem("value", "must be a string"), summary=f"invalid variable {name!r}")
        with self._lock(repo):
            return _put(JsonDocument(git_dir, "variables"), name, value)

    def get_variables(self, repo: str) -> dict[str, str]:
        return dict(sorted(JsonDocument(self._existing(repo), "variables").load().items()))

    def set_secret(self, repo: str, name: str, value: SecretStr) -> bool:
        git_dir = self._existing(repo)
        validate_config_name(name, field="secret")
        if not isinstance(value, SecretStr):
            # A plain str here is a caller bug that would sooner or later print the value.
            raise ValidationFailed(Problem("value", "must be a pydantic SecretStr"), summary=f"invalid secret {name!r}")
        with self._lock(repo):
            return _put(_secrets(git_dir), f"actions/{name}", value.get_secret_value())

    def list_secrets(self, repo: str) -> list[str]:
        stored = _secrets(self._existing(repo)).load()
        return sorted(key.removeprefix("actions/") for key in stored if key.startswith("actions/"))

    # --- environments -------------------------------------------------------------------------
    def ensure_environment(self, repo: str, name: str, *, reviewers: list[str] | None = None) -> bool:
        git_dir = self._existing(repo)
        validate_environment_name(name)
        wanted = Environment(name=name, reviewers=list(reviewers or []))
        with self._lock(repo):
            return _put(JsonDocument(git_dir, "environments"), name, wanted.model_dump())

    def get_environment(self, repo: str, name: str) -> Environment | None:
        validate_environment_name(name)
        stored = JsonDocument(self._existing(repo), "environments").load().get(name)
        return Environment.model_validate(stored) if stored is not None else None

    # --- webhooks -----------------------------------------------------------------------------
    def ensure_webhook(self, repo: str, url: str, *, events: list[str],
                       secret: SecretStr | None = None) -> bool:
        git_dir = self._existing(repo)
        validate_webhook(url, events)
        with self._lock(repo):
            hooks = JsonDocument(git_dir, "webhooks")
            current = hooks.load().get(url, {})
            has_secret = secret is not None or bool(current.get("has_secret"))
            wanted = Webhook(url=url, events=events, has_secret=has_secret).model_dump()
            changed = _put(hooks, url, wanted)
            if secret is not None:
                changed = _put(_secrets(git_dir), f"webhooks/{url}", secret.get_secret_value()) or changed
            return changed

    def list_webhooks(self, repo: str) -> list[Webhook]:
        stored = JsonDocument(self._existing(repo), "webhooks").load()
        return [Webhook.model_validate(hook) for _, hook in sorted(stored.items())]


def _protection(required_checks: list[str], required_reviews: int) -> BranchProtection:
    try:
        return BranchProtection(required_checks=required_checks, required_reviews=required_reviews)
    except ValueError as exc:  # pydantic's ValidationError; its text holds only our own inputs
        raise ValidationFailed(Problem("required_reviews", "must be an integer from 0 to 6"),
                               summary="invalid branch protection") from exc


def _secrets(git_dir: Path) -> JsonDocument:
    return JsonDocument(git_dir, "secrets", private=True)


def _put(document: JsonDocument, key: str, value: object) -> bool:
    """Set ``key`` in ``document``; write (and answer True) only when the value differs."""
    content = document.load()
    if content.get(key) == value:
        return False
    content[key] = value
    document.save(content)
    return True
