"""Where each file lives in the infrastructure repository, and the files of a new, empty one.

One file per (app, service, stage) for deployed versions, so that a promotion's pull request
reads "this service, this stage, digest A -> B" and two promotions of different services never
touch the same file.
"""
from __future__ import annotations

from stageflow.errors import Problem, ValidationFailed
from stageflow.spec.files import to_yaml
from stageflow.spec.models import Platform
from stageflow.spec.names import STAGES, label_problem, registry_problem

__all__ = ["APPS_DIR", "APP_FILE", "DATABASES_DIR", "PLATFORM_FILE", "RELEASES_DIR", "SERVICES_DIR", "app_path",
           "database_path", "new_infra_tree", "platform_path", "release_history_path", "service_path", "version_path"]

PLATFORM_FILE = "platform.yaml"
APPS_DIR = "apps"
APP_FILE = "app.yaml"
SERVICES_DIR = "services"
RELEASES_DIR = "releases"
DATABASES_DIR = "databases"


def platform_path() -> str:
    return PLATFORM_FILE


def app_path(app: str) -> str:
    _check_segments(app=app)
    return f"{APPS_DIR}/{app}/{APP_FILE}"


def service_path(app: str, service: str) -> str:
    _check_segments(app=app, service=service)
    return f"{APPS_DIR}/{app}/{SERVICES_DIR}/{service}.yaml"


def version_path(app: str, service: str, stage: str) -> str:
    _check_segments(app=app, service=service)
    _check_stage(stage)
    return f"{APPS_DIR}/{app}/{stage}/{service}.yaml"


def release_history_path(app: str, service: str) -> str:
    _check_segments(app=app, service=service)
    return f"{APPS_DIR}/{app}/{RELEASES_DIR}/{service}.yaml"


def database_path(app: str, service: str, stage: str) -> str:
    _check_segments(app=app, service=service)
    _check_stage(stage)
    return f"{APPS_DIR}/{app}/{DATABASES_DIR}/{stage}/{service}.yaml"


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ValidationFailed(Problem("stage", f"must be one of {', '.join(STAGES)} (found {stage!r})"),
                               summary="invalid stage")


def _check_segments(**segments: str) -> None:
    # Names become path segments: a label can never be '..' or contain '/', so no path escapes.
    problems = [Problem(field, problem) for field, value in segments.items()
                if (problem := label_problem(value)) is not None]
    if problems:
        raise ValidationFailed(problems, summary="invalid name for an infrastructure repo path")


def new_infra_tree(registry: str) -> dict[str, str]:
    """The files of an empty infrastructure repository whose images live in ``registry``."""
    if (problem := registry_problem(registry)) is not None:
        raise ValidationFailed(Problem("registry", problem), summary=f"invalid registry {registry!r}")
    return {PLATFORM_FILE: to_yaml(Platform(registry=registry)), "README.md": _README}


_README = """\
# Infrastructure repository

This repository is the single source of truth for what runs on the platform. Stageflow reads it,
and every change to it (a new app, a new service, a promotion) arrives as a pull request.

```
platform.yaml                          kind: Platform         registry, chart, approval timeout
apps/<app>/app.yaml                    kind: App              owners and approvers of the app
apps/<app>/services/<service>.yaml     kind: Service          source repository, image, port, database
apps/<app>/<stage>/<service>.yaml      kind: DeployedVersion  what runs at a stage (test, prod)
apps/<app>/releases/<service>.yaml     kind: ReleaseHistory   every prod release: who approved, what ran
apps/<app>/databases/<stage>/<service>.yaml  kind: Database  the service's own database at a stage
```

Every file starts with `apiVersion: stageflow.dev/v1` and its `kind`. There is one file per
service and stage, so a promotion's diff reads "this service, this stage, digest A -> B".

Rules:
- App and service names are DNS-1123 labels: lowercase letters, digits and '-', starting and
  ending with a letter or digit. An app runs in the namespaces `<app>-test` and `<app>-prod`, so
  app names have at most 58 characters. `core-services`, `default` and `kube-*` are reserved.
- The `name`, `app`, `service` and `stage` fields must match the folder and file names.
- Images are pinned by digest (`sha256:...`); each service has its own image repository.
- Values that look like numbers (versions, commit ids) must be quoted.
"""
