"""Step ``terraform:render-cluster-root``: the Terraform root module of one prod Kubernetes cluster.

The flow commits the text to the infra repo at ``terraform/cluster/<name>/main.tf``, so what a
plan will do is reviewable in git, exactly as for a prod database root (``terraform:render-root``,
whose HCL writer this step shares): every module input written out literally (the network inputs
are IDs, nothing secret), an empty backend block (where the state lives is given at ``terraform
init``), and the module's outputs re-exported for ``terraform output``: ``name``, ``endpoint``,
``certificate_authority`` and ``kubeconfig``, the last one sensitive (Terraform refuses to
re-export a sensitive output without saying so).

Rendering is pure and deterministic: the same config gives the same bytes, so re-committing an
unchanged root is a no-op. The text is ``terraform fmt`` clean.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stageflow.errors import Problem, ValidationFailed
from stageflow.spec.models import Label
from stageflow.steps.render_db_root import Value, _attributes, _module_source

KIND = "terraform:render-cluster-root"

MODULE = "cluster"
OUTPUTS = ("name", "endpoint", "certificate_authority", "kubeconfig")
SENSITIVE_OUTPUTS = frozenset({"kubeconfig"})
# Inputs only the platform's network knows: no default can be derived for them.
REQUIRED_INPUTS = ("subnet_ids",)
# Inputs this step derives; the caller may not override them (the name is the cluster's identity,
# the block's name and the kubeconfig's context; the region must be the provider's).
DERIVED_INPUTS = ("name", "kubernetes_version", "region")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Label = Field(description="the EKS cluster name")
    kubernetes_version: str = Field("1.34", pattern=r"^1\.[0-9]+$", description="minor version, e.g. 1.34")
    region: str = Field(min_length=1, description="the AWS region Terraform works in")
    modules_source: str = Field(description="where the modules are: a directory (terraform/modules, or "
                                            "terraform/standins where no cloud is reachable) or a git:: URL")
    backend: Literal["local", "s3"] = "s3"
    inputs: dict[str, Value] = Field(default_factory=dict, description="the network inputs (subnet_ids, and "
                                     "optionally endpoint_public_access, node_* ...); they override the defaults")


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    text: str
    inputs: dict[str, Value]


def root_path(name: str) -> str:
    return f"terraform/cluster/{name}/main.tf"


def module_inputs(config: Config) -> dict[str, Value]:
    """The derived inputs, then the caller's (tags are merged, the caller's win)."""
    tags: dict[str, str] = {"stageflow.dev/cluster": config.name, "stageflow.dev/stage": "prod"}
    given = dict(config.inputs)
    extra_tags = given.pop("tags", None)
    if isinstance(extra_tags, dict):
        tags |= extra_tags
    derived: dict[str, Value] = {"name": config.name, "kubernetes_version": config.kubernetes_version,
                                 "region": config.region, "tags": tags}
    return {**given, **derived}


def run(config: Config) -> Result:
    """Validate the inputs, then render; raises ValidationFailed naming every missing or refused input."""
    _check(config.inputs)
    inputs = module_inputs(config)
    lines = [
        f"# Rendered by Stageflow ({KIND}): the prod Kubernetes cluster {config.name}.",
        "# Changes go through `stageflow`: a plan, a human approval, then exactly that plan is applied.",
        "",
        "terraform {",
        f'  backend "{config.backend}" {{}}',
        "}",
        "",
        f'module "{MODULE}" {{',
        *_attributes({"source": _module_source(config.modules_source, MODULE)}, indent=2),
        "",
        *_attributes(inputs, indent=2),
        "}",
    ]
    for name in OUTPUTS:
        lines += ["", f'output "{name}" {{']
        if name in SENSITIVE_OUTPUTS:
            lines += [f"  value     = module.{MODULE}.{name}", "  sensitive = true"]
        else:
            lines += [f"  value = module.{MODULE}.{name}"]
        lines += ["}"]
    return Result(path=root_path(config.name), text="\n".join(lines) + "\n", inputs=inputs)


def missing_inputs(inputs: dict[str, Value]) -> list[str]:
    """The required network inputs absent (or empty) in ``inputs``."""
    return [name for name in REQUIRED_INPUTS if inputs.get(name) in (None, "", [], {})]


def _check(inputs: dict[str, Value]) -> None:
    problems = [Problem(f"module_inputs.{name}", "is required: the platform's network gives it (private "
                                                  "subnets in at least two availability zones)")
                for name in missing_inputs(inputs)]
    problems += [Problem(f"module_inputs.{name}", "is set by provision-cluster itself and may not be overridden")
                 for name in DERIVED_INPUTS if name in inputs]
    if problems:
        raise ValidationFailed(problems, summary="provision-cluster: the module inputs are incomplete")
