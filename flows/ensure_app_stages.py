"""``ensure-app-stages``: every app's ``<app>-test`` and ``<app>-prod`` set up as hardened stages
(Pod Security, quota and default limits, network policies, developer and deployer RBAC).

Safe to run any time: what already matches is left alone (no new resourceVersion), drift in the
fields Stageflow owns is put back, and the run's artifact lists what changed per namespace.
"""
from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.common import run_workspace, settings as load_platform
from stageflow.spec import load_spec
from stageflow.steps import ensure_app_stages as step
from tasks.stages import ensure_app_stages_task
from tasks.steps import infra_repo


@flow(name="ensure-app-stages", log_prints=True, validate_parameters=True)
def ensure_app_stages(app: str | None = None) -> dict:
    """Set up (or repair) the stage namespaces of one app, or of every app in the infrastructure repo.

    Args:
        app: the application, e.g. ``shop``; leave empty for every app the infrastructure repo declares.

    Returns ``{namespace: {"created": [...], "updated": [...], "unchanged": [...]}}``.
    """
    cfg = load_platform()
    log = get_run_logger()
    with run_workspace(cfg) as work:
        spec = load_spec(infra_repo(cfg, work / "infra").sync())
        apps = [spec.app(app).name] if app else sorted(spec.apps)
    log.info("ensuring the stages of %d app(s): %s", len(apps), ", ".join(apps) or "none")
    summary: dict[str, dict[str, list[str]]] = {}
    for name in apps:
        result = ensure_app_stages_task(step.Config(app=name), cfg)
        for field in ("created", "updated", "unchanged"):
            for obj in getattr(result, field):
                row = summary.setdefault(_namespace_of(obj), {"created": [], "updated": [], "unchanged": []})
                row[field].append(obj)
    create_markdown_artifact(key="app-stages", description=f"stages of {len(apps)} app(s)",
                             markdown=_markdown(summary))
    return summary


def _namespace_of(obj: str) -> str:
    # "Namespace/shop-test" or "Kind/shop-test/name"
    return obj.split("/")[1]


def _short(obj: str) -> str:
    # Within its namespace's row an object needs no namespace: "Role/stageflow-developers".
    kind, _, rest = obj.partition("/")
    return kind if kind == "Namespace" else f"{kind}/{rest.split('/', 1)[1]}"


def _markdown(summary: dict[str, dict[str, list[str]]]) -> str:
    rows = "\n".join(
        f"| {ns} | {len(r['created'])} | {len(r['updated'])} | {len(r['unchanged'])} | "
        f"{', '.join(_short(o) for o in r['created'] + r['updated']) or '-'} |"
        for ns, r in sorted(summary.items()))
    return ("# App stages\n\nCreated or updated objects per namespace; a re-run that finds everything in place "
            "changes nothing.\n\n| namespace | created | updated | unchanged | changed objects |\n"
            f"|---|---|---|---|---|\n{rows}\n")
