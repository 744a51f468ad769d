"""Step ``terraform:apply``: apply exactly the approved plan file, then read the outputs.

Only the saved plan is applied: Terraform refuses it (``StalePlan``) if the state moved since it
was made, and nothing unreviewed is ever applied in its place.

Safe to run twice: when the plan was already applied (a retry after the apply went through but
before its result was recorded), Terraform calls the plan stale; the step then plans again, and if
that finds nothing left to do it adopts the result instead of failing. Any other stale plan stays
an error: the change it would make now has not been approved.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from stageflow.adapters.terraform import StalePlan, Terraform
from stageflow.errors import TerminalError

KIND = "terraform:apply"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    plan_file: Path
    variables: dict[str, Any] = Field(default_factory=dict, description="the variables the plan was made with")
    destroy: bool = Field(False, description="the plan was made with -destroy")


class DatabaseOutputs(BaseModel):
    """The root module's outputs (terraform/modules/*/outputs.tf)."""

    model_config = ConfigDict(frozen=True)
    endpoint: str
    port: int
    credentials_secret: str = Field(description="Secrets Manager ARN (or name) of the credentials")
    instance: str


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    applied: bool  # False: the plan had already been applied by an earlier attempt
    outputs: DatabaseOutputs | None  # None after a destroy


def run(config: Config, terraform: Terraform) -> Result:
    terraform.redact(config.variables)  # the plan holds them; a failing provisioner could print them
    try:
        terraform.apply(config.plan_file)
        applied = True
    except StalePlan:
        check = config.plan_file.with_name(config.plan_file.name + ".recheck")
        try:
            if terraform.plan(check, config.variables, destroy=config.destroy).has_changes:
                raise
        finally:
            check.unlink(missing_ok=True)
        applied = False
    return Result(applied=applied, outputs=None if config.destroy else database_outputs(terraform.output()))


def database_outputs(raw: dict[str, Any]) -> DatabaseOutputs:
    missing = [name for name in DatabaseOutputs.model_fields if name not in raw]
    if missing:
        raise TerminalError(f"the root module has no output {', '.join(missing)}: "
                            "was it rendered by terraform:render-root?")
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in raw.items()
              if k in DatabaseOutputs.model_fields}
    return DatabaseOutputs.model_validate(values)
