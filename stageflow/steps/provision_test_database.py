"""Step ``db:provision-test``: a service's own database in ``<app>-test``, installed with Helm.

The credentials come first: the Secret ``<service>-db`` is created with a fresh random password
only when it does not exist yet. An existing one is adopted exactly as it is, never overwritten,
so a re-run cannot lock the service out of its own data. The Secret carries everything a service
needs through ``envFrom`` (host, port, username, password, database and a full connection url).

Then ``helm upgrade --install <service>-db`` of ``charts/database`` points the chart at that
Secret (``auth.existingSecret``): the password never enters Helm's values, so ``helm get values``
and the release history cannot leak it. The release is only upgraded when its values differ, so
a re-run creates no new revision. Last, the step waits until the StatefulSet's pod is Ready.

Example::

    result = run(Config(app="shop", service="orders", engine="postgres", chart=Path("charts/database")),
                 Helm(kubeconfig), Kube(kubeconfig))
    result.host  # 'orders-db.shop-test.svc.cluster.local'
"""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from stageflow.adapters.helm import Helm, chart_version
from stageflow.adapters.kube import Kube
from stageflow.errors import Problem, TerminalError, ValidationFailed
from stageflow.spec import namespace
from stageflow.spec.models import AppName, ServiceName, TestDatabaseChart
from stageflow.steps.helm_deploy import namespace_labels

__all__ = ["KIND", "Config", "Result", "run", "release_name", "ENGINE_PORTS"]

KIND = "db:provision-test"
STAGE = "test"
ENGINE_PORTS = {"postgres": 5432, "mongodb": 27017}
# What the chart reads from the Secret; an adopted Secret without them would start a broken pod.
_CHART_KEYS = ("username", "password", "database")
# Helm refuses longer release names.
_RELEASE_MAX = 53
# Values the step owns: overriding them would point the chart at other credentials or engine.
_RESERVED_VALUES = ("engine", "auth", "app", "stage")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    app: AppName
    service: ServiceName
    engine: Literal["postgres", "mongodb"]
    chart: Path | str
    values: dict[str, Any] = Field(default_factory=dict, description="extra chart values, e.g. persistence.size")
    timeout_seconds: float = Field(180, gt=0)
    # Another chart than charts/database (platform.yaml test_databases): its version and repository,
    # and its values are the platform's own, with ${release}, ${secret} and ${service} filled in.
    custom: TestDatabaseChart | None = None
    plain_http: bool = Field(False, description="the chart's OCI registry speaks plain HTTP (loopback)")


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    release: str
    namespace: str
    secret: str
    host: str
    port: int
    database: str
    secret_created: bool
    helm_revision: int
    helm_changed: bool
    ready: int


def release_name(service: str) -> str:
    """The Helm release, StatefulSet, Service and Secret of a service's test database."""
    return f"{service}-db"


def run(config: Config, helm: Helm, kube: Kube) -> Result:
    _validate(config)
    ns = namespace(config.app, STAGE)
    release = secret = release_name(config.service)
    host, port = f"{release}.{ns}.svc.cluster.local", ENGINE_PORTS[config.engine]
    kube.ensure_namespace(ns, namespace_labels(config.app, STAGE))

    # Adopt before create: a fresh password is drawn every time but only used if nobody made one yet.
    created = kube.ensure_secret(ns, secret, _new_credentials(config, host, port), _labels(config))
    database = _adopted_database_name(kube, ns, secret)

    if config.custom is not None:
        values = _filled(config.custom.values, {"${release}": release, "${secret}": secret,
                                                "${service}": config.service})
        chart, version = config.custom.chart, config.custom.version
    else:
        values, chart, version = _chart_values(config, secret), config.chart, chart_version(Path(config.chart))
    current = helm.status(release, ns)
    if current is not None and not helm.needs_upgrade(release, ns, version, values, current=current):
        revision, changed = current.revision, False
    else:
        extra = {"version": config.custom.version, "repo": config.custom.repository,
                 "plain_http": config.plain_http} if config.custom is not None else {}
        deployed = helm.upgrade_install(release, chart, ns, values, create_namespace=False, **extra)
        revision, changed = deployed.revision, True

    ready, _desired = kube.wait_for_statefulset(ns, release, timeout=config.timeout_seconds)
    return Result(release=release, namespace=ns, secret=secret, host=host, port=port, database=database,
                  secret_created=created, helm_revision=revision, helm_changed=changed, ready=ready)


def _filled(value: Any, placeholders: dict[str, str]) -> Any:
    """``value`` with every placeholder in its strings replaced (never a credential: only names)."""
    if isinstance(value, str):
        for key, text in placeholders.items():
            value = value.replace(key, text)
        return value
    if isinstance(value, dict):
        return {k: _filled(v, placeholders) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, placeholders) for v in value]
    return value


def _validate(config: Config) -> None:
    problems = []
    if len(release_name(config.service)) > _RELEASE_MAX:
        problems.append(Problem("service", f"too long for a database: the Helm release "
                                           f"{release_name(config.service)!r} may have at most {_RELEASE_MAX} characters"))
    problems += [Problem(f"values.{key}", "is set by the step itself and cannot be overridden")
                 for key in _RESERVED_VALUES if key in config.values]
    if problems:
        raise ValidationFailed(problems, f"cannot provision the test database of {config.app}/{config.service}")


def _new_credentials(config: Config, host: str, port: int) -> dict[str, SecretStr]:
    """A new user, password and database; the url joins them the way the engine's drivers expect."""
    # Both engines accept underscores in user and database names; dashes need quoting in SQL.
    user = database = config.service.replace("-", "_")
    password = secrets.token_urlsafe(24)
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{database}"
    # MONGO_INITDB_ROOT_* creates the user in the admin database, so that is where it authenticates.
    url = f"postgresql://{auth}" if config.engine == "postgres" else f"mongodb://{auth}?authSource=admin"
    plain = {"username": user, "password": password, "database": database, "host": host, "port": str(port),
             "url": url}
    return {key: SecretStr(value) for key, value in plain.items()}


def _adopted_database_name(kube: Kube, ns: str, secret: str) -> str:
    """The database name the Secret holds (an adopted one may name another); checks the chart's keys."""
    data = kube.read_secret(ns, secret)
    if data is None:
        # Deleted between our ensure and this read: another run is deprovisioning right now.
        raise TerminalError(f"secret {ns}/{secret} disappeared while the database was being provisioned")
    missing = [key for key in _CHART_KEYS if key not in data]
    if missing:
        # Never repaired here: rewriting someone's Secret could cut a service off from its data.
        raise ValidationFailed(Problem(f"secret {ns}/{secret}", f"exists but lacks the keys {', '.join(missing)}; "
                                                                 "add them or delete the Secret to get a new one"),
                               "cannot adopt the database credentials")
    return data["database"].get_secret_value()


def _chart_values(config: Config, secret: str) -> dict[str, Any]:
    return {**config.values, "engine": config.engine, "app": config.app, "stage": STAGE,
            "auth": {"existingSecret": secret}}


def _labels(config: Config) -> dict[str, str]:
    return {**namespace_labels(config.app, STAGE), "stageflow.dev/service": config.service,
            "app.kubernetes.io/component": "database"}
