"""(b) ``sync-stage`` for many services: cold (every release new) and warm (a re-run, nothing changed).

For each size N an app ``sync<N>`` is declared with N services and a test-stage version for each,
in ONE infra commit. The services share one image digest, but each has its own repository (the
spec wants image repositories unique), filled by a cross-repository copy in the registry. The
sizes run from small to large; before each one the time it would take is projected from the
previous size, and a size that would overrun the time budget is skipped and reported as such.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stageflow.errors import TerminalError
from stageflow.settings import PlatformSettings
from stageflow.spec import ChartRef, DeployedVersion, ImageRef, Service, load_spec
from benchmarks.fixtures import PushedImage, build_images, copy_image, declare_app, infra_checkout

__all__ = ["DEFAULT_SIZES", "ScaleResult", "run_scale"]

DEFAULT_SIZES = (10, 50, 100)
STAGE = "test"
# Projections are rough (more releases per namespace make Helm's look-ups slower): leave room.
_PROJECTION_MARGIN = 1.3

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ScaleResult:
    services: int
    setup: float | None = None  # image copies + the infra commit; not part of the sync figures
    cold: float | None = None
    warm: float | None = None
    skipped: str | None = None


def run_scale(settings: PlatformSettings, sizes: Sequence[int], *, deadline: float,
              progress: Progress) -> list[ScaleResult]:
    """Time ``sync_stage(app, "test")`` cold and warm for each size; ``deadline`` is a
    ``time.monotonic()`` value that no size may be projected to pass."""
    # Imported here, not at the top: Prefect must only load once os.environ points at our platform.
    from flows.sync_stage import sync_stage

    base = build_images(settings, f"{settings.registry}/scale/base", ["sync-stage benchmark image"])[0]
    infra = infra_checkout(settings, "scale-setup")
    chart = load_spec(infra.sync()).platform.chart
    results: list[ScaleResult] = []
    seconds_per_service: float | None = None
    for n in sorted(sizes):
        if seconds_per_service is not None:
            projected = seconds_per_service * n * _PROJECTION_MARGIN
            left = deadline - time.monotonic()
            if projected > left:
                reason = (f"skipped: projected {projected:.0f}s (from the {results[-1].services}-service run) "
                          f"but only {max(left, 0):.0f}s of the time budget left; raise --budget-minutes")
                results.append(ScaleResult(n, skipped=reason))
                progress(f"(b) {n} services {reason}")
                continue
        app = f"sync{n}"
        start = time.perf_counter()
        services, versions = _declare(settings, app, n, base, chart)
        declare_app(infra, app, services, versions)
        setup = time.perf_counter() - start
        progress(f"(b) {app}: {n} services declared in one infra commit ({setup:.1f}s, not timed)")
        cold = _timed_sync(sync_stage, app, expect_changed=n)
        progress(f"(b) {app}: cold sync {cold:.1f}s")
        warm = _timed_sync(sync_stage, app, expect_changed=0, expect_total=n)
        progress(f"(b) {app}: warm sync {warm:.1f}s")
        results.append(ScaleResult(n, setup=setup, cold=cold, warm=warm))
        seconds_per_service = (setup + cold + warm) / n
    return results


def _declare(settings: PlatformSettings, app: str, n: int, base: PushedImage,
             chart: ChartRef) -> tuple[list[Service], list[DeployedVersion]]:
    services, versions = [], []
    for i in range(1, n + 1):
        name = f"svc-{i:03d}"
        image = copy_image(base, f"{settings.registry}/{app}/{name}")
        services.append(Service(name=name, app=app, repository=f"{app}-{name}", image=image.repository))
        versions.append(DeployedVersion(app=app, service=name, stage=STAGE, chart=chart,
                                        image=ImageRef(repository=image.repository, digest=image.digest,
                                                       tag=image.tag)))
    return services, versions


def _timed_sync(sync_stage: Callable[..., object], app: str, *, expect_changed: int,
                expect_total: int | None = None) -> float:
    start = time.perf_counter()
    outcome = sync_stage(app=app, stage=STAGE)
    seconds = time.perf_counter() - start
    total = expect_changed if expect_total is None else expect_total
    not_ready = [s.service for s in outcome.services if s.ready != s.desired]
    if len(outcome.services) != total or len(outcome.changed) != expect_changed or not_ready:
        raise TerminalError(f"sync-stage {app}: expected {expect_changed} of {total} services changed and all "
                            f"Ready, got {len(outcome.changed)} of {len(outcome.services)} changed, "
                            f"not Ready: {not_ready[:5]}")
    return seconds
