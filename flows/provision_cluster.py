"""``provision-cluster``: a prod Kubernetes cluster (terraform/modules/cluster, EKS), driven like
the prod databases.

    terraform/cluster/<name>/main.tf in the infra repo ──► init + plan -out ──► plan summary
    ──► approval (suspended) ──► apply exactly the saved plan ──► outputs
    ──► kubeconfig saved as block stageflow-kubeconfig/<name> ──► artifact cluster-<name>

Where the module comes from is the platform's prod-database setting ``databases.terraform_modules``
(terraform/modules, terraform/standins where no cloud is reachable, or a git:: URL), and the state
backend is ``databases.terraform_backend``: one Terraform setup for every prod root, nothing new
in the settings. The network inputs only the platform knows come in the ``module_inputs``
parameter and are checked before anything is planned.

The saved plan is ``$STAGEFLOW_HOME/plans/<flow run>-cluster.tfplan``: the run suspends for the
approval and starts again from the top when it is resumed, and the second pass applies that plan,
never a new one. Safe to re-run: an unchanged root makes no commit, a plan without changes needs
no approval, and the block is overwritten with the same content.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.approval import await_decision, deadline
from flows.common import run_id, run_workspace, settings as load_platform
from flows.prod_database import PlanRejected
from stageflow.errors import Problem, TerminalError, ValidationFailed
from stageflow.settings import PlatformSettings
from stageflow.spec import PlatformSpec, load_spec
from stageflow.spec.names import label_problem
from stageflow.steps import apply_cluster, plan_database, render_cluster_root
from tasks.cluster import apply_cluster_task, save_kubeconfig_task
from tasks.database import commit_db_root_task, plan_database_task
from tasks.steps import infra_repo

BLOCK_TYPE = "stageflow-kubeconfig"
# The approval rules name an app; a cluster belongs to the platform, not to one app.
APPROVAL_SCOPE = "platform"


@flow(name="provision-cluster", log_prints=True, validate_parameters=True)
def provision_cluster(name: str, requested_by: str, reason: str = "", approval_timeout_seconds: int | None = None,
                      kubernetes_version: str = "1.34", module_inputs: dict[str, Any] | None = None) -> dict:
    """Create (or bring up to date) the prod Kubernetes cluster ``name`` after an approval of its plan.

    Approvers: a cluster serves every app, so any approver of any app (the union of the
    ``approvers`` of every apps/<app>/app.yaml in the infrastructure repo) may decide, but not
    ``requested_by`` alone.

    Args:
        name: the cluster name (a DNS label, e.g. ``prod-eu``); also the kubeconfig block's name.
        requested_by: who asks; they may not approve the plan alone.
        reason: why, shown to the approvers.
        approval_timeout_seconds: how long approvers have; empty: the platform's default.
        kubernetes_version: the Kubernetes minor version, e.g. ``1.34``.
        module_inputs: the network inputs of terraform/modules/cluster: ``subnet_ids`` (required:
            private subnets in two or more availability zones) and optionally
            ``endpoint_public_access``, ``public_access_cidrs``, ``node_instance_types``,
            ``node_min`` / ``node_max`` / ``node_desired``, ``log_types``, ``log_retention_days``, ``tags``.

    Returns:
        ``name``, ``endpoint``, ``certificate_authority``, ``block`` (``stageflow-kubeconfig/<name>``),
        ``applied`` and ``approved_by`` (None when the plan had no changes). Never the kubeconfig.
    """
    _validate(name, requested_by)
    log = get_run_logger()
    cfg = load_platform()
    with run_workspace(cfg) as work:
        spec = load_spec(infra_repo(cfg, work / "infra").sync())
        root = _root(cfg, work, render_cluster_root.Config(
            name=name, kubernetes_version=kubernetes_version, region=cfg.databases.aws_region,
            modules_source=cfg.databases.terraform_modules, backend=cfg.databases.terraform_backend,
            inputs=module_inputs or {}))
        plan_file = cfg.home / "plans" / f"{run_id()}-cluster.tfplan"
        planned = plan_database_task(plan_database.Config(
            plan_file=plan_file, backend_config=_backend(cfg, name),
            title=f"terraform/cluster/{name}: prod Kubernetes cluster"), cfg, root)
        approved_by = None
        if planned.summary.has_changes:
            decision = _approve(spec, name, requested_by.strip(), reason.strip(), approval_timeout_seconds,
                                planned.markdown)
            if decision.decision == "reject":
                plan_file.unlink(missing_ok=True)
                raise PlanRejected(f"the plan of cluster {name} was rejected by {decision.approver}: "
                                   f"{decision.reason}")
            approved_by = decision.approver
            log.info("applying exactly the approved plan %s", plan_file.name)
        applied = apply_cluster_task(apply_cluster.Config(plan_file=plan_file), cfg, root,
                                     skip=not planned.summary.has_changes)
        plan_file.unlink(missing_ok=True)
    out = applied.outputs
    if out.name != name:
        raise TerminalError(f"the cluster root of {name} reports cluster {out.name!r}: the module is not "
                            "terraform/modules/cluster (or its stand-in)")
    block = save_kubeconfig_task(name, out.kubeconfig)
    s = planned.summary
    plan = (f"{'applied' if applied.applied else 'no changes'}: {len(s.add)} to add, {len(s.change)} to change, "
            f"{len(s.replace)} to replace, {len(s.destroy)} to destroy")
    create_markdown_artifact(key=f"cluster-{name}", description=f"prod Kubernetes cluster {name}",
                             markdown=f"""# Cluster {name}

