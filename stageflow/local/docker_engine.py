"""The Docker engine that builds and pushes images for the embedded platform.

The machine's engine is used when one answers (``DOCKER_HOST`` or ``/var/run/docker.sock``);
otherwise we run Debian's ``dockerd`` ourselves, confined to ``$STAGEFLOW_HOME/docker``: no
iptables, no bridge (builds and pushes need neither; ``docker run --network none`` works) and
the ``vfs`` storage driver, which needs no overlay support from the kernel.
"""
from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import docker

from stageflow.errors import TerminalError
from stageflow.local.process import ManagedProcess, wait_until

__all__ = ["DockerEngine"]

DOCKERD_BINARY = "dockerd"
SYSTEM_SOCKET = Path("/var/run/docker.sock")
# sun_path holds 108 bytes; keep headroom for containerd's socket below exec-root.
_MAX_SOCKET_PATH = 100


class DockerEngine:
    """Find or start a Docker engine; ``ensure()`` returns its host URL (``unix:///...``)."""

    def __init__(self, home: Path, *, start_timeout: float = 60.0):
        self.home = Path(home)
        self.start_timeout = start_timeout
        self._process = ManagedProcess("dockerd", self.home)

    @property
    def data_root(self) -> Path:
        return self.home / "docker" / "data"

    @property
    def runtime_dir(self) -> Path:
        """Where the sockets live: under home, or under /tmp when home is too deep for a socket path."""
        local = self.home / "docker"
        if len(str(local / "exec" / "containerd" / "containerd.sock")) < _MAX_SOCKET_PATH:
            return local
        digest = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
        return Path("/tmp") / f"stageflow-{digest}"

    @property
    def own_host(self) -> str:
        """The host URL of the engine we start ourselves."""
        return f"unix://{self.runtime_dir / 'docker.sock'}"

    @property
    def log_file(self) -> Path:
        return self._process.log_file

    def running(self) -> bool:
        """True when the engine we started is running (an external engine does not count)."""
        return self._process.running()

    def ensure(self) -> str:
        """The host URL of a Docker engine that answers, starting our own if the machine has none."""
        if not self._process.running():
            external = self._external_host()
            if external is not None:
                return external
            self._start()
        wait_until(lambda: not self._process.running() or _pings(self.own_host), timeout=self.start_timeout,
                   what="dockerd", log=self.log_file)
        if not self._process.running():
            raise TerminalError(f"dockerd exited during start-up; see {self.log_file}")
        return self.own_host

    def stop(self) -> bool:
        """Stop the engine we started (never the machine's); True if it was running."""
        stopped = self._process.stop(timeout=30.0)
        self._stop_orphaned_containerd()
        return stopped

    def _external_host(self) -> str | None:
        candidates = [os.environ.get("DOCKER_HOST", "")]
        if SYSTEM_SOCKET.exists():
            candidates.append(f"unix://{SYSTEM_SOCKET}")
        for host in candidates:
            if host and _pings(host):
                return host
        return None

    def _start(self) -> None:
        runtime = self.runtime_dir
        for path in (self.data_root, runtime / "exec"):
            path.mkdir(parents=True, exist_ok=True)
        self._process.start([
            DOCKERD_BINARY,
            "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
            "--data-root", str(self.data_root),
            "--exec-root", str(runtime / "exec"),
            "--pidfile", str(self.home / "docker" / "dockerd.pid"),
            "-H", self.own_host,
        ])

    def _stop_orphaned_containerd(self) -> None:
        """dockerd stops its containerd on SIGTERM, but not when it had to be killed."""
        pid_file = self.runtime_dir / "exec" / "containerd" / "containerd.pid"
        try:
            pid = int(pid_file.read_text().strip())
            # A stale pid may have been reused: only signal a containerd of this exec-root.
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "containerd" in cmdline and str(pid_file.parent) in cmdline:
                os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass


def _pings(host: str) -> bool:
    try:
        client = docker.DockerClient(base_url=host, timeout=3)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return False
    finally:
        client.close()
