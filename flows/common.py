"""What every flow shares: settings, a per-run workspace, the stage lock, step timings."""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run

from stageflow.settings import PlatformSettings, load_settings


def settings() -> PlatformSettings:
    """The platform the flow acts on: the block named by STAGEFLOW_PLATFORM_BLOCK, else the
    embedded platform's platform.json under STAGEFLOW_HOME."""
    block = os.environ.get("STAGEFLOW_PLATFORM_BLOCK")
    if block:
        from blocks.platform import StageflowPlatform

        return StageflowPlatform.load(block).to_settings()
    return load_settings()


def run_id() -> str:
    return str(flow_run.id) if flow_run.id else "local"


@contextmanager
def run_workspace(settings: PlatformSettings) -> Iterator[Path]:
    """A scratch folder for this flow run (its own infra checkout), removed afterwards."""
    path = settings.workdir / "runs" / run_id()
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stage_lock_name(app: str, stage: str) -> str:
    return f"stageflow-stage-{app}-{stage}"


def ensure_stage_lock(app: str, stage: str) -> str:
    """The stage's global concurrency limit (1 slot), created on first use and adopted afterwards."""
    name = stage_lock_name(app, stage)
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 1)
    return name


@contextmanager
def stage_lock(app: str, stage: str, timeout_seconds: float = 1800) -> Iterator[None]:
    """Two rollouts to one app stage never interleave: they queue for the stage's one slot."""
    name = ensure_stage_lock(app, stage)
    get_run_logger().info("waiting for the %s-%s stage lock", app, stage)
    with concurrency(name, occupy=1, timeout_seconds=timeout_seconds, strict=True):
        yield


class Timings:
    """Wall time of each step, for the run summary."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = time.monotonic() - start

    def markdown(self) -> str:
        rows = "\n".join(f"| {name} | {secs:.1f}s |" for name, secs in self.steps.items())
        return f"| step | time |\n|---|---|\n{rows}\n| **total** | {sum(self.steps.values()):.1f}s |"
