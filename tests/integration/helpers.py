"""Shared helpers of the integration tests: sample services, their CI, and the platform's state."""
from __future__ import annotations

from stageflow.adapters.forge.factory import forge_from_settings
from stageflow.adapters.helm import Helm
from stageflow.gitops import InfraRepo
from stageflow.local.demo import SAMPLE_SERVICE, ci_build_and_push, register_service
from stageflow.settings import PlatformSettings
from stageflow.spec import Service


def new_service(settings: PlatformSettings, app: str, service: str) -> Service:
    """A service repository from the sample, registered in the infrastructure repo."""
    return register_service(settings, app, service)


def push_change(settings: PlatformSettings, svc: Service, greeting: str) -> tuple[str, str]:
    """Commit a code change to the service and run its CI: returns (commit, digest) of a new image."""
    main = (SAMPLE_SERVICE / "main.go").read_text().replace("hello from", greeting)
    forge_from_settings(settings).commit_files(svc.repository, {"main.go": main}, f"Say {greeting}")
    return ci_build_and_push(settings, svc, progress=lambda _: None)


def infra(settings: PlatformSettings, name: str = "check") -> InfraRepo:
    """A checkout of the infrastructure repo, synced to its latest commit."""
    repo = forge_from_settings(settings).get_repo(settings.infra_repo)
    checkout = InfraRepo(repo.clone_url, settings.workdir / "tests" / name)
    checkout.sync()
    return checkout


def infra_head(settings: PlatformSettings) -> str:
    return forge_from_settings(settings).head_commit(settings.infra_repo)


def helm_revision(settings: PlatformSettings, app: str, service: str, stage: str = "test") -> int | None:
    release = Helm(settings.kubeconfig).status(service, f"{app}-{stage}")
    return release.revision if release else None
