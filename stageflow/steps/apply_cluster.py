"""Step ``terraform:apply-cluster``: apply exactly the approved plan of a cluster root, then read
its outputs (``name``, ``endpoint``, ``certificate_authority``, ``kubeconfig``).

The same rules as ``terraform:apply`` for a database root: only the saved plan is applied, and a
plan Terraform calls stale is adopted only when a fresh plan finds nothing left to do (the apply
went through on an earlier attempt); any other stale plan stays an error, because what it would
change now was never approved. The kubeconfig comes back as a ``SecretStr``.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from stageflow.adapters.terraform import StalePlan, Terraform
from stageflow.errors import TerminalError
from stageflow.steps.apply_database import Config

KIND = "terraform:apply-cluster"

__all__ = ["KIND", "Config", "ClusterOutputs", "Result", "run", "cluster_outputs"]


class ClusterOutputs(BaseModel):
    """The cluster root's outputs (terraform/modules/cluster/outputs.tf)."""

    model_config = ConfigDict(frozen=True)
    name: str
    endpoint: str
    certificate_authority: str  # base64 PEM: public, it is in every kubeconfig of the cluster
    kubeconfig: SecretStr


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    applied: bool  # False: nothing to apply, or an earlier attempt already applied the plan
    outputs: ClusterOutputs


def run(config: Config, terraform: Terraform, *, skip: bool = False) -> Result:
    """``skip``: the plan has no changes; only the outputs are read."""
    if skip:
        return Result(applied=False, outputs=cluster_outputs(terraform.output()))
    terraform.redact(config.variables)
    try:
        terraform.apply(config.plan_file)
        applied = True
    except StalePlan:
        check = config.plan_file.with_name(config.plan_file.name + ".recheck")
        try:
            if terraform.plan(check, config.variables).has_changes:
                raise
        finally:
            check.unlink(missing_ok=True)
        applied = False
    return Result(applied=applied, outputs=cluster_outputs(terraform.output()))


def cluster_outputs(raw: dict[str, Any]) -> ClusterOutputs:
    missing = [name for name in ClusterOutputs.model_fields if name not in raw]
    if missing:
        raise TerminalError(f"the cluster root has no output {', '.join(missing)}: "
                            f"was it rendered by terraform:render-cluster-root?")
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) and k != "kubeconfig" else v
              for k, v in raw.items() if k in ClusterOutputs.model_fields}
    return ClusterOutputs.model_validate(values)
