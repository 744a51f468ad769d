"""The inputs a person or a CI job gives a flow, checked before any side effect.

Every problem names the field and the rule (``ValidationFailed``), so a bad call from the UI, the
CLI or GitHub Actions fails at once with a message that says what to fix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from stageflow.errors import Problem, ValidationFailed
from stageflow.spec import STAGES, split_image_reference, validate_name
from stageflow.spec.names import digest_problem, tag_problem

__all__ = ["BuildToTestRequest", "DatabaseRequest", "ReleaseRequest", "SyncStageRequest", "check_commit"]

COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


def _collect(*checks) -> list[Problem]:
    problems: list[Problem] = []
    for check in checks:
        try:
            check()
        except ValidationFailed as exc:
            problems.extend(exc.problems)
    return problems


def check_commit(field: str, value: str) -> None:
    if not isinstance(value, str) or not COMMIT.match(value):
        raise ValidationFailed(Problem(field, f"must be a git commit sha: 7 to 40 lowercase hex characters (got {value!r})"))


@dataclass(frozen=True)
class BuildToTestRequest:
    app: str
    service: str
    commit: str
    image: str | None = None

    def validate(self) -> BuildToTestRequest:
        def image() -> None:
            if self.image is not None:
                split_image_reference(self.image)

        problems = _collect(
            lambda: validate_name("app", self.app, kind="app"),
            lambda: validate_name("service", self.service, kind="service"),
            lambda: check_commit("commit", self.commit),
            image,
        )
        if problems:
            raise ValidationFailed(problems, summary="build-to-test: invalid input")
        return self


@dataclass(frozen=True)
class SyncStageRequest:
    app: str
    stage: str

    def validate(self) -> SyncStageRequest:
        def stage() -> None:
            if self.stage not in STAGES:
                raise ValidationFailed(Problem("stage", f"must be one of {', '.join(STAGES)} (got {self.stage!r})"))

        problems = _collect(lambda: validate_name("app", self.app, kind="app"), stage)
        if problems:
            raise ValidationFailed(problems, summary="sync-stage: invalid input")
        return self


@dataclass(frozen=True)
class ReleaseRequest:
    """release-to-prod and rollback: who asks for what, and how long approvers have."""

    app: str
    service: str
    version: str | None  # a release tag or a digest; None for a rollback (the flow finds the target)
    requested_by: str
    approval_timeout_seconds: int | None = None
    flow: str = "release-to-prod"

    @property
    def digest(self) -> str | None:
        return self.version if self.version and self.version.startswith("sha256:") else None

    def validate(self) -> ReleaseRequest:
        def version() -> None:
            if self.version is None:
                return
            problem = digest_problem(self.version) if self.version.startswith("sha256:") else tag_problem(self.version)
            if problem:
                raise ValidationFailed(Problem("version", f"{problem} (a release tag such as v1.2.0, or sha256:<64 hex>; "
                                                          f"got {self.version!r})"))

        def requested_by() -> None:
            if not isinstance(self.requested_by, str) or not self.requested_by.strip():
                raise ValidationFailed(Problem("requested_by", "must name who asks for the release (a person or "
                                                               "the GitHub actor); they may not approve it alone"))
            if "\n" in self.requested_by or len(self.requested_by) > 200:
                raise ValidationFailed(Problem("requested_by", "must be one line of at most 200 characters"))

        def timeout() -> None:
            if self.approval_timeout_seconds is not None and not (1 <= self.approval_timeout_seconds <= 30 * 86400):
                raise ValidationFailed(Problem("approval_timeout_seconds",
                                               "must be between 1 and 2592000 (30 days); leave it empty for the "
                                               "platform's approval_timeout_hours"))

        problems = _collect(
            lambda: validate_name("app", self.app, kind="app"),
            lambda: validate_name("service", self.service, kind="service"),
            version, requested_by, timeout,
        )
        if problems:
            raise ValidationFailed(problems, summary=f"{self.flow}: invalid input")
        return self


@dataclass(frozen=True)
class DatabaseRequest:
    """provision-database and deprovision-database."""

    app: str
    service: str
    stage: str
    engine: str | None
    requested_by: str = ""
    approval_timeout_seconds: int | None = None
    flow: str = "provision-database"

    def validate(self) -> DatabaseRequest:
        def stage() -> None:
            if self.stage not in STAGES:
                raise ValidationFailed(Problem("stage", f"must be one of {', '.join(STAGES)} (got {self.stage!r})"))

        def engine() -> None:
            if self.engine is not None and self.engine not in ("postgres", "mongodb"):
                raise ValidationFailed(Problem("engine", f"must be postgres or mongodb (got {self.engine!r})"))

        def requester() -> None:
            if self.stage == "prod" and not (self.requested_by or "").strip():
                raise ValidationFailed(Problem("requested_by", "is required for prod: the plan needs an approver, "
                                                               "and the requester may not approve it alone"))
            if "\n" in (self.requested_by or "") or len(self.requested_by or "") > 200:
                raise ValidationFailed(Problem("requested_by", "must be one line of at most 200 characters"))

        def timeout() -> None:
            if self.approval_timeout_seconds is not None and not (1 <= self.approval_timeout_seconds <= 30 * 86400):
                raise ValidationFailed(Problem("approval_timeout_seconds", "must be between 1 and 2592000 (30 days)"))

        problems = _collect(
            lambda: validate_name("app", self.app, kind="app"),
            lambda: validate_name("service", self.service, kind="service"),
            stage, engine, requester, timeout,
        )
        if problems:
            raise ValidationFailed(problems, summary=f"{self.flow}: invalid input")
        return self
