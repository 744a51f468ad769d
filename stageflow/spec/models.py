"""The four kinds of file in the infrastructure repository, as frozen pydantic models.

Models hold only what is in the file body: ``apiVersion`` and ``kind`` are checked and written by
:mod:`stageflow.spec.files`, and each model names its kind in ``KIND``. Validation is strict
(no coercion), because YAML silently turns ``1.10`` into a float and ``0123456`` into an int;
a person is told to quote the value instead of the platform guessing what was meant.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator,
                      model_serializer, model_validator)
from pydantic_core import PydanticCustomError

from stageflow.spec import names
from stageflow.spec.names import Stage

__all__ = ["API_VERSION", "CORE_SERVICES_NAMESPACE", "App", "ChartRef", "CoreService", "Database", "DeployedVersion",
           "ImageRef", "Platform", "ReleaseHistory", "ReleaseRecord", "Service", "SourceRef", "SpecModel", "TestDatabaseChart"]

API_VERSION = "stageflow.dev/v1"


def _rule(check: Callable[[str], str | None]) -> AfterValidator:
    """Turn a ``names.*_problem`` function into a validator whose error text is the rule itself."""
    def validate(value: str) -> str:
        if (problem := check(value)) is not None:
            # A custom error type keeps pydantic's "Value error, " prefix out of the message.
            raise PydanticCustomError("stageflow_rule", "{rule}", {"rule": problem})
        return value
    return AfterValidator(validate)


def _not_blank(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


Label = Annotated[str, _rule(names.label_problem)]
AppName = Annotated[str, _rule(names.app_name_problem)]
ServiceName = Annotated[str, _rule(names.service_name_problem)]
RepositoryName = Annotated[str, _rule(lambda v: names.label_problem(v, max_length=names.REPOSITORY_MAX))]
ImageRepository = Annotated[str, _rule(names.image_repository_problem)]
NonBlank = Annotated[str, _rule(_not_blank)]


class SpecModel(BaseModel):
    """Common base: unknown keys are errors, values are never coerced, instances never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    KIND: ClassVar[str]


class ChartRef(SpecModel):
    """The Helm chart a service is deployed with."""

    name: Label = "service"
    version: Annotated[str, _rule(names.chart_version_problem)] = "0.1.0"


class ImageRef(SpecModel):
    """An image pinned by digest; the tag is kept only to tell people what was built."""

    repository: ImageRepository
    digest: Annotated[str, _rule(names.digest_problem)]
    tag: Annotated[str, _rule(names.tag_problem)] | None = None

    @property
    def reference(self) -> str:
        """What to pull: ``repository@digest`` (the tag is deliberately not part of it)."""
        return f"{self.repository}@{self.digest}"


class SourceRef(SpecModel):
    """Where a deployed image was built from."""

    commit: Annotated[str, _rule(names.commit_problem)]
    repository: NonBlank | None = None


CORE_SERVICES_NAMESPACE = "core-services"


def _catalog_version_problem(value: str) -> str | None:
    # Upstream charts differ on a leading "v" (cert-manager publishes "v1.16.2"); Helm accepts both.
    problem = names.chart_version_problem(value.removeprefix("v"))
    return None if problem is None else "must be a chart version such as '4.11.3' or 'v1.16.2' (quoted in YAML)"


class CoreService(SpecModel):
    """One entry of the platform's core-services catalog: a Helm release in ``core-services``.

    ``chart`` is either an OCI reference (``oci://registry.example.com/charts/ingress-nginx``, the
    way to install from a private registry) or, with ``repository``, the chart's name in that
    classic Helm repository (``ingress-nginx``, or ``ingress-nginx/ingress-nginx`` as ``helm repo
    add`` users write it: only the part after the slash is looked up).
    """

    name: Label = Field(description="the Helm release name")
    chart: NonBlank
    repository: NonBlank | None = Field(None, description="https URL of a classic Helm chart repository")
    version: Annotated[str, _rule(_catalog_version_problem)]
    values: dict[str, Any] = {}

    @property
    def namespace(self) -> str:
        # Fixed: the platform's own services live together, apart from every app's stages.
        return CORE_SERVICES_NAMESPACE

    @property
    def chart_name(self) -> str:
        """The chart's own name (what ``helm history`` prints before the version)."""
        return self.chart.rstrip("/").rsplit("/", 1)[-1]

    @model_validator(mode="after")
    def _chart_source(self) -> CoreService:
        oci = self.chart.startswith("oci://")
        if oci and self.repository is not None:
            raise PydanticCustomError("stageflow_rule", "{rule}", {
                "rule": "repository must be left out when chart is an oci:// reference"})
        if not oci and self.repository is None:
            raise PydanticCustomError("stageflow_rule", "{rule}", {
                "rule": f"chart {self.chart!r} needs a repository URL (or use an oci://host/path/chart reference)"})
        if not oci and not self.repository.startswith(("https://", "http://")):
            raise PydanticCustomError("stageflow_rule", "{rule}", {
                "rule": f"repository {self.repository!r} must be an http(s) URL"})
        if names.label_problem(self.chart_name) is not None:
            raise PydanticCustomError("stageflow_rule", "{rule}", {
                "rule": f"chart {self.chart!r} must end in a chart name (lowercase letters, digits and '-')"})
        return self


