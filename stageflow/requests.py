"""The inputs a person or a CI job gives a flow, checked before any side effect.

Every problem names the field and the rule (``ValidationFailed``), so a bad call from the UI, the
CLI or GitHub Actions fails at once with a message that says what to fix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from stageflow.errors import Problem, ValidationFailed
from stageflow.spec import STAGES, split_image_reference, validate_name

__all__ = ["BuildToTestRequest", "SyncStageRequest", "check_commit"]

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
