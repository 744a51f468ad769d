"""Step ``release:gate``: only a digest that passed the Test stage may be promoted to Prod.

Evidence, both required:
1. the infrastructure repo's history has the commit that set ``<app>/<service>/test`` to the
   digest (trailers ``Stageflow-Target`` and ``Stageflow-Image-Digest``, written by build-to-test);
2. a Test release record says the rollout of that digest was verified (every replica Ready at
   exactly that digest), as build-to-test records it after verifying.

A digest that already failed in Prod (its release record says so) is refused too, unless a person
explicitly allows it: automation never redeploys a failed version by itself.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stageflow.errors import TerminalError
from stageflow.gitops import InfraRepo
from stageflow.spec import load_spec, namespace
from stageflow.steps.write_version import TRAILER_DIGEST, TRAILER_SOURCE, TRAILER_TARGET

KIND = "release:gate"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    app: str
    service: str
    digest: str = Field(pattern=r"^sha256:[a-f0-9]{64}$")
    allow_failed: bool = Field(False, description="a person decided to release a digest that failed in prod before")


class TestVerification(BaseModel):
    """One verified Test rollout, as build-to-test recorded it."""

    model_config = ConfigDict(frozen=True)
    digest: str
    flow_run: str
    verified: bool
    recorded: str | None = None


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    test_commit: str = Field(description="the infra commit that set the test stage to the digest")
    test_commit_date: str
    source_commit: str | None = Field(description="the source commit the image was built from")
    verified_by: str = Field(description="the flow run that verified the Test rollout")


class NotVerifiedInTest(TerminalError):
    """The digest never passed the Test stage."""


class FailedBefore(TerminalError):
    """The digest already failed in Prod."""


def run(config: Config, infra: InfraRepo, verifications: list[TestVerification]) -> Result:
    checkout = infra.sync()
    spec = load_spec(checkout)
    spec.service(config.app, config.service)  # NotFound names what exists
    test_ns = namespace(config.app, "test")
    commit = infra.find_commit_with_trailers(**{
        TRAILER_TARGET: f"{config.app}/{config.service}/test", TRAILER_DIGEST: config.digest})
    if commit is None:
        raise NotVerifiedInTest(
            f"{config.app}/{config.service} {config.digest} was never deployed to {test_ns}: the infrastructure repo "
            f"has no commit setting the test stage to it. Deploy it with build-to-test first; only what passed "
            f"Test can be released.")
    verified = [v for v in verifications if v.digest == config.digest and v.verified]
    if not verified:
        raise NotVerifiedInTest(
            f"{config.app}/{config.service} {config.digest} was deployed to {test_ns} (infra commit "
            f"{commit.sha[:12]}) but its rollout was never verified there. Re-run build-to-test for it and "
            f"release once it is Ready.")
    failed = spec.release_history(config.app, config.service).failed(config.digest)
    if failed is not None and not config.allow_failed:
        raise FailedBefore(
            f"{config.app}/{config.service} {config.digest} failed in prod in release {failed.id} "
            f"({failed.verification}); it is not released again automatically. Release a fixed version, or, "
            f"if a person decided to try it again, pass allow_failed=true (--allow-failed).")
    trailers = {key.lower(): value for key, value in commit.trailers.items()}
    return Result(test_commit=commit.sha, test_commit_date=commit.date.isoformat(),
                  source_commit=trailers.get(TRAILER_SOURCE.lower()), verified_by=verified[-1].flow_run)
