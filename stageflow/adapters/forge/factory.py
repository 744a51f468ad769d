"""Build the configured forge from the platform settings (the one place that chooses it)."""
from __future__ import annotations

import os

from pydantic import SecretStr

from stageflow.adapters.forge.base import Forge
from stageflow.errors import TerminalError
from stageflow.settings import PlatformSettings

TOKEN_ENV = "STAGEFLOW_GITHUB_TOKEN"


def forge_from_settings(settings: PlatformSettings, *, github_token: SecretStr | None = None) -> Forge:
    """``LocalForge`` or ``GitHubForge``. The GitHub token is passed in by the caller (flows load
    it from the GitHubCredentials block named by ``settings.github_credentials_block``; the core
    cannot import Prefect), else read from $STAGEFLOW_GITHUB_TOKEN; it is never a setting."""
    if settings.forge_kind == "local":
        from stageflow.adapters.forge.local import LocalForge

        return LocalForge(settings.forge_root)
    if settings.forge_kind == "github":
        from stageflow.adapters.forge.github import GitHubForge

        token = github_token or (SecretStr(os.environ[TOKEN_ENV]) if os.environ.get(TOKEN_ENV) else None)
        if token is None:
            raise TerminalError(f"the GitHub forge needs a token: load the GitHubCredentials block "
                                f"{settings.github_credentials_block!r} and pass its token, or set {TOKEN_ENV}")
        return GitHubForge(token, settings.github_owner or "", base_url=settings.github_api_url)
    raise ValueError(f"unknown forge kind {settings.forge_kind!r}")
