"""Step ``terraform:render-root``: the Terraform root module of one service's prod database.

The flow commits the text to the infra repo at ``terraform/<app>/<service>/main.tf``, so what a
plan will do is reviewable in git: every module input is written out literally (none is secret;
credentials are generated in the cloud and never pass through the root). The root declares an
empty backend block (``local`` or ``s3``): where the state lives is given at ``terraform init``
(``-backend-config``), not committed. It re-exports the module's outputs (``endpoint``, ``port``,
``credentials_secret``, ``instance``) for ``terraform output``.

Rendering is pure and deterministic: the same config gives the same bytes, so re-committing an
unchanged root is a no-op. The text is ``terraform fmt`` clean.
"""
from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stageflow.spec.models import Label, ServiceName

KIND = "terraform:render-root"

MODULES = {"postgres": "rds-postgres", "mongodb": "atlas-mongodb"}
OUTPUTS = ("endpoint", "port", "credentials_secret", "instance")

Scalar = str | int | bool
Value = Scalar | list[Scalar] | dict[str, str]


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    app: Label
    service: ServiceName
    engine: Literal["postgres", "mongodb"]
    instance: Label = Field(description="the RDS instance identifier or Atlas cluster name (Database.instance)")
    modules_source: str = Field(description="where the modules are: a directory (terraform/modules, or "
                                            "terraform/standins where no cloud is reachable) or a git:: URL")
    backend: Literal["local", "s3"] = "s3"
    inputs: dict[str, Value] = Field(default_factory=dict, description="further module inputs, e.g. "
                                     "db_subnet_group_name and vpc_security_group_ids, or project_id for Atlas; "
                                     "they override the derived ones")


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    text: str
    module: str
    inputs: dict[str, Value]


def root_path(app: str, service: str) -> str:
    return f"terraform/{app}/{service}/main.tf"


def module_inputs(config: Config) -> dict[str, Value]:
    """The derived inputs (names follow the app and service), then the caller's."""
    tags: dict[str, str] = {"stageflow.dev/app": config.app, "stageflow.dev/service": config.service,
                            "stageflow.dev/stage": "prod"}
    if config.engine == "postgres":
        # PostgreSQL identifiers cannot contain '-'.
        derived: dict[str, Value] = {"identifier": config.instance,
                                     "database_name": config.service.replace("-", "_"), "tags": tags}
    else:
        derived = {"cluster_name": config.instance, "database_name": config.service, "username": config.service,
                   "secret_name": f"stageflow/{config.app}/{config.service}/mongodb", "tags": tags}
    return {**derived, **config.inputs}


def run(config: Config) -> Result:
    module = MODULES[config.engine]
    inputs = module_inputs(config)
    lines = [
        "# Rendered by Stageflow (terraform:render-root): the prod database of "
        f"{config.app}/{config.service}.",
        "# Changes go through `stageflow`: a plan, a human approval, then exactly that plan is applied.",
        "",
        "terraform {",
        f'  backend "{config.backend}" {{}}',
        "}",
        "",
        'module "database" {',
        *_attributes({"source": _module_source(config.modules_source, module)}, indent=2),
        "",
        *_attributes(inputs, indent=2),
        "}",
    ]
    for name in OUTPUTS:
        lines += ["", f'output "{name}" {{', f"  value = module.database.{name}", "}"]
    return Result(path=root_path(config.app, config.service), text="\n".join(lines) + "\n", module=module,
                  inputs=inputs)


def _module_source(base: str, module: str) -> str:
    # A git:: source keeps its ?ref= query after the subdirectory.
    path, sep, query = base.partition("?")
    return f"{path.rstrip('/')}/{module}{sep}{query}"


def _attributes(values: dict[str, Value], *, indent: int) -> list[str]:
    """``name = value`` lines, '=' aligned the way ``terraform fmt`` aligns a run of single-line
    attributes (a multi-line value ends the run)."""
    pad = " " * indent
    out: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(k) for k, _ in run), default=0)
        out.extend(f"{pad}{k.ljust(width)} = {v}" for k, v in run)
        run.clear()

    for key in sorted(values, key=lambda k: (k != "source", isinstance(values[k], dict), k)):
        value = values[key]
        if isinstance(value, dict):
            flush()
            width = max((len(_hcl(k)) for k in value), default=0)
            out.append(f"{pad}{key} = {{")
            out.extend(f"{pad}  {_hcl(k).ljust(width)} = {_hcl(v)}" for k, v in sorted(value.items()))
            out.append(f"{pad}}}")
        else:
            run.append((key, _hcl(value)))
    flush()
    return out


def _hcl(value: Scalar | list[Scalar]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(v) for v in value) + "]"
    # JSON string syntax is HCL's, except that "${" and "%{" would start a template.
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