class TestDatabaseChart(SpecModel):
    """Another chart for test databases than Stageflow's own (``charts/database``), e.g. Bitnami's
    or CloudNativePG's. ``values`` may use ``${release}``, ``${secret}`` and ``${service}``: the
    chart must read the credentials from the Secret ``${secret}`` (keys username, password,
    database) and name its StatefulSet and Service ``${release}``."""

    chart: NonBlank = Field(description="oci://host/path/chart, or a chart name with repository")
    version: NonBlank
    repository: NonBlank | None = None
    values: dict[str, Any] = {}


class Platform(SpecModel):
    """``platform.yaml``: settings shared by every app."""

    KIND: ClassVar[str] = "Platform"
    registry: Annotated[str, _rule(names.registry_problem)]
    chart: ChartRef = ChartRef()
    approval_timeout_hours: Annotated[int, Field(gt=0)] = 24
    core_services: list[CoreService] = Field([], description="Helm releases bootstrap-platform keeps in "
                                                             "core-services, in install order")
    test_databases: dict[Literal["postgres", "mongodb"], TestDatabaseChart] = Field(
        {}, description="per engine, another chart for test databases than charts/database")

    @field_validator("core_services")
    @classmethod
    def _unique_core_services(cls, services: list[CoreService]) -> list[CoreService]:
        # A field validator (not a model validator) so the problem is reported at `core_services`.
        names_ = [s.name for s in services]
        twice = sorted({name for name in names_ if names_.count(name) > 1})
        if twice:
            raise PydanticCustomError("stageflow_rule", "{rule}", {
                "rule": f"release names must be unique (listed more than once: {', '.join(twice)})"})
        return services

    @model_serializer(mode="wrap")
    def _omit_empty_catalog(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A platform without a catalog is written exactly as before the catalog existed.
        data = handler(self)
        for optional in ("core_services", "test_databases"):
            if not data.get(optional):
                data.pop(optional, None)
        return data


class App(SpecModel):
    """``apps/<app>/app.yaml``: a group of services owned by one team."""

    KIND: ClassVar[str] = "App"
    name: AppName
    owners: Annotated[list[NonBlank], Field(min_length=1)]
    approvers: list[NonBlank]
    description: str | None = None


class Service(SpecModel):
    """``apps/<app>/services/<service>.yaml``: one deployable service and where its code lives."""

    KIND: ClassVar[str] = "Service"
    name: ServiceName
    app: Label
    repository: RepositoryName
    image: ImageRepository
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    database: Literal["none", "postgres", "mongodb"] = "none"
    replicas: Annotated[int, Field(ge=0)] = 1


class DeployedVersion(SpecModel):
    """``apps/<app>/<stage>/<service>.yaml``: what runs for one service at one stage."""

    KIND: ClassVar[str] = "DeployedVersion"
    app: Label
    service: ServiceName
    stage: Stage
    image: ImageRef
    chart: ChartRef
    values: dict[str, Any] = {}
    source: SourceRef | None = None


ReleaseResult = Literal["succeeded", "failed", "rejected"]


class ReleaseRecord(SpecModel):
    """One production release (or rollback) and everything that links it together:
    source commit -> image digest -> infra commit -> Helm revision -> approval -> verification."""

    id: NonBlank = Field(description="the flow run that made the release")
    kind: Literal["release", "rollback"] = "release"
    version: NonBlank = Field(description="the release tag (or the digest when released by digest)")
    image: ImageRef
    source: SourceRef | None = None
    requested_by: NonBlank
    approver: NonBlank | None = None
    reason: NonBlank | None = None
    pull_request: NonBlank | None = Field(None, description="the infra pull request that changed prod")
    infra_commit: Annotated[str, _rule(names.commit_problem)] | None = None
    helm_revision: Annotated[int, Field(ge=1)] | None = None
    result: ReleaseResult
    verification: NonBlank = Field(description="what was checked, or why it failed")
    rolled_back_to: NonBlank | None = Field(None, description="what prod runs again after an automatic rollback")
    recorded_at: NonBlank


class ReleaseHistory(SpecModel):
    """``apps/<app>/releases/<service>.yaml``: the service's production releases, oldest first.

    Written by the release flows only; a failed release stays here so that automation never
    deploys that digest again by itself."""

    KIND: ClassVar[str] = "ReleaseHistory"
    app: Label
    service: ServiceName
    releases: list[ReleaseRecord] = []

    def failed(self, digest: str) -> ReleaseRecord | None:
        """The newest failed release of ``digest``, if it ever failed in prod."""
        return next((r for r in reversed(self.releases) if r.image.digest == digest and r.result == "failed"), None)

    def succeeded(self) -> list[ReleaseRecord]:
        return [r for r in self.releases if r.result == "succeeded"]


class Database(SpecModel):
    """``apps/<app>/databases/<stage>/<service>.yaml``: the one database of a service at one stage.

    Test databases run in ``<app>-test`` (installed with Helm); prod databases are managed cloud
    databases (provisioned with Terraform). The file says where the database is and where its
    credentials live, never the credentials themselves."""

    KIND: ClassVar[str] = "Database"
    app: Label
    service: ServiceName
    stage: Stage
    engine: Literal["postgres", "mongodb"]
    provider: Literal["helm", "terraform"]
    instance: Label = Field(description="the database's identity: the Helm release in <app>-test, or the cloud "
                                        "instance / cluster name; unique on the platform")
    host: NonBlank
    port: Annotated[int, Field(ge=1, le=65535)]
    credentials: NonBlank = Field(description="where the credentials live: kubernetes:<namespace>/<secret> or "
                                              "aws-secretsmanager:<arn> or atlas:<project>/<user>")
