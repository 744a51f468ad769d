"""Prefect tasks of provision-cluster that the database tasks do not already cover: applying a
cluster plan (its outputs differ) and saving the kubeconfig block. Retries only on RetryableError."""
from __future__ import annotations

from pathlib import Path

import httpx
from prefect import get_run_logger, task
from pydantic import SecretStr

from stageflow.errors import RetryableError
from stageflow.settings import PlatformSettings
from stageflow.steps import apply_cluster
from tasks.database import aws_env
from tasks.retry import RETRY_POLICY


@task(name=apply_cluster.KIND, **RETRY_POLICY)
def apply_cluster_task(config: apply_cluster.Config, settings: PlatformSettings, root: Path, *,
                       skip: bool = False) -> apply_cluster.Result:
    """Apply exactly the saved plan (``skip``: it has no changes; only read the outputs)."""
    from stageflow.adapters.terraform import Terraform

    log = get_run_logger()
    terraform = Terraform(root, env=aws_env(settings), log_output=lambda line: log.info("terraform: %s", line))
    result = apply_cluster.run(config, terraform, skip=skip)
    log.info("cluster %s: %s", result.outputs.name, f"applied {config.plan_file.name}" if result.applied
             else "nothing to apply" if skip else f"{config.plan_file.name} already applied")
    return result


@task(name="prefect:save-kubeconfig-block", **RETRY_POLICY)
def save_kubeconfig_task(name: str, kubeconfig: SecretStr) -> str:
    """Save (or overwrite) block ``stageflow-kubeconfig/<name>``; its slug/name."""
    from blocks.kubeconfig import StageflowKubeconfig

    try:
        StageflowKubeconfig(name=name, kubeconfig=kubeconfig).save(name, overwrite=True)
    except httpx.TransportError as exc:  # the Prefect API restarting; the content never goes in the message
        raise RetryableError(f"saving block stageflow-kubeconfig/{name}: the Prefect API was unreachable") from exc
    ref = f"stageflow-kubeconfig/{name}"
    get_run_logger().info("kubeconfig saved as block %s", ref)
    return ref
