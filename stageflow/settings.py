"""Where the platform's parts are: one typed settings object every flow and adapter is built from.

The embedded platform writes it to ``$STAGEFLOW_HOME/platform.json`` on ``stageflow up``; in a real
installation the same fields come from the ``stageflow-platform`` Prefect block (blocks/).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stageflow.errors import TerminalError

__all__ = ["PlatformSettings", "Ports", "Timeouts", "stageflow_home", "load_settings", "PROJECT_ROOT"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def stageflow_home() -> Path:
    """``$STAGEFLOW_HOME``, else ``.stageflow/`` in the current directory."""
    return Path(os.environ.get("STAGEFLOW_HOME") or (Path.cwd() / ".stageflow")).resolve()


class Ports(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefect: int = 4200
    registry: int = 5000
    apiserver: int = 6443
    etcd_client: int = 2379
    etcd_peer: int = 2380


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_wait_seconds: float = Field(60, gt=0, description="how long a tag may take to appear in the registry")
    rollout_seconds: float = Field(180, gt=0, description="how long a rollout may take to become Ready")


class DatabaseSettings(BaseModel):
    """Where databases come from: the in-cluster chart for Test, Terraform for Prod."""

    model_config = ConfigDict(extra="forbid")
    test_chart: Path = Field(PROJECT_ROOT / "charts" / "database", description="Helm chart of test databases")
    terraform_modules: str = Field(str(PROJECT_ROOT / "terraform" / "modules"),
                                   description="where the prod roots find rds-postgres / atlas-mongodb (a folder "
                                               "or a git:: source)")
    terraform_backend: Literal["local", "s3"] = Field("s3", description="state backend of the prod roots "
                                                                      "(the embedded platform: local)")
    state_bucket: str | None = Field(None, description="S3 bucket for the s3 backend")
    aws_region: str = "eu-central-1"
    aws_endpoint_url: str | None = Field(None, description="AWS API endpoint override (tests: moto's server)")
    module_inputs: dict[Literal["postgres", "mongodb"], dict[str, Any]] = Field(
        default_factory=dict, description="inputs every prod database root passes to its module, per engine: "
                                          "postgres needs db_subnet_group_name and vpc_security_group_ids, "
                                          "mongodb needs project_id (the Atlas project)")



class PlatformSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    home: Path
    ports: Ports = Ports()
    prefect_api_url: str
    registry: str = Field(description="host:port of the OCI registry images are pushed to")
    docker_host: str | None = None
    kubeconfig: Path
    forge_kind: Literal["local", "github"] = "local"
    forge_root: Path
    # GitHub forge (forge_kind="github"). The token is never a setting: it comes from the
    # GitHubCredentials block named here (blocks/github.py), or STAGEFLOW_GITHUB_TOKEN.
    github_owner: str | None = Field(None, description="organisation (or user) that owns the repositories")
    github_api_url: str = Field("https://api.github.com", description="REST API root (GitHub Enterprise: https://HOST/api/v3)")
    github_credentials_block: str = Field("stageflow-github", description="name of the GitHubCredentials block")
    infra_repo: str = "infrastructure"
    chart: Path = PROJECT_ROOT / "charts" / "service"
    timeouts: Timeouts = Timeouts()
    databases: DatabaseSettings = DatabaseSettings()

    @model_validator(mode="after")
    def _github_needs_an_owner(self) -> PlatformSettings:
        if self.forge_kind == "github" and not self.github_owner:
            raise ValueError("forge_kind 'github' needs github_owner (the organisation that owns the repositories)")
        return self

    @property
    def workdir(self) -> Path:
        """Scratch space for checkouts (the infra repo clone, service repos)."""
        return self.home / "work"

    def save(self) -> Path:
        path = self.home / "platform.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2))
        return path


def load_settings(home: Path | None = None) -> PlatformSettings:
    """The settings ``stageflow up`` wrote; a clear error when the platform was never started."""
    home = home or stageflow_home()
    path = home / "platform.json"
    if not path.exists():
        raise TerminalError(f"no embedded platform at {home}: run `stageflow up` first (or set STAGEFLOW_HOME)")
    return PlatformSettings.model_validate(json.loads(path.read_text()))
