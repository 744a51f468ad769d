"""``stageflow-platform``: where the platform's parts are, as a Prefect block.

The embedded platform writes the same fields to ``$STAGEFLOW_HOME/platform.json``; a real
installation saves this block once (UI or ``StageflowPlatform(...).save("prod")``) and the flows
load it when ``STAGEFLOW_PLATFORM_BLOCK`` names it. Credentials (forge and registry tokens) are
``SecretStr`` and arrive with the GitHub forge and registry authentication.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field

from stageflow.settings import DatabaseSettings, PlatformSettings, Timeouts


class StageflowPlatform(Block):
    """Where Stageflow finds the infrastructure repo, the registry and the cluster."""

    _block_type_name = "Stageflow Platform"
    _block_type_slug = "stageflow-platform"
    _description = "Forge, infrastructure repository, registry and cluster that Stageflow's flows act on."

    home: Path = Field(description="working folder for checkouts on the worker")
    prefect_api_url: str = Field(description="Prefect API the flows report to")
    registry: str = Field(description="host:port of the OCI registry images are pushed to")
    kubeconfig: Path = Field(description="kubeconfig of the cluster the stages live in")
    forge_root: Path = Field(description="root of the local forge (bare repositories)")
    infra_repo: str = Field("infrastructure", description="name of the infrastructure repository on the forge")
    docker_host: str | None = Field(None, description="Docker engine used to build images (CI stand-in)")
    forge_kind: Literal["local", "github"] = Field("local", description="where the repositories live")
    github_owner: str | None = Field(None, description="GitHub organisation that owns the repositories")
    github_api_url: str = Field("https://api.github.com", description="GitHub REST API root")
    github_credentials_block: str = Field("stageflow-github", description="GitHubCredentials block with the token")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    databases: DatabaseSettings = Field(default_factory=DatabaseSettings,
                                        description="test database chart, Terraform modules and state backend")

    def to_settings(self) -> PlatformSettings:
        return PlatformSettings(home=self.home, prefect_api_url=self.prefect_api_url, registry=self.registry,
                                kubeconfig=self.kubeconfig, forge_root=self.forge_root, infra_repo=self.infra_repo,
                                docker_host=self.docker_host, timeouts=self.timeouts, forge_kind=self.forge_kind,
                                github_owner=self.github_owner, github_api_url=self.github_api_url,
                                github_credentials_block=self.github_credentials_block, databases=self.databases)
