"""Prefect tasks over the database steps: build the adapters, run the step, log what happened
(never a credential), return the typed result. Retries only on RetryableError."""
from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.settings import PlatformSettings
from stageflow.steps import (apply_database, deprovision_test_database, plan_database, provision_test_database,
                             record_database, sync_db_secret)
from tasks.retry import RETRY_POLICY
from tasks.steps import infra_repo


@task(name=provision_test_database.KIND, **RETRY_POLICY)
def provision_test_database_task(config: provision_test_database.Config,
                                 settings: PlatformSettings) -> provision_test_database.Result:
    """Secret (generated once) + the database's Helm release in <app>-test, waited until Ready."""
    result = provision_test_database.run(config, Helm(settings.kubeconfig), Kube(settings.kubeconfig))
    get_run_logger().info(
        "%s database %s/%s: Secret %s %s, Helm revision %d%s, %d Ready", config.engine, result.namespace,
        result.release, result.secret, "created" if result.secret_created else "kept", result.helm_revision,
        "" if result.helm_changed else " (unchanged)", result.ready)
    return result


@task(name=record_database.KIND, **RETRY_POLICY)
def record_database_task(config: record_database.Config, settings: PlatformSettings,
                         workdir: Path) -> record_database.Result:
    """Record (or remove) the database file in the infra repo; no commit when it already says so."""
    result = record_database.run(config, infra_repo(settings, workdir))
    get_run_logger().info("infra %s: %s", f"commit {result.commit[:12]}" if result.commit else "unchanged",
                          result.path)
    return result


@task(name=deprovision_test_database.KIND, **RETRY_POLICY)
def deprovision_test_database_task(config: deprovision_test_database.Config,
                                   settings: PlatformSettings) -> deprovision_test_database.Result:
    """Uninstall the test database, delete its Secret and volumes (what is already gone is skipped)."""
    result = deprovision_test_database.run(config, Helm(settings.kubeconfig), Kube(settings.kubeconfig))
    get_run_logger().info("%s/%s: release %s, Secret %s, %d volume claims deleted", result.namespace, result.release,
                          "uninstalled" if result.release_removed else "already gone",
                          "deleted" if result.secret_deleted else "already gone", result.claims_deleted)
    return result


# --- prod: Terraform and the secret manager -------------------------------------------------------

def aws_env(settings: PlatformSettings) -> dict[str, str]:
    """Region and endpoint for Terraform's provisioners and boto3. With an endpoint override (moto
    in tests, a local stand-in) and no credentials in the environment, moto's dummy ones are set:
    such an endpoint never takes real credentials."""
    import os

    env = {"AWS_REGION": settings.databases.aws_region, "AWS_DEFAULT_REGION": settings.databases.aws_region}
    if settings.databases.aws_endpoint_url:
        env["AWS_ENDPOINT_URL"] = settings.databases.aws_endpoint_url
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            env |= {"AWS_ACCESS_KEY_ID": "stand-in", "AWS_SECRET_ACCESS_KEY": "stand-in"}
    os.environ.update(env)  # boto3 in this process reads the same
    return env


def _terraform(settings: PlatformSettings, root: Path):
    from stageflow.adapters.terraform import Terraform

    log = get_run_logger()
    return Terraform(root, env=aws_env(settings), log_output=lambda line: log.info("terraform: %s", line))


@task(name=plan_database.KIND, **RETRY_POLICY)
def plan_database_task(config: plan_database.Config, settings: PlatformSettings, root: Path) -> plan_database.Result:
    """init + plan -out; a plan this run already saved (before it suspended for approval) is shown
    again instead, so the approved plan is the one applied."""
    terraform = _terraform(settings, root)
    if config.plan_file.exists():
        terraform.init(config.backend_config)
        summary = terraform.show_plan(config.plan_file).model_copy(update={"destroy_plan": config.destroy})
        result = plan_database.Result(plan_file=config.plan_file, summary=summary,
                                      markdown=plan_database.summary_markdown(summary, config.title))
        get_run_logger().info("reusing the plan saved before the approval: %s", config.plan_file.name)
        return result
    result = plan_database.run(config, terraform)
    s = result.summary
    get_run_logger().info("plan %s: %d to add, %d to change, %d to replace, %d to destroy", config.plan_file.name,
                          len(s.add), len(s.change), len(s.replace), len(s.destroy))
    return result


@task(name=apply_database.KIND, **RETRY_POLICY)
def apply_database_task(config: apply_database.Config, settings: PlatformSettings, root: Path, *,
                        skip: bool = False) -> apply_database.Result:
    """Apply exactly the saved plan (``skip``: it has no changes; only read the outputs)."""
    terraform = _terraform(settings, root)
    if skip:
        outputs = None if config.destroy else apply_database.database_outputs(terraform.output())
        return apply_database.Result(applied=False, outputs=outputs)
    result = apply_database.run(config, terraform)
    get_run_logger().info("applied %s%s", config.plan_file.name, "" if result.applied else " (already applied)")
    return result


@task(name=sync_db_secret.KIND, **RETRY_POLICY)
def sync_db_secret_task(config: sync_db_secret.Config, settings: PlatformSettings) -> sync_db_secret.Result:
    """Copy the credentials from the secret manager into <app>-prod (values never logged)."""
    from stageflow.adapters.secrets_manager import SecretsManager

    aws_env(settings)
    result = sync_db_secret.run(config, SecretsManager(settings.databases.aws_region,
                                                       settings.databases.aws_endpoint_url),
                                Kube(settings.kubeconfig))
    get_run_logger().info("Secret %s/%s %s (keys: %s)", result.namespace, result.name,
                          "updated" if result.changed else "unchanged", ", ".join(result.key_names))
    return result


@task(name="gitops:commit-db-root", **RETRY_POLICY)
def commit_db_root_task(settings: PlatformSettings, path: str, text: str, workdir: Path,
                        what: str = "prod database root") -> str | None:
    """The Terraform root in the infra repo (no commit when it already says so)."""
    commit = infra_repo(settings, workdir).commit_and_push({path: text}, f"{path}: {what}",
                                                           {"Stageflow-Target": path.removesuffix("/main.tf")})
    get_run_logger().info("infra %s: %s", f"commit {commit[:12]}" if commit else "unchanged", path)
    return commit


@task(name="kube:delete-db-secret", **RETRY_POLICY)
def delete_prod_secret_task(settings: PlatformSettings, app: str, service: str) -> bool:
    from stageflow.spec import namespace

    deleted = Kube(settings.kubeconfig).delete_secret(namespace(app, "prod"), sync_db_secret.secret_name(service))
    get_run_logger().info("Secret %s/%s %s", namespace(app, "prod"), sync_db_secret.secret_name(service),
                          "deleted" if deleted else "already gone")
    return deleted
