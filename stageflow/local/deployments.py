"""The flows as Prefect deployments on the embedded platform, and the worker that runs them.

``register_deployments`` creates the ``stageflow-local`` process pool (adopted when it exists) and
runs ``prefect --no-prompt deploy --all`` in the project folder, so prefect.yaml is the one
definition the embedded platform, a cluster and CI all register from; triggers, schedules and
parameter schemas are read by Prefect itself. It is an upsert: a second run updates in place.
Measured on 2 cores: about 3 s, against about 2 s for building ``RunnerDeployment`` objects in
process; the second saved is not worth a second reading of prefect.yaml, nor importing Prefect
into ``stageflow up`` (the core stays importable without Prefect: this module only starts
processes and speaks HTTP).

``PrefectWorker`` is ``prefect worker start --pool stageflow-local --type process``, detached like
every other component. Its flow runs inherit its environment: the platform's ``STAGEFLOW_HOME``
(so they read that platform's platform.json), the tools on ``PATH``, and ``STAGEFLOW_PROJECT_DIR``,
which the deployments' pull step makes the working directory, so entrypoints resolve from the
project.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from stageflow.errors import RetryableError, TerminalError
from stageflow.local.prefect_server import prefect_env
from stageflow.local.process import ManagedProcess, wait_until
from stageflow.local.tools import tools_bin
from stageflow.settings import PROJECT_ROOT

__all__ = ["WORK_POOL", "PrefectWorker", "register_deployments", "worker_env"]

WORK_POOL = "stageflow-local"
WORKER_NAME = "stageflow-local-worker"
# How often the worker asks for scheduled runs: a run started from the UI or CI begins within this.
POLL_SECONDS = 2
_DEPLOY_TIMEOUT = 300


def _prefect_cli() -> str:
    return shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"


def worker_env(home: Path, api_url: str, project_dir: Path = PROJECT_ROOT) -> dict[str, str]:
    """What the worker and so every flow run it starts see: this platform, its tools, the project."""
    path = os.environ.get("PATH", "")
    python_path = os.environ.get("PYTHONPATH")
    return {
        **prefect_env(home, api_url),
        "STAGEFLOW_HOME": str(home),
        "STAGEFLOW_PROJECT_DIR": str(project_dir),
        # The flow modules import `flows`, `tasks`, `stageflow` as top-level packages.
        "PYTHONPATH": f"{project_dir}:{python_path}" if python_path else str(project_dir),
        "PATH": f"{tools_bin()}:{Path(sys.executable).parent}:{path}",
        "PREFECT_WORKER_QUERY_SECONDS": str(POLL_SECONDS),
    }


def ensure_work_pool(api_url: str, name: str = WORK_POOL) -> bool:
    """Create the process pool unless it exists; True when created. `prefect deploy` needs it first."""
    try:
        with httpx.Client(base_url=api_url, timeout=30) as client:
            created = client.post("/work_pools/", json={"name": name, "type": "process",
                                                        "description": "Stageflow's embedded platform"})
            if created.status_code == 409:
                return False
            created.raise_for_status()
            return True
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code >= 500:
            raise RetryableError(f"Prefect server answered {exc.response.status_code} creating pool {name}") from exc
        raise TerminalError(f"Prefect server refused work pool {name}: {exc.response.text[:300]}") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"Prefect server at {api_url} unreachable creating pool {name}: {exc}") from exc


def register_deployments(home: Path, api_url: str, project_dir: Path = PROJECT_ROOT) -> list[str]:
    """Upsert every deployment of ``project_dir/prefect.yaml``; returns ``flow/deployment`` names."""
    ensure_work_pool(api_url)
    try:
        done = subprocess.run(
            [_prefect_cli(), "--no-prompt", "deploy", "--all"], cwd=project_dir, capture_output=True, text=True,
            env={**os.environ, **worker_env(home, api_url, project_dir)},
            timeout=_DEPLOY_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise RetryableError(f"`prefect deploy --all` took longer than {_DEPLOY_TIMEOUT}s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise TerminalError(f"`prefect deploy --all` in {project_dir} failed (exit {done.returncode}):\n{tail}")
    return _deployment_names(api_url)


def _deployment_names(api_url: str) -> list[str]:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        deployments = client.post("/deployments/filter", json={}).raise_for_status().json()
        flows = {f["id"]: f["name"] for f in client.post("/flows/filter", json={}).raise_for_status().json()}
    return sorted(f"{flows.get(d['flow_id'], '?')}/{d['name']}" for d in deployments)


class PrefectWorker:
    """The process worker of the ``stageflow-local`` pool: it runs the deployments' flow runs."""

    def __init__(self, home: Path, api_url: str, project_dir: Path = PROJECT_ROOT):
        self.home = home
        self.api_url = api_url
        self.project_dir = project_dir
        self.proc = ManagedProcess("prefect-worker", home)

    def start(self) -> None:
        """Start (or adopt) the worker and wait until the server counts it as online."""
        self.proc.start([_prefect_cli(), "worker", "start", "--pool", WORK_POOL, "--type", "process",
                         "--name", WORKER_NAME], env=worker_env(self.home, self.api_url, self.project_dir),
                        cwd=self.project_dir)
        wait_until(self.online, timeout=90, what="Prefect worker", interval=0.5, log=self.proc.log_file)

    def online(self) -> bool:
        """The worker process lives and its latest heartbeat made the server list it ONLINE."""
        if not self.proc.running():
            return False
        with httpx.Client(base_url=self.api_url, timeout=5) as client:
            answer = client.post(f"/work_pools/{WORK_POOL}/workers/filter", json={})
        if answer.status_code != 200:
            return False
        return any(w["name"] == WORKER_NAME and w.get("status") == "ONLINE" for w in answer.json())

    def stop(self) -> None:
        self.proc.stop()
