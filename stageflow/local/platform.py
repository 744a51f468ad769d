"""``stageflow up`` / ``stageflow down``: the embedded platform as one object.

Components (each adopted when already running, so ``up`` is safe to repeat):
Prefect server (with the flows registered as deployments and a process worker to run them),
local git forge (bare repos), OCI registry, Docker engine, Kubernetes control plane with kwok
nodes. Everything lives under ``$STAGEFLOW_HOME`` (default ``.stageflow/``).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stageflow.local.deployments import PrefectWorker, register_deployments
from stageflow.local.docker_engine import DockerEngine
from stageflow.local.kube import ControlPlane, KubePorts
from stageflow.local.prefect_server import PrefectServer
from stageflow.local.registry import LocalRegistry
from stageflow.settings import DatabaseSettings, PlatformSettings, Ports

__all__ = ["EmbeddedPlatform"]

Progress = Callable[[str], None]


class EmbeddedPlatform:
    def __init__(self, home: Path, ports: Ports | None = None):
        self.home = home.resolve()
        self.ports = ports or self._saved_ports() or Ports()
        p = self.ports
        self.prefect = PrefectServer(self.home, p.prefect)
        self.worker = PrefectWorker(self.home, self.prefect.api_url)
        self.registry = LocalRegistry(self.home, p.registry)
        self.docker = DockerEngine(self.home)
        self.kube = ControlPlane(self.home, KubePorts(p.etcd_client, p.etcd_peer, p.apiserver))

    def _saved_ports(self) -> Ports | None:
        path = self.home / "platform.json"
        if path.exists():
            return Ports.model_validate(json.loads(path.read_text()).get("ports", {}))
        return None

    def up(self, progress: Progress = print) -> PlatformSettings:
        """Start (or adopt) every component, write platform.json, create the infra repo."""
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        steps: dict[str, Callable[[], object]] = {
            "prefect server": lambda: self._start_prefect(progress),
            "registry": self.registry.start,
            "docker engine": self.docker.ensure,
            "kubernetes": lambda: self.kube.start(progress),
        }
        with ThreadPoolExecutor(len(steps)) as pool:
            futures = {name: pool.submit(fn) for name, fn in steps.items()}
            results = {}
            for name, fut in futures.items():
                results[name] = fut.result()
                progress(f"{name}: ready")
        settings = PlatformSettings(
            home=self.home, ports=self.ports, prefect_api_url=self.prefect.api_url,
            registry=self.registry.address, docker_host=results["docker engine"],
            kubeconfig=self.kube.kubeconfig, forge_root=self.home / "forge",
            databases=self._database_settings(),
        )
        settings.save()
        self._ensure_infra_repo(settings, progress)
        from stageflow.local.core_services import ensure_catalog

        if ensure_catalog(settings):
            progress("core services: stand-in catalog written to platform.yaml (`stageflow platform bootstrap`)")
        progress(f"platform up in {time.monotonic() - started:.0f}s — Prefect UI: {self.prefect.ui_url}")
        return settings

    def _database_settings(self) -> DatabaseSettings:
        """What an earlier ``up`` (or a person) set in platform.json is kept; a new platform keeps
        Terraform state locally, since it has no S3 bucket."""
        saved = self.home / "platform.json"
        if saved.exists():
            try:
                return PlatformSettings.model_validate_json(saved.read_text()).databases
            except ValueError:
                pass  # an unreadable file is rewritten with the defaults below
        return DatabaseSettings(terraform_backend="local")

    def down(self, progress: Progress = print) -> None:
        """Stop everything ``up`` started; the state under home stays for the next ``up``."""
        self.worker.stop()
        self.kube.stop()
        self.prefect.stop()
        self.registry.stop()
        self.docker.stop()
        progress("platform down")

    def _start_prefect(self, progress: Progress) -> None:
        """The server, then the deployments of prefect.yaml (upserted), then the worker that runs them."""
        self.prefect.start()
        started = time.monotonic()
        names = register_deployments(self.home, self.prefect.api_url)
        progress(f"prefect deployments: {', '.join(names)} ({time.monotonic() - started:.1f}s)")
        self.worker.start()

    @staticmethod
    def _ensure_infra_repo(settings: PlatformSettings, progress: Progress) -> None:
        from stageflow.adapters.forge.factory import forge_from_settings
        from stageflow.spec import new_infra_tree

        forge = forge_from_settings(settings)
        _, created = forge.create_repo(settings.infra_repo, description="Stageflow infrastructure repository")
        if forge.head_commit(settings.infra_repo) is None:
            forge.commit_files(settings.infra_repo, new_infra_tree(settings.registry),
                               "Initialise the infrastructure repository")
        if created:
            progress(f"forge: created {settings.infra_repo} repository")
