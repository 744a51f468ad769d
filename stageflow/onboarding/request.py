"""What a person asks onboarding for, checked before anything is created.

Two checks, both before any side effect:
- ``OnboardRequest.validate()``: the input alone (names as the spec judges them, port, owners,
  template, database), every broken rule listed at once;
- ``check_onboarding_target()``: the platform's current state. A service the infra repo already
  declares is refused, unless it is exactly what this request would register from a repository
  onboarding rendered: that is a re-run of a finished onboarding, which converges instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import yaml

from stageflow.errors import Problem, ValidationFailed
from stageflow.spec import PlatformSpec, Service, service_path, validate_name
from stageflow.spec.names import REPOSITORY_MAX
from stageflow.settings import PROJECT_ROOT

__all__ = ["ANSWERS_FILE", "DATABASES", "TEMPLATES", "OnboardRequest", "check_onboarding_target",
           "repository_name", "service_spec", "validate_update_target"]

Database = Literal["none", "postgres", "mongodb"]
DATABASES: tuple[str, ...] = ("none", "postgres", "mongodb")
# Template name -> its folder in this project; each becomes the forge repo stageflow-template-<name>.
TEMPLATES = {"python": PROJECT_ROOT / "templates" / "service-python"}
ANSWERS_FILE = ".copier-answers.yml"
# Forge logins and team slugs (GitHub: letters, digits, '-'; teams as org/team).
_OWNER_RE = re.compile(r"@?[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9._-]{1,100})?", re.ASCII)


def repository_name(app: str, service: str) -> str:
    return f"{app}-{service}"


@dataclass(frozen=True)
class OnboardRequest:
    app: str
    service: str
    owners: list[str] = field(default_factory=list)
    template: str = "python"
    port: int = 8080
    database: str = "none"

    def validate(self) -> OnboardRequest:
        problems: list[Problem] = []
        for name, kind in ((self.app, "app"), (self.service, "service")):
            try:
                validate_name(kind, name, kind=kind)  # type: ignore[arg-type]
            except ValidationFailed as exc:
                problems.extend(exc.problems)
        if isinstance(self.app, str) and isinstance(self.service, str) and \
                len(repository_name(self.app, self.service)) > REPOSITORY_MAX:
            problems.append(Problem("service", f"the repository name <app>-<service> must have at most "
                                               f"{REPOSITORY_MAX} characters"))
        if self.template not in TEMPLATES:
            problems.append(Problem("template", f"must be one of {', '.join(sorted(TEMPLATES))} "
                                                f"(got {self.template!r})"))
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            problems.append(Problem("port", f"must be an integer from 1 to 65535 (got {self.port!r})"))
        if self.database not in DATABASES:
            problems.append(Problem("database", f"must be one of {', '.join(DATABASES)} (got {self.database!r})"))
        if not self.owners:
            problems.append(Problem("owners", "name at least one owner (a forge login or org/team): they "
                                              "review the service's changes and approve the app's releases"))
        problems += [Problem("owners", f"{owner!r} is not a forge login or org/team name")
                     for owner in self.owners if not isinstance(owner, str) or not _OWNER_RE.fullmatch(owner)]
        if problems:
            raise ValidationFailed(problems, summary="onboard-service: invalid input")
        return self

    @property
    def repository(self) -> str:
        return repository_name(self.app, self.service)

    @property
    def logins(self) -> list[str]:
        """Owners without a leading '@', as the spec and the forge take them."""
        return [owner.removeprefix("@") for owner in self.owners]


def service_spec(request: OnboardRequest, registry: str) -> Service:
    """The Service file onboarding registers for ``request``."""
    return Service(name=request.service, app=request.app, repository=request.repository,
                   image=f"{registry}/{request.app}/{request.service}", port=request.port,
                   database=request.database)  # type: ignore[arg-type]


def check_onboarding_target(request: OnboardRequest, spec: PlatformSpec, registry: str,
                            answers_text: str | None) -> bool:
    """Refuse a service that exists and is not this onboarding's; True when it is (a re-run).

    ``answers_text`` is the ``.copier-answers.yml`` on the service repository's main branch, or
    None when the repository or the file does not exist.
    """
    existing = spec.services.get((request.app, request.service))
    ours = _answers_match(request, answers_text)
    if existing is None:
        if answers_text is not None and not ours:
            raise ValidationFailed(Problem("service", f"repository {request.repository!r} already exists and was "
                                                      f"rendered for another service or with other answers"),
                                   summary="onboard-service: cannot onboard")
        return False
    wanted = service_spec(request, registry)
    if existing == wanted and ours:
        return True
    if _answers_match(request, answers_text, keys=("app", "service")):
        raise ValidationFailed(Problem("service", f"{request.app}/{request.service} was already onboarded with "
                                                  f"other settings (port {existing.port}, database "
                                                  f"{existing.database}); change them in its files instead"),
                               summary="onboard-service: cannot onboard")
    raise ValidationFailed(Problem("service", f"{request.app}/{request.service} already exists "
                                              f"({service_path(request.app, request.service)}); onboarding "
                                              f"creates new services only"),
                           summary="onboard-service: cannot onboard")


def _answers_match(request: OnboardRequest, answers_text: str | None,
                   keys: tuple[str, ...] = ("app", "service", "port", "database")) -> bool:
    if answers_text is None:
        return False
    try:
        answers = yaml.safe_load(answers_text) or {}
    except yaml.YAMLError:
        return False
    return isinstance(answers, dict) and all(answers.get(key) == getattr(request, key) for key in keys)


def validate_update_target(app: str | None, service: str | None) -> None:
    """``update-service-template``'s input: optional app, optional service (which needs the app)."""
    problems: list[Problem] = []
    for value, kind in ((app, "app"), (service, "service")):
        if value is not None:
            try:
                validate_name(kind, value, kind=kind)  # type: ignore[arg-type]
            except ValidationFailed as exc:
                problems += exc.problems
    if service is not None and app is None:
        problems.append(Problem("service", "needs app"))
    if problems:
        raise ValidationFailed(problems, summary="update-service-template: invalid input")
