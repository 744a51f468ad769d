"""Step ``onboarding:ensure-namespaces``: the app's namespaces ``<app>-test`` and ``<app>-prod``,
labelled as ``helm:deploy`` labels them (so either may come first).

Adopts existing namespaces (missing labels are added). Not undone on failure: an empty
namespace holds nothing of the service, other services of the app may already run in it, and
the re-run adopts it.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from stageflow.adapters.kube import Kube
from stageflow.spec import STAGES, namespace
from stageflow.steps.helm_deploy import namespace_labels

KIND = "onboarding:ensure-namespaces"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    app: str


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    namespaces: list[str]
    created: list[str]


def run(config: Config, kube: Kube) -> Result:
    names, created = [], []
    for stage in STAGES:
        name = namespace(config.app, stage)
        names.append(name)
        if kube.ensure_namespace(name, namespace_labels(config.app, stage)):
            created.append(name)
    return Result(namespaces=names, created=created)


__all__ = ["KIND", "Config", "Result", "run"]
