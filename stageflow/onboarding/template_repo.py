"""Publish a service template from this project to the forge, tagged with its version.

Copier reads templates from git and takes their versions from tags, and ``copier update`` in a
service repository needs the version it was rendered from to still exist. So the template's
plain files in ``templates/service-<name>/`` are committed to the forge repository
``stageflow-template-<name>`` and the commit is tagged with the template's ``VERSION``:

    published = publish_template(forge, "python")   # adopts the tag when it already exists
    published.clone_url, published.version          # what copier renders from

A tag is never moved: when the tag exists but the files in this project differ from it, the
template changed without a new version, and publishing refuses (raise ``VERSION``). The repository
keeps a manifest of its files, so a file removed from the template is removed on the next version.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict
from packaging.version import InvalidVersion, Version

from stageflow.adapters.forge.base import Forge
from stageflow.errors import NotFound, Problem, TerminalError, ValidationFailed
from stageflow.onboarding.request import TEMPLATES

__all__ = ["PublishedTemplate", "publish_template", "template_files", "template_repo_name", "template_version"]

MANIFEST = ".stageflow-template-files"
_SKIP_PARTS = {"__pycache__", ".pytest_cache"}


class PublishedTemplate(BaseModel):
    model_config = ConfigDict(frozen=True)
    template: str
    repository: str
    clone_url: str
    version: str
    commit: str
    created: bool  # this call tagged the version (False: adopted an existing tag)


def template_repo_name(template: str) -> str:
    return f"stageflow-template-{template}"


def template_version(folder: Path) -> str:
    """The version in ``VERSION``: a PEP 440 version, because that is how Copier orders tags."""
    path = Path(folder) / "VERSION"
    if not path.is_file():
        raise NotFound(f"template {folder} has no VERSION file")
    text = path.read_text().strip()
    try:
        Version(text)
    except InvalidVersion as exc:
        raise ValidationFailed(Problem("VERSION", f"must be a PEP 440 version such as 1.2.0 (got {text!r})",
                                       str(path))) from exc
    return text


def template_files(folder: Path) -> dict[str, str]:
    """Every file of the template (relative path -> text), without caches."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file() and not _SKIP_PARTS & set(p.relative_to(folder).parts)}


def publish_template(forge: Forge, template: str = "python", *, folder: Path | None = None) -> PublishedTemplate:
    """Make ``stageflow-template-<template>`` hold the template at a tag named after its version."""
    folder = Path(folder) if folder else _folder_of(template)
    version = template_version(folder)
    files = template_files(folder)
    name = template_repo_name(template)
    info, _ = forge.create_repo(name, description=f"Stageflow service template {template!r} (published from "
                                                  f"the Stageflow project; do not edit here)")
    if version in forge.list_tags(name):
        _check_tag_matches(forge, name, version, files)
        return PublishedTemplate(template=template, repository=name, clone_url=info.clone_url, version=version,
                                 commit=forge.head_commit(name, version), created=False)
    previous = (forge.read_file(name, MANIFEST) or "").splitlines() if forge.head_commit(name) else []
    changes: dict[str, str | None] = {path: None for path in previous if path not in files}
    changes.update(files)
    changes[MANIFEST] = "\n".join(sorted(files)) + "\n"
    forge.commit_files(name, changes, f"Template {template} {version}")
    release, created = forge.create_release(name, version, ref="main", name=f"{template} {version}",
                                            body=f"Service template {template!r}, version {version}.")
    return PublishedTemplate(template=template, repository=name, clone_url=info.clone_url, version=version,
                             commit=release.commit, created=created)


def _folder_of(template: str) -> Path:
    try:
        return TEMPLATES[template]
    except KeyError:
        raise ValidationFailed(Problem("template", f"must be one of {', '.join(sorted(TEMPLATES))}"),
                               summary=f"unknown template {template!r}") from None


def _check_tag_matches(forge: Forge, name: str, version: str, files: dict[str, str]) -> None:
    listed = (forge.read_file(name, MANIFEST, ref=version) or "").splitlines()
    changed = sorted(set(listed) ^ set(files))
    changed += [path for path, text in files.items()
                if path not in changed and forge.read_file(name, path, ref=version) != text]
    if changed:
        raise TerminalError(f"template {name} {version} is already published with other content "
                            f"({', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''} differ): "
                            f"raise its VERSION to publish the change")
