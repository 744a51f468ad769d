"""``stageflow demo``: the main job, end to end, on the embedded platform.

1. ``stageflow up``; 2. a sample app and service are created: a service repository with a
Dockerfile on the forge, and the app and service registered in the infrastructure repo;
3. what the service's CI does: test, build the image with the real Docker engine, push
``<registry>/<app>/<service>:<commit>``; 4. ``build-to-test``; 5. the status table.
Exits 0 only when the service is Ready in ``<app>-test``. Safe to run again.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from stageflow.adapters.forge.factory import forge_from_settings
from stageflow.adapters.images import Images
from stageflow.errors import TerminalError
from stageflow.gitops import InfraRepo
from stageflow.settings import PROJECT_ROOT, PlatformSettings
from stageflow.spec import App, Service, app_path, service_path, to_yaml, validate_name

__all__ = ["run_demo", "register_service", "ci_build_and_push", "SAMPLE_SERVICE"]

SAMPLE_SERVICE = PROJECT_ROOT / "templates" / "demo-service"
Progress = Callable[[str], None]


def register_service(settings: PlatformSettings, app: str, service: str, *, owner: str = "platform-team") -> Service:
    """Create the service repository (from the sample) and declare app and service in the infra repo.
    Adopts whatever already exists."""
    forge = forge_from_settings(settings)
    repo_name = f"{app}-{service}"
    forge.create_repo(repo_name, description=f"{app}/{service}: Stageflow sample service")
    files = {str(p.relative_to(SAMPLE_SERVICE)): p.read_text()
             for p in sorted(SAMPLE_SERVICE.rglob("*")) if p.is_file()}
    forge.commit_files(repo_name, files, "Sample service from Stageflow")
    svc = Service(name=service, app=app, repository=repo_name, image=f"{settings.registry}/{app}/{service}")
    infra = InfraRepo(forge.get_repo(settings.infra_repo).clone_url, settings.workdir / "demo" / "infra")
    checkout = infra.sync()
    files = {}
    if not (checkout / app_path(app)).exists():
        files[app_path(app)] = to_yaml(App(name=app, owners=[owner], approvers=[owner]))
    if not (checkout / service_path(app, service)).exists():
        files[service_path(app, service)] = to_yaml(svc)
    if files:
        infra.commit_and_push(files, f"Register {app}/{service}", {"Stageflow-Target": f"{app}/{service}"})
    return svc


def ci_build_and_push(settings: PlatformSettings, svc: Service, progress: Progress = print) -> tuple[str, str]:
    """What the service's CI does on a push to main: test, build, push ``image:<commit>``.
    Returns (commit, digest)."""
    forge = forge_from_settings(settings)
    repo = forge.get_repo(svc.repository)
    commit = forge.head_commit(svc.repository)
    work = settings.workdir / "ci" / svc.repository
    shutil.rmtree(work, ignore_errors=True)
    _run(["git", "clone", "--quiet", repo.clone_url, str(work)])
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    progress(f"ci: go test + go build ({svc.repository}@{commit[:12]})")
    _run(["go", "test", "./..."], cwd=work, env=env)
    _run(["go", "build", "-trimpath", "-o", "bin/hello", "."], cwd=work, env=env)
    progress(f"ci: docker build + push {svc.image}:{commit}")
    with Images(settings.docker_host) as images:
        digest = images.build_and_push(work, svc.image, commit)
    return commit, digest


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise TerminalError(f"{' '.join(argv[:3])} failed:\n{(done.stdout + done.stderr)[-2000:]}")


def run_demo(home: Path, *, app: str = "demo", service: str = "hello", progress: Progress = print) -> int:
    from stageflow.local.platform import EmbeddedPlatform

    validate_name("app", app, kind="app")
    validate_name("service", service, kind="service")
    settings = EmbeddedPlatform(home).up(progress=progress)
    from stageflow.local.prefect_server import prefect_env

    os.environ.update(prefect_env(settings.home, settings.prefect_api_url))
    os.environ["STAGEFLOW_HOME"] = str(settings.home)
    svc = register_service(settings, app, service)
    progress(f"demo: {app}/{service} registered (repository {svc.repository}, image {svc.image})")
    commit, digest = ci_build_and_push(settings, svc, progress)
    progress(f"ci: pushed {svc.image}:{commit} = {digest}")

    from flows.build_to_test import build_to_test

    summary = build_to_test(app=app, service=service, commit=commit)
    from stageflow.spec import load_spec
    from stageflow.status import collect_status, render_table

    infra = InfraRepo(forge_from_settings(settings).get_repo(settings.infra_repo).clone_url,
                      settings.workdir / "demo" / "infra")
    rows = collect_status(load_spec(infra.sync()), settings.kubeconfig, app=app)
    progress("")
    progress(render_table(rows))
    progress("")
    ready = any(r.service == service and r.stage == "test" and r.ready == r.desired > 0 and not r.drift for r in rows)
    if not ready:
        progress(f"demo FAILED: {app}/{service} is not Ready in {summary.namespace}")
        return 1
    progress(f"demo OK: {app}/{service} is Ready in {summary.namespace}, image pinned by digest {summary.digest}")
    progress(f"  Prefect UI:  {settings.prefect_api_url.removesuffix('/api')}/runs")
    progress(f"  kubectl:     KUBECONFIG={settings.kubeconfig} kubectl -n {summary.namespace} get deploy,pods")
    return 0
