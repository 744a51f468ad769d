"""Prefect task over the ``kube:ensure-app-stages`` step: connect with the platform's kubeconfig,
run the step, log what changed (object names only); retries only on RetryableError."""
from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from stageflow.settings import PlatformSettings
from stageflow.steps import ensure_app_stages
from tasks.retry import RETRY_POLICY


# Never cached: a namespace or policy deleted since the last run must come back on this one.
@task(name=ensure_app_stages.KIND, **RETRY_POLICY, cache_policy=NO_CACHE, persist_result=False)
def ensure_app_stages_task(config: ensure_app_stages.Config,
                           settings: PlatformSettings) -> ensure_app_stages.Result:
    """Create or repair the app's stage namespaces, quotas, network policies and RBAC.

    Example::

        ensure_app_stages_task(ensure_app_stages.Config(app="shop"), settings)
    """
    with ensure_app_stages.connect(settings.kubeconfig) as api:
        result = ensure_app_stages.run(config, api)
    log = get_run_logger()
    for name in result.created:
        log.info("created %s", name)
    for name in result.updated:
        log.info("updated %s (a field Stageflow owns had drifted)", name)
    log.info("%s: %d created, %d updated, %d unchanged", config.app, len(result.created), len(result.updated),
             len(result.unchanged))
    return result
