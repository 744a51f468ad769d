"""Build the configured forge from the platform settings (the one place that chooses it)."""
from __future__ import annotations

from stageflow.adapters.forge.base import Forge
from stageflow.settings import PlatformSettings


def forge_from_settings(settings: PlatformSettings) -> Forge:
    if settings.forge_kind == "local":
        from stageflow.adapters.forge.local import LocalForge

        return LocalForge(settings.forge_root)
    raise ValueError(f"unknown forge kind {settings.forge_kind!r}")
