"""(a) Orchestration overhead: the ``build-to-test`` flow against a plain script doing the same work.

Both sides deploy a NEW digest every round (images are built before any timing starts), to two
services of one app so that neither sees the other's release: ``overhead/via-flow`` is deployed by
the flow, ``overhead/via-script`` by :class:`PlainScript`. Round 0 of each side is a warm-up (the
Helm release is installed rather than upgraded, and the first flow call pays Prefect's start-up)
and is reported apart; the timed rounds alternate which side goes first, so a slow spell on the
shared machine does not always land on the same side.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.adapters.registry import Registry, parse
from stageflow.errors import TerminalError
from stageflow.gitops import InfraRepo
from stageflow.settings import PlatformSettings
from stageflow.spec import DeployedVersion, ImageRef, Service, SourceRef, load_spec, namespace, to_yaml, version_path
from stageflow.steps.helm_deploy import chart_values
from benchmarks.fixtures import PushedImage, build_images, declare_app, infra_checkout

__all__ = ["APP", "STEPS", "OverheadResult", "PlainScript", "Round", "run_overhead"]

APP = "overhead"
STAGE = "test"
SIDES = ("flow", "script")
# The flow's step names (RolloutSummary.timings); the script times the same stretches under them.
STEPS = ("read spec", "resolve image", "write infra repo", "helm upgrade", "rollout + verify")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Round:
    side: str
    seconds: float
    steps: dict[str, float]


@dataclass
class OverheadResult:
    rounds: int
    warmup: dict[str, Round] = field(default_factory=dict)
    timed: dict[str, list[Round]] = field(default_factory=lambda: {side: [] for side in SIDES})


class PlainScript:
    """What a person would write without an orchestrator: the same adapters in a row. No Prefect,
    no stage lock, no "is the release already there" checks, one checkout reused across runs."""

    def __init__(self, settings: PlatformSettings, infra: InfraRepo):
        self.settings = settings
        self.infra = infra

    def deploy(self, app: str, service: str, image: PushedImage) -> Round:
        steps: dict[str, float] = {}
        start = time.perf_counter()
        with _timed(steps, "read spec"):
            spec = load_spec(self.infra.sync())
            svc = spec.service(app, service)
            current = spec.version(app, service, STAGE)
        with _timed(steps, "resolve image"):
            address, path = parse(svc.image)
            with Registry(address) as registry:
                digest = registry.resolve(path, image.tag)
        with _timed(steps, "write infra repo"):
            version = DeployedVersion(
                app=app, service=service, stage=STAGE,
                image=ImageRef(repository=svc.image, digest=digest, tag=image.tag),
                chart=current.chart if current else spec.platform.chart,
                values=current.values if current else {}, source=SourceRef(commit=image.tag))
            commit = self.infra.commit_and_push(
                {version_path(app, service, STAGE): to_yaml(version)}, f"{app}/{service}: {STAGE} -> {digest[7:19]}",
                {"Stageflow-Target": f"{app}/{service}/{STAGE}", "Stageflow-Image-Digest": digest})
        with _timed(steps, "helm upgrade"):
            Helm(self.settings.kubeconfig).upgrade_install(
                service, self.settings.chart, namespace(app, STAGE), chart_values(svc, version))
        with _timed(steps, "rollout + verify"):
            with Kube(self.settings.kubeconfig) as kube:
                status = kube.wait_for_rollout(namespace(app, STAGE), service,
                                               timeout=self.settings.timeouts.rollout_seconds)
        seconds = time.perf_counter() - start
        if digest != image.digest or commit is None or f"{svc.image}@{digest}" not in status.images:
            raise TerminalError(f"plain script: {app}/{service} did not deploy {image.digest} "
                                f"(resolved {digest}, infra commit {commit}, running {status.images})")
        return Round("script", seconds, steps)


def run_overhead(settings: PlatformSettings, rounds: int, progress: Progress) -> OverheadResult:
    """Warm-up plus ``rounds`` timed deployments per side; returns every round's wall time and steps."""
    # Imported here, not at the top: Prefect must only load once os.environ points at our platform.
    from flows.build_to_test import build_to_test

    services = {side: Service(name=f"via-{side}", app=APP, repository=f"{APP}-via-{side}",
                              image=f"{settings.registry}/{APP}/via-{side}") for side in SIDES}
    declare_app(infra_checkout(settings, "overhead-setup"), APP, list(services.values()))
    progress(f"(a) building {2 * (rounds + 1)} images FROM scratch (not timed)")
    images = {side: build_images(settings, svc.image, [f"{side} round {i}" for i in range(rounds + 1)])
              for side, svc in services.items()}
    script = PlainScript(settings, infra_checkout(settings, "overhead-script"))

    def by_flow(image: PushedImage) -> Round:
        start = time.perf_counter()
        summary = build_to_test(app=APP, service=services["flow"].name, commit=image.tag)
        seconds = time.perf_counter() - start
        if summary.digest != image.digest or not summary.helm_changed or summary.infra_commit is None:
            raise TerminalError(f"build-to-test did not deploy {image.digest} as new work: {summary}")
        return Round("flow", seconds, dict(summary.timings))

    deploy = {"flow": by_flow, "script": lambda image: script.deploy(APP, services["script"].name, image)}
    result = OverheadResult(rounds=rounds)
    for i in range(rounds + 1):
        for side in (SIDES if i % 2 == 0 else SIDES[::-1]):
            done = deploy[side](images[side][i])
            if i == 0:
                result.warmup[side] = done
            else:
                result.timed[side].append(done)
            label = "warm-up" if i == 0 else f"round {i}/{rounds}"
            progress(f"(a) {label}: {side:6} {done.seconds:6.2f}s")
    return result


@contextmanager
def _timed(steps: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        steps[name] = time.perf_counter() - start
