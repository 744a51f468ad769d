"""Step ``onboarding:configure-repo``: what the service repository's CI and reviews need, set
through the Forge interface.

- main is protected: the CI job ``test`` must pass and one review must approve;
- Actions variables: REGISTRY, PREFECT_API_URL, STAGEFLOW_APP, STAGEFLOW_SERVICE (what
  ``.github/workflows/ci.yaml`` reads);
- the secret PREFECT_API_KEY, only when one is given (never read back, never printed).

Every setting is made what it should be and reported by name when it changed, so a re-run
reports nothing. Nothing to undo on failure: the settings go with the repository.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from stageflow.adapters.forge.base import Forge

KIND = "onboarding:configure-repo"

# The job name in the template's ci.yaml whose check must pass before merging.
CI_CHECK = "test"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    repository: str
    branch: str = "main"
    required_checks: list[str] = Field(default_factory=lambda: [CI_CHECK])
    required_reviews: int = Field(1, ge=0, le=6)
    variables: dict[str, str]
    secrets: dict[str, SecretStr] = Field(default_factory=dict, description="values are write-only")


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    repository: str
    changed: list[str] = Field(description="names of the settings this run changed (never values)")


def run(config: Config, forge: Forge) -> Result:
    changed: list[str] = []
    if forge.protect_branch(config.repository, config.branch, required_checks=config.required_checks,
                            required_reviews=config.required_reviews):
        changed.append(f"branch protection ({config.branch})")
    for name, value in sorted(config.variables.items()):
        if forge.set_variable(config.repository, name, value):
            changed.append(f"variable {name}")
    # A forge that cannot compare secrets (GitHub) answers True on every write; skip secrets that
    # exist already so that a re-run changes nothing. Rotating one is a separate, deliberate act.
    existing = set(forge.list_secrets(config.repository))
    for name, secret in sorted(config.secrets.items()):
        if name not in existing and forge.set_secret(config.repository, name, secret):
            changed.append(f"secret {name}")
    return Result(repository=config.repository, changed=changed)


__all__ = ["CI_CHECK", "KIND", "Config", "Result", "run"]
