"""What the benchmarks deploy: tiny images, copies of them under other names, and apps declared
in the infrastructure repository. None of this is timed.

Images are built ``FROM scratch`` with one file of distinct content, so every round gets a new
digest without a base image (the build never needs the internet) and in well under a second.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from stageflow.adapters.forge.factory import forge_from_settings
from stageflow.adapters.images import Images
from stageflow.adapters.registry import MANIFEST_MEDIA_TYPES, parse
from stageflow.errors import NotFound, RetryableError, TerminalError
from stageflow.gitops import InfraRepo
from stageflow.settings import PlatformSettings
from stageflow.spec import App, DeployedVersion, Service, app_path, service_path, to_yaml, version_path

__all__ = ["PushedImage", "build_images", "copy_image", "declare_app", "infra_checkout"]

_DOCKERFILE = "FROM scratch\nCOPY payload.txt /\n"
_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


@dataclass(frozen=True)
class PushedImage:
    repository: str  # registry/path, no tag
    tag: str  # 40 hex characters, so it doubles as the "commit" CI built it from
    digest: str


def build_images(settings: PlatformSettings, repository: str, contents: list[str]) -> list[PushedImage]:
    """Build and push one image per content string to ``repository``; the tag is the content's sha1."""
    pushed = []
    with Images(settings.docker_host) as images:
        for content in contents:
            tag = hashlib.sha1(content.encode()).hexdigest()
            context = settings.workdir / "bench" / "images" / tag
            context.mkdir(parents=True, exist_ok=True)
            (context / "Dockerfile").write_text(_DOCKERFILE)
            (context / "payload.txt").write_text(content)
            pushed.append(PushedImage(repository, tag, images.build_and_push(context, repository, tag)))
    return pushed


def copy_image(image: PushedImage, target_repository: str) -> PushedImage:
    """Put ``image`` into another repository of the same registry under the same tag.

    Blobs are mounted across repositories (no data moves), then the manifest is stored again,
    byte for byte, so the copy has the same digest: a cheap way to give N services N
    repositories of one image.
    """
    address, source = parse(image.repository)
    target_address, target = parse(target_repository)
    if target_address != address:
        raise TerminalError(f"copy_image copies within one registry, not {address} -> {target_address}")
    what = f"copying {image.repository}:{image.tag} to {target_repository}"
    try:
        with httpx.Client(base_url=f"http://{address}", timeout=30.0) as http:
            digest = _copy_manifest(http, source, image.tag, target, image.tag)
    except httpx.TransportError as exc:
        raise RetryableError(f"{what}: registry {address} unavailable ({type(exc).__name__})") from exc
    except httpx.HTTPStatusError as exc:
        error = NotFound if exc.response.status_code == 404 else TerminalError
        raise error(f"{what}: HTTP {exc.response.status_code} for {exc.request.method} {exc.request.url.path}") \
            from exc
    if digest != image.digest:
        raise TerminalError(f"{what}: the copy has digest {digest}, expected {image.digest}")
    return PushedImage(target_repository, image.tag, digest)


def _copy_manifest(http: httpx.Client, source: str, reference: str, target: str, put_as: str) -> str:
    found = http.get(f"/v2/{source}/manifests/{reference}", headers={"Accept": _ACCEPT})
    found.raise_for_status()
    manifest = found.json()
    if "manifests" in manifest:  # an index: its platform manifests must exist in the target first
        for child in manifest["manifests"]:
            _copy_manifest(http, source, child["digest"], target, child["digest"])
    else:
        for blob in [manifest["config"], *manifest.get("layers", [])]:
            _mount_blob(http, source, target, blob["digest"])
    stored = http.put(f"/v2/{target}/manifests/{put_as}", content=found.content,
                      headers={"Content-Type": found.headers["Content-Type"]})
    stored.raise_for_status()
    return stored.headers["Docker-Content-Digest"]


def _mount_blob(http: httpx.Client, source: str, target: str, digest: str) -> None:
    mounted = http.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    mounted.raise_for_status()
    if mounted.status_code == 201:
        return
    # 202: the registry declined to mount and opened an upload instead; send the bytes.
    blob = http.get(f"/v2/{source}/blobs/{digest}")
    blob.raise_for_status()
    upload = httpx.URL(mounted.headers["Location"])
    http.put(upload.copy_merge_params({"digest": digest}), content=blob.content).raise_for_status()


def infra_checkout(settings: PlatformSettings, name: str) -> InfraRepo:
    """A working checkout of the infrastructure repository of its own, under the platform's workdir."""
    repo = forge_from_settings(settings).get_repo(settings.infra_repo)
    if repo is None:
        raise NotFound(f"infrastructure repository {settings.infra_repo!r} does not exist on the forge")
    return InfraRepo(repo.clone_url, settings.workdir / "bench" / name)


def declare_app(infra: InfraRepo, app: str, services: list[Service],
                versions: Sequence[DeployedVersion] = ()) -> str | None:
    """Declare ``app``, its services and (optionally) their deployed versions in ONE infra commit."""
    files: dict[str, str | None] = {app_path(app): to_yaml(App(name=app, owners=["bench"], approvers=["bench"]))}
    files.update({service_path(app, s.name): to_yaml(s) for s in services})
    files.update({version_path(v.app, v.service, v.stage): to_yaml(v) for v in versions})
    return infra.commit_and_push(files, f"bench: declare {app} ({len(services)} services)",
                                 {"Stageflow-Target": app})
