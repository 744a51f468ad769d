"""A Python base image built on this machine, for Dockerfiles whose base cannot be pulled here.

The embedded platform has no route to Docker Hub, so ``FROM python:3.12-slim`` cannot be pulled.
Debian's mirror is reachable, though: ``debootstrap --variant=minbase bookworm`` plus
``python3`` gives a root filesystem, which ``docker import`` turns into an image. The tarball is
cached under ``~/.cache/stageflow/images/`` (override: ``STAGEFLOW_IMAGES_CACHE``), so only the
first build downloads anything; importing it into a fresh engine takes seconds.

    tag = ensure_python_base_image(settings.docker_host)   # "stageflow.local/python:3.11"
    images.build(context, ref, buildargs={"BASE_IMAGE": tag})

Debian bookworm ships Python 3.11, hence the tag. Needs root (debootstrap chroots) and the
``debootstrap`` package; both are checked up front with a message that says what is missing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import requests

from stageflow.adapters.git import exclusive_lock
from stageflow.errors import RetryableError, TerminalError

__all__ = ["PYTHON_BASE_IMAGE", "ensure_python_base_image", "images_cache", "python_rootfs_tarball"]

PYTHON_BASE_IMAGE = "stageflow.local/python:3.11"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# ca-certificates: a service calling HTTPS; nothing else beyond python3 (keep the image small).
PACKAGES = ("python3", "ca-certificates")
# What `docker import` cannot infer from a tarball: the environment a Python image is expected to have.
_IMAGE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PYTHONDONTWRITEBYTECODE=1",
    'CMD ["python3"]',
]
# Raise when the recipe below changes, so a cached tarball from the old recipe is not reused.
RECIPE = "r2"
# Nobody reads these inside a service image, and with the vfs storage driver every build step
# copies the whole filesystem: a third less to copy is a third faster builds.
_PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
          "var/cache/apt/archives", "var/lib/apt/lists")
Progress = Callable[[str], None]


def images_cache() -> Path:
    return Path(os.environ.get("STAGEFLOW_IMAGES_CACHE") or Path.home() / ".cache" / "stageflow" / "images")


def python_rootfs_tarball(progress: Progress = print) -> Path:
    """The cached rootfs tarball (debootstrap minbase + python3), built on first use."""
    cache = images_cache()
    tarball = cache / f"debian-{SUITE}-python3-{RECIPE}.tar"
    cache.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(cache / ".python-rootfs.lock"):  # two test sessions must not bootstrap twice
        if tarball.is_file():
            return tarball
        _require_bootstrap_tools()
        progress(f"base image: debootstrap {SUITE} + {', '.join(PACKAGES)} (first time only, a few minutes)")
        with tempfile.TemporaryDirectory(prefix="stageflow-rootfs-", dir=cache) as scratch:
            root = Path(scratch) / "rootfs"
            _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR],
                 "debootstrap")
            # `python` as well as `python3`: Dockerfiles written for the official images call either.
            (root / "usr" / "bin" / "python").unlink(missing_ok=True)
            os.symlink("python3", root / "usr" / "bin" / "python")
            for junk in _PRUNE:
                shutil.rmtree(root / junk, ignore_errors=True)
                (root / junk).mkdir(parents=True, exist_ok=True)
            partial = tarball.with_suffix(".partial")
            _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], "tar")
            os.replace(partial, tarball)  # a killed build never leaves a truncated tarball behind
        return tarball


def ensure_python_base_image(docker_host: str | None, progress: Progress = print) -> str:
    """Import the cached rootfs into the engine at ``docker_host`` unless the tag is there; the tag."""
    client = _client(docker_host)
    try:
        if _has_image(client, PYTHON_BASE_IMAGE):
            return PYTHON_BASE_IMAGE
        tarball = python_rootfs_tarball(progress)
        progress(f"base image: docker import {tarball.name} as {PYTHON_BASE_IMAGE}")
        repository, tag = PYTHON_BASE_IMAGE.rsplit(":", 1)
        try:
            client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=_IMAGE_CHANGES)
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise RetryableError(f"docker import of {tarball} failed: {exc}") from exc
        if not _has_image(client, PYTHON_BASE_IMAGE):
            raise TerminalError(f"docker import reported success but {PYTHON_BASE_IMAGE} is not in the engine")
        return PYTHON_BASE_IMAGE
    finally:
        client.close()


def _require_bootstrap_tools() -> None:
    if shutil.which("debootstrap") is None:
        raise TerminalError("debootstrap is not installed: `apt-get install debootstrap` (it builds the "
                            "local Python base image from Debian's mirror)")
    if os.geteuid() != 0:
        raise TerminalError("building the local Python base image needs root (debootstrap chroots into the rootfs)")


def _client(docker_host: str | None) -> docker.DockerClient:
    try:
        return docker.DockerClient(base_url=docker_host, timeout=600) if docker_host else docker.from_env(timeout=600)
    except docker.errors.DockerException as exc:
        raise RetryableError(f"cannot reach the Docker engine at {docker_host or 'the default socket'}: {exc}") from exc


def _has_image(client: docker.DockerClient, reference: str) -> bool:
    try:
        client.images.get(reference)
        return True
    except docker.errors.ImageNotFound:
        return False
    except (docker.errors.APIError, requests.RequestException) as exc:
        raise RetryableError(f"cannot look up {reference} in the Docker engine: {exc}") from exc


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        # Mirror hiccups are the usual cause; a re-run starts from a clean scratch folder.
        raise RetryableError(f"{what} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-2000:]}")
