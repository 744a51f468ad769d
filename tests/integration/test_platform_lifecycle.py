"""`stageflow up` / `stageflow down` as a person runs them, in a home of their own."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stageflow.local.process import free_port, port_open

pytestmark = pytest.mark.integration

COMPONENTS = ("prefect-server", "prefect-worker", "registry", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def stageflow(home, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STAGEFLOW_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "stageflow.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def pids(home) -> dict[str, int]:
    return {name: int((home / "run" / f"{name}.pid").read_text()) for name in COMPONENTS
            if (home / "run" / f"{name}.pid").exists()}


def alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().split(") ")[-1][:1]
    except OSError:
        return False
    return state != "Z"


def test_up_twice_adopts_then_down_leaves_nothing_running(tmp_path_factory):
    home = tmp_path_factory.mktemp("own-home")
    ports = {"prefect": free_port(), "registry": free_port(), "apiserver": free_port(),
             "etcd_client": free_port(), "etcd_peer": free_port()}
    try:
        first = stageflow(home, "up", *[f"--port={k}={v}" for k, v in ports.items()])
        assert first.returncode == 0, first.stdout + first.stderr
        started = pids(home)
        assert set(started) == set(COMPONENTS) and all(alive(p) for p in started.values())
        saved = json.loads((home / "platform.json").read_text())
        assert saved["ports"] == ports and (home / "kube" / "kubeconfig").exists()

        again = stageflow(home, "up")  # ports come from platform.json now
        assert again.returncode == 0, again.stderr
        assert pids(home) == started

        env = stageflow(home, "env")
        assert f"KUBECONFIG={home / 'kube' / 'kubeconfig'}" in env.stdout
        nodes = subprocess.run(["bash", "-c", f'eval "$(STAGEFLOW_HOME={home} {sys.executable} -m stageflow.cli env)"'
                                              " && kubectl get nodes -o name"], capture_output=True, text=True)
        assert nodes.stdout.split() == ["node/kwok-node-0", "node/kwok-node-1"], nodes.stderr
    finally:
        down = stageflow(home, "down")
    assert down.returncode == 0, down.stderr
    assert not any(alive(p) for p in started.values())
    assert not any(port_open(p) for p in ports.values())
    assert pids(home) == {}


def test_bad_port_option_is_refused_before_anything_starts(tmp_path):
    done = stageflow(tmp_path, "up", "--port", "prefect=http")
    assert done.returncode == 1 and "--port" in done.stderr
    assert not (tmp_path / "run").exists()
