"""Step ``gitops:record-database``: record a service's database at a stage in the infrastructure repo.

Writes ``apps/<app>/databases/<stage>/<service>.yaml`` (where the database is and where its
credentials live, never the credentials) and, when the service still says ``database: none``,
sets its engine in ``apps/<app>/services/<service>.yaml``, in one commit. The whole tree is
validated with the new files before anything is pushed, so a database another service already
uses, or one from the wrong stage, is refused with the rule it breaks. Recording what is already
there makes no commit. ``remove=True`` deletes the database file (deprovisioning).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stageflow.errors import ValidationFailed
from stageflow.gitops import InfraRepo
from stageflow.spec import Database, database_path, load_spec, service_path, to_yaml, validate_tree
from stageflow.steps.write_version import TRAILER_RUN, TRAILER_TARGET

KIND = "gitops:record-database"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    database: Database
    flow_run_id: str | None = None
    remove: bool = False


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    commit: str | None
    head: str


def run(config: Config, infra: InfraRepo) -> Result:
    db = config.database
    checkout = infra.sync()
    spec = load_spec(checkout)
    service = spec.service(db.app, db.service)
    path = database_path(db.app, db.service, db.stage)
    files: dict[str, str | None] = {path: None if config.remove else to_yaml(db)}
    if not config.remove and service.database == "none":
        files[service_path(db.app, db.service)] = to_yaml(service.model_copy(update={"database": db.engine}))
    _check_tree_with(checkout, files)
    trailers = {TRAILER_TARGET: f"{db.app}/{db.service}/{db.stage}"}
    if config.flow_run_id:
        trailers[TRAILER_RUN] = config.flow_run_id
    verb = "remove" if config.remove else "record"
    commit = infra.commit_and_push(files, f"{db.app}/{db.service}: {verb} {db.stage} database {db.instance}", trailers)
    return Result(path=path, commit=commit, head=infra.head())


def _check_tree_with(checkout: Path, files: dict[str, str | None]) -> None:
    """Validate a copy of the checkout with ``files`` applied; raise the problems it would have."""
    with tempfile.TemporaryDirectory(prefix="stageflow-spec-") as scratch:
        copy = Path(scratch) / "infra"
        shutil.copytree(checkout, copy, ignore=shutil.ignore_patterns(".git"))
        for rel, text in files.items():
            target = copy / rel
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
        if problems := validate_tree(copy):
            raise ValidationFailed(problems, summary="the database cannot be recorded")
