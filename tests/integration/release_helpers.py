"""Helpers of the release tests: an app with approvers, a service verified in Test, release runs
started as `stageflow release` starts them, and the run's state read back through Prefect's API."""
from __future__ import annotations

import contextlib
import io
import time
import uuid
from collections.abc import Iterator

import pytest

from stageflow.adapters.forge.factory import forge_from_settings
from stageflow.settings import PlatformSettings
from stageflow.spec import App, Service, app_path, load_spec, to_yaml
from tests.integration.helpers import infra, new_service, push_change

APPROVERS = ["alice", "bob"]
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def new_app(settings: PlatformSettings, app: str, approvers: list[str] = APPROVERS) -> None:
    """Declare ``app`` with these approvers (adopted if it exists)."""
    checkout = infra(settings, f"app-{app}")
    if not (checkout.workdir / app_path(app)).exists():
        checkout.commit_and_push({app_path(app): to_yaml(App(name=app, owners=approvers, approvers=approvers))},
                                 f"Register app {app}", {"Stageflow-Target": app})


def verified_in_test(settings: PlatformSettings, svc: Service, greeting: str, tag: str) -> tuple[str, str]:
    """A code change built by CI, rolled out and verified in Test by build-to-test, and published as
    release ``tag`` of the service repository (what GitHub's release event carries). (commit, digest)"""
    from flows.build_to_test import build_to_test

    commit, digest = push_change(settings, svc, greeting)
    build_to_test(app=svc.app, service=svc.name, commit=commit)
    forge_from_settings(settings).create_release(svc.repository, tag, ref=commit)
    return commit, digest


def released_service(settings: PlatformSettings, app: str, service: str) -> Service:
    new_app(settings, app)
    return new_service(settings, app, service)


def start(flow: str, **parameters) -> str:
    """Start a deployment run the way `stageflow release` / the service CI does; its id."""
    from prefect.deployments import run_deployment

    run = run_deployment(f"{flow}/{flow}", parameters=parameters, timeout=0,
                         idempotency_key=f"test/{flow}/{uuid.uuid4()}")
    return str(run.id)


def state(run_id: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(uuid.UUID(run_id)).state


def wait_state(run_id: str, want: set[str] | str, *, timeout: float = 180, paused_key: str | None = None):
    """Wait until the run's state type is in ``want`` (e.g. PAUSED, COMPLETED); fail early on an
    unexpected final state, naming it and its message."""
    want = {want} if isinstance(want, str) else want
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = state(run_id)
        if last is not None and last.type.value in want and (
                paused_key is None or (last.state_details.pause_key == paused_key)):
            return last
        if last is not None and last.type.value in TERMINAL and last.type.value not in want:
            pytest.fail(f"run {run_id} ended {last.name}: {last.message}\n{logs(run_id)}")
        time.sleep(0.5)
    pytest.fail(f"run {run_id} not {want} within {timeout}s (last: {last and last.name}: {last and last.message})\n"
                f"{logs(run_id)}")


def logs(run_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    with get_client(sync_client=True) as client:
        found = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(run_id)])),
                                 sort=LogSort.TIMESTAMP_ASC)
    return "\n".join(line.message for line in found)


def cli(*argv: str) -> tuple[int, str]:
    """`stageflow ARGV` in this process; (exit code, stdout + stderr)."""
    from stageflow.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = main(list(argv))
    return code, buf.getvalue()


def prod_spec(settings: PlatformSettings, app: str, service: str):
    spec = load_spec(infra(settings, f"prod-{app}-{service}").workdir)
    return spec.version(app, service, "prod"), spec.release_history(app, service)


@contextlib.contextmanager
def rollout_timeout(settings: PlatformSettings, seconds: float) -> Iterator[None]:
    """Flows read platform.json per run: shorten the rollout wait for one test, then restore it."""
    shorter = settings.model_copy(update={"timeouts": settings.timeouts.model_copy(update={"rollout_seconds": seconds})})
    shorter.save()
    try:
        yield
    finally:
        settings.save()


def wait_logs(run_id: str, *needles: str, timeout: float = 30) -> str:
    """The run's log once it contains every needle (a process ships its last lines as it exits)."""
    deadline = time.monotonic() + timeout
    while True:
        text = logs(run_id)
        if all(n in text for n in needles) or time.monotonic() > deadline:
            missing = [n for n in needles if n not in text]
            assert not missing, f"run {run_id} never logged {missing}:\n{text}"
            return text
        time.sleep(0.5)


def all_logs() -> str:
    """Every log line the Prefect server holds (for secret scans)."""
    from prefect.client.orchestration import get_client

    lines, offset = [], 0
    with get_client(sync_client=True) as client:
        while batch := client.read_logs(limit=200, offset=offset):
            lines += [log.message for log in batch]
            offset += len(batch)
    return "\n".join(lines)


def all_artifacts() -> str:
    """Every artifact the Prefect server holds, as text (for secret scans)."""
    from prefect.client.orchestration import get_client

    found, offset = [], 0
    with get_client(sync_client=True) as client:
        while batch := client.read_artifacts(limit=200, offset=offset):
            found += [str(a.data) for a in batch]
            offset += len(batch)
    return "\n".join(found)
