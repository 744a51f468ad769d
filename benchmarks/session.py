"""The benchmark's own embedded platform: a fresh temporary home on free ports, removed afterwards.

Set up exactly as ``tests/conftest.py`` does it, so the benchmark never touches a platform a
developer (or a concurrent test run) has going: :func:`point_env_at` fills ``os.environ`` before
anything imports Prefect, :func:`running_platform` starts the platform and always stops it.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stageflow.local.prefect_server import prefect_env
from stageflow.local.process import free_port
from stageflow.settings import PlatformSettings, Ports

__all__ = ["new_home", "point_env_at", "running_platform"]

Progress = Callable[[str], None]


def new_home() -> tuple[Path, Ports]:
    """A new temporary STAGEFLOW_HOME and a free port for every component."""
    home = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    ports = Ports(prefect=free_port(), registry=free_port(), apiserver=free_port(),
                  etcd_client=free_port(), etcd_peer=free_port())
    return home, ports


def point_env_at(home: Path, ports: Ports, *, prefect_console: str = "WARNING") -> None:
    """Point Stageflow and Prefect at the benchmark's platform. Must run before Prefect is imported.

    Run logs still go to the Prefect API at INFO, as in production, so that cost stays in the
    figures; only the console copy is quietened, to keep the result table readable.
    """
    os.environ["STAGEFLOW_HOME"] = str(home)
    os.environ.update(prefect_env(home, f"http://127.0.0.1:{ports.prefect}/api"))
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = prefect_console


@contextmanager
def running_platform(home: Path, ports: Ports, progress: Progress) -> Iterator[PlatformSettings]:
    """``stageflow up`` under ``home``; on the way out (success, error, Ctrl-C or SIGTERM) the
    platform is stopped and ``home`` deleted."""
    from stageflow.local.platform import EmbeddedPlatform

    platform = EmbeddedPlatform(home, ports)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield platform.up(progress=lambda line: progress(f"[platform] {line}"))
    finally:
        try:
            platform.down(progress=lambda _: None)
        finally:
            shutil.rmtree(home, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous)
            progress(f"[platform] stopped; {home} removed")


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # Turn a polite kill into an exception so the finally above still tears the platform down.
    raise SystemExit(128 + signum)
