"""The forge the flows use, and how they reach the infra repo's git remote. The core builds the
forge from the settings; for GitHub the token comes from the GitHubCredentials block (the core
cannot import Prefect, so the loading happens here)."""
from __future__ import annotations

import os

from pydantic import SecretStr

from stageflow.adapters.forge.base import Forge
from stageflow.adapters.forge.factory import TOKEN_ENV, forge_from_settings
from stageflow.gitops import InfraRepo
from stageflow.settings import PlatformSettings


def github_token(settings: PlatformSettings) -> SecretStr | None:
    """The GitHub token ($STAGEFLOW_GITHUB_TOKEN, else the credentials block); None for other forges."""
    if settings.forge_kind != "github":
        return None
    if os.environ.get(TOKEN_ENV):
        return SecretStr(os.environ[TOKEN_ENV])
    from blocks.github import GitHubCredentials

    return GitHubCredentials.load(settings.github_credentials_block).token


def forge_for(settings: PlatformSettings) -> Forge:
    return forge_from_settings(settings, github_token=github_token(settings))


def git_auth_header(settings: PlatformSettings) -> SecretStr | None:
    """What InfraRepo sends to an https remote: GitHub takes the token as basic auth."""
    token = github_token(settings)
    return InfraRepo.basic_auth("x-access-token", token) if token is not None else None
