"""The forge the flows use: the core builds it from the settings; for GitHub the token comes from
the GitHubCredentials block (the core cannot import Prefect, so the loading happens here)."""
from __future__ import annotations

from stageflow.adapters.forge.base import Forge
from stageflow.adapters.forge.factory import forge_from_settings
from stageflow.settings import PlatformSettings


def forge_for(settings: PlatformSettings) -> Forge:
    if settings.forge_kind == "github":
        import os

        from stageflow.adapters.forge.factory import TOKEN_ENV

        if not os.environ.get(TOKEN_ENV):
            from blocks.github import GitHubCredentials

            credentials = GitHubCredentials.load(settings.github_credentials_block)
            return forge_from_settings(settings, github_token=credentials.token)
    return forge_from_settings(settings)