| | |
|---|---|
| endpoint | `{out.endpoint}` |
| Kubernetes | {kubernetes_version} |
| kubeconfig | block `{block}` (authenticates with `aws eks get-token`) |
| Terraform root | `{render_cluster_root.root_path(name)}` in the infrastructure repo |
| plan | {plan} |
| approved by | {approved_by or '(nothing to approve)'} |
""")
    return {"name": out.name, "endpoint": out.endpoint, "certificate_authority": out.certificate_authority,
            "block": block, "applied": applied.applied, "approved_by": approved_by}


def platform_approvers(spec: PlatformSpec) -> list[str]:
    """Everyone who approves for some app: the cluster is shared by all of them."""
    from stageflow.release.approval import platform_approvers as union

    return union(spec.apps.values())


def _validate(name: str, requested_by: str) -> None:
    problems = []
    if (problem := label_problem(name)) is not None:
        problems.append(Problem("name", problem))
    if not requested_by.strip():
        problems.append(Problem("requested_by", "must not be empty: who asks (they may not approve alone)"))
    if problems:
        raise ValidationFailed(problems, summary="provision-cluster: invalid input")


def _approve(spec: PlatformSpec, name: str, requested_by: str, reason: str, timeout: int | None, plan_markdown: str):
    approvers = platform_approvers(spec)
    if not approvers:
        raise TerminalError(f"no app in the infrastructure repo lists approvers: nobody may approve cluster {name}")
    until = deadline(timeout or spec.platform.approval_timeout_hours * 3600)
    description = (f"## Prod Kubernetes cluster: {name}\nRequested by **{requested_by}**."
                   + (f"\n\n> {reason}" if reason else "")
                   + f"\n\nApprovers (any app's): {', '.join(approvers)} (not {requested_by} alone). "
                     f"Decide before {until.isoformat(timespec='seconds')}.\n\n{plan_markdown}")
    create_markdown_artifact(markdown=description, key=f"cluster-request-{name}",
                             description=f"cluster {name}, awaiting approval")
    get_run_logger().info("waiting for an approver of the plan of cluster %s until %s: the Prefect UI or "
                          "`stageflow approve %s --reason ...`", name, until.isoformat(), run_id())
    return await_decision(description, app=APPROVAL_SCOPE, approvers=approvers, requested_by=requested_by,
                          until=until)


def _root(cfg: PlatformSettings, work: Path, config: render_cluster_root.Config) -> Path:
    """Render the root (refusing missing network inputs), commit it to the infra repo (no commit
    when unchanged) and write the working copy Terraform runs in (kept between runs: .terraform
    and the provider lock live there)."""
    rendered = render_cluster_root.run(config)
    commit_db_root_task(cfg, rendered.path, rendered.text, work / "infra", what="cluster root")
    root = cfg.home / "terraform-clusters" / config.name
    root.mkdir(parents=True, exist_ok=True)
    main = root / "main.tf"
    if not main.exists() or main.read_text() != rendered.text:
        main.write_text(rendered.text)
    return root


def _backend(cfg: PlatformSettings, name: str) -> dict[str, str]:
    if cfg.databases.terraform_backend == "s3":
        return {"bucket": cfg.databases.state_bucket or "", "key": f"stageflow/cluster/{name}.tfstate",
                "region": cfg.databases.aws_region}
    # "_cluster": no app can have that name, so no database state (<app>/<service>) is ever here.
    state = cfg.home / "terraform-state" / "_cluster" / f"{name}.tfstate"
    state.parent.mkdir(parents=True, exist_ok=True)
    return {"path": str(state)}
