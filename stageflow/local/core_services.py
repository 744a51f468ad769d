"""The embedded platform's core-services catalog: stand-in charts in its own OCI registry.

The real charts (ingress-nginx, cert-manager, ExternalDNS, observability, the Telepresence traffic
manager, Prefect) cannot be downloaded here. ``core-charts/`` holds stand-ins with the same
release names, versions and the CRDs the platform relies on; ``up`` pushes them to the embedded
registry (``oci://<registry>/charts/<name>``) and, when the infrastructure repo's platform.yaml
has no catalog yet, writes examples/core-services.yaml's catalog pointing at them. A catalog a
person wrote is never replaced. ``stageflow platform bootstrap`` then installs it, through the
same ``oci://`` path a user with a private registry takes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from stageflow.settings import PROJECT_ROOT, PlatformSettings

CHARTS = Path(__file__).parent / "core-charts"
EXAMPLE = PROJECT_ROOT / "examples" / "core-services.yaml"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(CHARTS.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(CHARTS)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def push_charts(settings: PlatformSettings) -> dict[str, str]:
    """Push every stand-in chart (once per content: a stamp under the home skips it); chart name -> oci ref."""
    from stageflow.adapters.helm import Helm

    repo = f"oci://{settings.registry}/charts"
    refs = {chart.name: f"{repo}/{chart.name}" for chart in sorted(CHARTS.iterdir()) if (chart / "Chart.yaml").is_file()}
    stamp = settings.home / "registry" / "core-charts.pushed"
    if stamp.exists() and stamp.read_text() == _fingerprint():
        return refs
    helm = Helm(settings.kubeconfig)
    for name in refs:
        refs[name] = helm.push(CHARTS / name, repo, plain_http=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(_fingerprint())
    return refs


def ensure_catalog(settings: PlatformSettings) -> bool:
    """Write the stand-in catalog into platform.yaml unless it has one; True when it was written."""
    from stageflow.adapters.forge.factory import forge_from_settings
    from stageflow.gitops import InfraRepo
    from stageflow.spec import parse_file, platform_path, to_yaml
    from stageflow.spec.models import CoreService

    refs = push_charts(settings)
    repo = forge_from_settings(settings).get_repo(settings.infra_repo)
    infra = InfraRepo(repo.clone_url, settings.workdir / "up" / "infra")
    current = parse_file(platform_path(), (infra.sync() / platform_path()).read_text())
    if current.core_services:
        return False
    example = parse_file("platform.yaml", EXAMPLE.read_text())
    services = [CoreService.model_validate({**s.model_dump(), "chart": refs[s.chart_name], "repository": None})
                for s in example.core_services]
    commit = infra.commit_and_push({platform_path(): to_yaml(current.model_copy(update={"core_services": services}))},
                                   "Core services: the embedded platform's stand-in catalog (oci:// on its registry)",
                                   {"Stageflow-Target": "core-services"})
    return commit is not None
