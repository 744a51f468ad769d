"""Prefect tasks over ``drift:detect`` and ``drift:heal``: build the adapters from the platform
settings, run the step, log what it found or did; retries only on RetryableError.

Never cached: the cluster may change between two calls with the same input (that is the point of
detecting again after healing).
"""
from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.settings import PlatformSettings
from stageflow.spec import PlatformSpec
from stageflow.steps import detect_drift, ensure_app_stages, heal_drift
from tasks.retry import RETRY_POLICY

__all__ = ["detect_drift_task", "heal_drift_task"]


@task(name=detect_drift.KIND, **RETRY_POLICY, cache_policy=NO_CACHE, persist_result=False)
def detect_drift_task(config: detect_drift.Config, spec: PlatformSpec,
                      settings: PlatformSettings) -> detect_drift.Result:
    """Compare the spec with Helm and the cluster; changes nothing.

    Example::

        found = detect_drift_task(detect_drift.Config(app="shop"), spec, settings)
        print([d.describe() for d in found.drifts])
    """
    with Kube(settings.kubeconfig) as kube, ensure_app_stages.connect(settings.kubeconfig) as api:
        result = detect_drift.run(config, spec, Helm(settings.kubeconfig), kube, api)
    log = get_run_logger()
    for drift in result.drifts:
        log.warning("drift: %s", drift.describe())
    log.info("%d drift(s) in %d checked object(s)", len(result.drifts), result.checked)
    return result


@task(name=heal_drift.KIND, **RETRY_POLICY, cache_policy=NO_CACHE, persist_result=False)
def heal_drift_task(config: heal_drift.Config, spec: PlatformSpec, settings: PlatformSettings) -> heal_drift.Result:
    """Make the drifted releases and namespace objects match the spec again.

    Example::

        heal_drift_task(heal_drift.Config(drifts=found.drifts, chart=settings.chart), spec, settings)
    """
    with Kube(settings.kubeconfig) as kube, ensure_app_stages.connect(settings.kubeconfig) as api:
        result = heal_drift.run(config, spec, Helm(settings.kubeconfig), kube, api)
    log = get_run_logger()
    for healed in result.healed:
        log.info("healed %s/%s: %s", healed.app, healed.service or healed.stage, healed.action)
    for skipped in result.skipped:
        log.warning("not healed: %s (%s)", skipped.drift.describe(), skipped.reason)
    return result
