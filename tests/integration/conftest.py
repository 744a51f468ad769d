"""The embedded platform, started once per test session exactly as `stageflow up` starts it."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stageflow.local.platform import EmbeddedPlatform
from stageflow.settings import PlatformSettings
from tests.conftest import TEST_HOME, TEST_PORTS, _keep


@pytest.fixture(scope="session")
def embedded() -> EmbeddedPlatform:
    platform = EmbeddedPlatform(TEST_HOME, TEST_PORTS)
    try:
        platform.up(progress=lambda line: print(f"[platform] {line}"))
        yield platform
    finally:
        _flush_prefect_logs()
        if not _keep:
            platform.down(progress=lambda line: None)
            shutil.rmtree(TEST_HOME, ignore_errors=True)


def _flush_prefect_logs() -> None:
    """Send the flow runs' queued logs while the server still listens (not at interpreter exit)."""
    try:
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()
    except Exception as exc:  # noqa: BLE001 - best effort; the tests already ran
        print(f"[platform] could not flush Prefect logs: {exc}")


@pytest.fixture(scope="session")
def settings(embedded: EmbeddedPlatform) -> PlatformSettings:
    """The platform's settings, with shorter waits than people get (flows read them from platform.json)."""
    from stageflow.settings import load_settings

    current = load_settings(TEST_HOME)
    tuned = current.model_copy(update={"timeouts": current.timeouts.model_copy(
        update={"image_wait_seconds": 5, "rollout_seconds": 120})})
    tuned.save()
    return tuned


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()
