"""Step ``onboarding:render-repo``: the service repository, rendered with Copier, as its first commit.

Renders the published template (a git URL and a version tag, see ``template_repo``) into a
scratch folder and commits every file to a new forge repository ``<app>-<service>``. The
rendered ``.copier-answers.yml`` records ``_src_path`` and ``_commit``, which is what
``copier update`` needs later.

Adopts: a repository whose main branch already has the answers file is left as it is (people
may have pushed since); an empty one (a run that died between creating and committing) is
filled. ``created`` says this run created or first filled the repository, which is what the
flow's compensation may delete.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from stageflow.adapters.forge.base import Forge
from stageflow.errors import Problem, TerminalError, ValidationFailed
from stageflow.onboarding.request import ANSWERS_FILE

KIND = "onboarding:render-repo"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    repository: str
    template_url: str = Field(description="git URL of the published template")
    template_version: str = Field(description="the template's tag to render")
    answers: dict[str, object] = Field(description="Copier answers: app, service, port, owners, database, registry")
    description: str = ""


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    repository: str
    clone_url: str
    web_url: str
    commit: str
    created: bool
    files: int


def run(config: Config, forge: Forge) -> Result:
    if urlsplit(config.template_url).username or urlsplit(config.template_url).password:
        # Copier records the URL as _src_path in the repository: a token in it would be published.
        raise ValidationFailed(Problem("template_url", "must not carry credentials; give git a credential "
                                                       "helper instead"), summary="invalid template URL")
    info, repo_created = forge.create_repo(config.repository, description=config.description)
    if forge.head_commit(config.repository) is not None:
        if forge.read_file(config.repository, ANSWERS_FILE) is None:
            raise TerminalError(f"repository {config.repository!r} already has commits but no {ANSWERS_FILE}: "
                                f"it was not rendered by onboarding; refusing to write over it")
        return Result(repository=info.name, clone_url=info.clone_url, web_url=info.web_url,
                      commit=forge.head_commit(config.repository), created=repo_created, files=0)
    files = render(config.template_url, config.template_version, config.answers)
    commit = forge.commit_files(config.repository, files,
                                f"Service {config.answers.get('app')}/{config.answers.get('service')} from template "
                                f"{config.template_version}")
    return Result(repository=info.name, clone_url=info.clone_url, web_url=info.web_url,
                  commit=commit or forge.head_commit(config.repository), created=True, files=len(files))


def render(template_url: str, version: str, answers: dict[str, object]) -> dict[str, str]:
    """Copier's output for ``answers`` at ``version``, as relative path -> text."""
    import copier  # a heavy import, needed by this step only

    with tempfile.TemporaryDirectory(prefix="stageflow-render-") as scratch:
        out = Path(scratch) / "repo"
        try:
            copier.run_copy(template_url, out, data=dict(answers), vcs_ref=version, defaults=True,
                            overwrite=True, quiet=True, unsafe=False)
        except Exception as exc:  # noqa: BLE001 - copier raises many types; none is worth retrying
            raise TerminalError(f"rendering template {template_url} {version} failed: {exc}") from exc
        return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*"))
                if p.is_file() and ".git" not in p.relative_to(out).parts}


def render_to(template_url: str, version: str, answers: dict[str, object], destination: Path) -> Path:
    """Render into ``destination`` (tests and ``update-template`` look at the files themselves)."""
    destination = Path(destination)
    for path, text in render(template_url, version, answers).items():
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return destination


def compensate(result: Result, forge: Forge) -> bool:
    """Undo this step: delete the repository if this run created it. True when deleted."""
    return result.created and forge.delete_repo(result.repository)


__all__ = ["KIND", "Config", "Result", "compensate", "render", "render_to", "run"]
