"""``bootstrap-platform``: install or upgrade the platform's core services in ``core-services``
from the catalog in the infrastructure repo's ``platform.yaml`` (``core_services``).

Ingress controller, cert-manager and its ClusterIssuers, ExternalDNS, metrics and logs, the
Telepresence traffic manager (Test stages only) and the Prefect server and worker: each is one
Helm release, pulled from a chart repository or an ``oci://`` registry at the catalog's version.
Safe to run any time: a release whose chart, version and values already match is left alone
(no new Helm revision), and the run's artifact lists what was installed, upgraded or unchanged.
"""
from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.common import run_workspace, settings as load_platform
from stageflow.settings import PlatformSettings
from stageflow.spec import load_spec
from stageflow.spec.models import CORE_SERVICES_NAMESPACE, CoreService
from stageflow.steps import bootstrap_core_services as step
from tasks.platform import bootstrap_core_services_task
from tasks.steps import infra_repo

# Registries Helm may reach over plain HTTP: the embedded platform's own, on loopback only.
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@flow(name="bootstrap-platform", log_prints=True, validate_parameters=True)
def bootstrap_platform(only: list[str] | None = None) -> dict:
    """Install or upgrade every core service the platform spec's catalog lists.

    The catalog is ``core_services`` in the infrastructure repo's ``platform.yaml``; change it there
    (with a pull request) and run this flow again.

    Args:
        only: release names from the catalog to install or upgrade; empty: every core service.

    Returns ``{"installed": [...], "upgraded": [...], "unchanged": [...], "revisions": {release: n}}``.
    """
    cfg = load_platform()
    log = get_run_logger()
    with run_workspace(cfg) as work:
        spec = load_spec(infra_repo(cfg, work / "infra").sync())
    services = list(spec.platform.core_services)
    if only:
        unknown = sorted(set(only) - {s.name for s in services})
        if unknown:
            from stageflow.errors import Problem, ValidationFailed

            raise ValidationFailed(Problem("only", f"not in the catalog: {', '.join(unknown)} (catalog: "
                                                   f"{', '.join(s.name for s in services) or 'empty'})"),
                                   summary="bootstrap-platform: invalid input")
        services = [s for s in services if s.name in only]
    log.info("bootstrapping %d core service(s) in %s: %s", len(services), CORE_SERVICES_NAMESPACE,
             ", ".join(s.name for s in services) or "none")
    config = step.Config(services=services, registry_plain_http=_plain_http(cfg),
                         timeout_seconds=max(60, int(cfg.timeouts.rollout_seconds)))
    result = bootstrap_core_services_task(config, cfg)
    create_markdown_artifact(key="core-services", description=f"{len(services)} core service(s)",
                             markdown=_markdown(services, result))
    return result.model_dump()


def _plain_http(settings: PlatformSettings) -> bool:
    # The embedded registry speaks plain HTTP on loopback; any other registry must use TLS.
    return settings.registry.rsplit(":", 1)[0] in _LOOPBACK


def _markdown(services: list[CoreService], result: step.Result) -> str:
    state = {**{n: "installed" for n in result.installed}, **{n: "upgraded" for n in result.upgraded},
             **{n: "unchanged" for n in result.unchanged}}
    rows = "\n".join(f"| {s.name} | `{s.chart}` | {s.version} | {state.get(s.name, '-')} | "
                     f"{result.revisions.get(s.name, '-')} |" for s in services)
    return (f"# Core services\n\nHelm releases in `{CORE_SERVICES_NAMESPACE}`; a re-run with an unchanged "
            "catalog changes nothing.\n\n| release | chart | version | this run | revision |\n"
            f"|---|---|---|---|---|\n{rows}\n")
