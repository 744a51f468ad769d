"""Step ``db:sync-secret``: copy a prod database's credentials from Secrets Manager into
``<app>-prod`` as the Kubernetes Secret ``<service>-db``.

The secret's keys (``username``, ``password``) are merged with the non-secret connection details
the flow passes (``host``, ``port``, ``database`` from the Terraform outputs); the secret's own
keys win. The Kubernetes Secret is replaced when it differs, so a password rotated in Secrets
Manager reaches the namespace on the next sync, and a sync with nothing new changes nothing.
No value is ever logged or put in an error: only key names are returned.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from stageflow.adapters.kube import Kube
from stageflow.adapters.secrets_manager import SecretsManager
from stageflow.spec import namespace
from stageflow.spec.models import Label, ServiceName

KIND = "db:sync-secret"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    app: Label
    service: ServiceName
    credentials_secret: str = Field(min_length=1,
                                    description="Secrets Manager ARN or name (the credentials_secret output)")
    connection: dict[str, str] = Field(default_factory=dict, description="non-secret keys to add: host, port, database")


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    namespace: str
    name: str
    key_names: list[str]  # not "keys": Prefect treats a model with .keys as a mapping
    changed: bool


def secret_name(service: str) -> str:
    return f"{service}-db"


def run(config: Config, secrets: SecretsManager, kube: Kube) -> Result:
    credentials = secrets.read_secret(config.credentials_secret)
    data = {**{k: SecretStr(v) for k, v in config.connection.items()}, **credentials}
    ns, name = namespace(config.app, "prod"), secret_name(config.service)
    labels = {"stageflow.dev/app": config.app, "stageflow.dev/service": config.service,
              "stageflow.dev/stage": "prod", "app.kubernetes.io/managed-by": "stageflow"}
    kube.ensure_namespace(ns, {k: v for k, v in labels.items() if k != "stageflow.dev/service"})
    changed = kube.ensure_secret(ns, name, data, labels, replace=True)
    return Result(namespace=ns, name=name, key_names=sorted(data), changed=changed)
