"""Prefect task over the ``helm:bootstrap-core-services`` step: build Helm and Kube from the
platform settings, run the step, log what changed (release names only); retries only on
RetryableError (API server or registry blips), never on a broken chart or catalog."""
from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.settings import PlatformSettings
from stageflow.steps import bootstrap_core_services
from tasks.retry import RETRY_POLICY


# Never cached: a release removed or broken since the last run must be put back on this one.
@task(name=bootstrap_core_services.KIND, **RETRY_POLICY, cache_policy=NO_CACHE, persist_result=False)
def bootstrap_core_services_task(config: bootstrap_core_services.Config,
                                 settings: PlatformSettings) -> bootstrap_core_services.Result:
    """Install or upgrade the core services that differ from the catalog, then check them Ready.

    Example::

        bootstrap_core_services_task(bootstrap_core_services.Config(services=spec.platform.core_services),
                                     settings)
    """
    with Kube(settings.kubeconfig) as kube:
        result = bootstrap_core_services.run(config, Helm(settings.kubeconfig), kube)
    log = get_run_logger()
    for name in result.installed:
        log.info("installed core service %s (revision %d)", name, result.revisions[name])
    for name in result.upgraded:
        log.info("upgraded core service %s to revision %d", name, result.revisions[name])
    log.info("core services: %d installed, %d upgraded, %d unchanged", len(result.installed),
             len(result.upgraded), len(result.unchanged))
    return result
