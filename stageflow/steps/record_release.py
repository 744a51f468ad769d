"""Step ``gitops:record-release``: append a release record to ``apps/<app>/releases/<service>.yaml``.

The record links source commit -> image digest -> infra commit -> Helm revision -> approver and
reason -> verification result, in the infrastructure repo's history where the next release (and
its gate) reads it. Recording the same release twice changes nothing: a record with the same id
and result is already there.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from stageflow.gitops import InfraRepo
from stageflow.spec import ReleaseRecord, load_spec, release_history_path, to_yaml
from stageflow.steps.write_version import TRAILER_DIGEST, TRAILER_RUN, TRAILER_TARGET

KIND = "gitops:record-release"

TRAILER_RESULT = "Stageflow-Release-Result"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    app: str
    service: str
    record: ReleaseRecord


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    commit: str | None
    head: str


def run(config: Config, infra: InfraRepo) -> Result:
    spec = load_spec(infra.sync())
    history = spec.release_history(config.app, config.service)
    path = release_history_path(config.app, config.service)
    record = config.record
    if any(r.id == record.id and r.result == record.result and r.kind == record.kind for r in history.releases):
        return Result(path=path, commit=None, head=infra.head())
    updated = history.model_copy(update={"releases": [*history.releases, record]})
    short = record.image.digest.removeprefix("sha256:")[:12]
    message = f"{config.app}/{config.service}: {record.kind} {record.version} ({short}) {record.result}"
    commit = infra.commit_and_push({path: to_yaml(updated)}, message, {
        TRAILER_TARGET: f"{config.app}/{config.service}/prod", TRAILER_DIGEST: record.image.digest,
        TRAILER_RUN: record.id, TRAILER_RESULT: record.result})
    return Result(path=path, commit=commit, head=infra.head())
