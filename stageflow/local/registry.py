"""The embedded platform's image registry: Debian's ``docker-registry`` (distribution 2.8) on
loopback, storing blobs under ``$STAGEFLOW_HOME/registry/data`` so images survive a restart.

Loopback registries are trusted over plain HTTP by Docker and by our Kubernetes nodes' containerd
config, so no TLS and no auth here.
"""
from __future__ import annotations

from pathlib import Path

import httpx

from stageflow.errors import TerminalError
from stageflow.local.process import ManagedProcess, port_open, wait_until

__all__ = ["LocalRegistry"]

REGISTRY_BINARY = "docker-registry"

_CONFIG = """\
# Written by stageflow: the embedded platform's registry.
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""


class LocalRegistry:
    """Start, adopt and stop the registry process ``registry`` of the embedded platform."""

    def __init__(self, home: Path, port: int = 5000, *, start_timeout: float = 30.0):
        self.home = Path(home)
        self.port = port
        self.start_timeout = start_timeout
        self._process = ManagedProcess("registry", self.home)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.home / "registry" / "config.yml"

    @property
    def data_dir(self) -> Path:
        return self.home / "registry" / "data"

    @property
    def log_file(self) -> Path:
        return self._process.log_file

    def pid(self) -> int | None:
        return self._process.pid()

    def running(self) -> bool:
        return self._process.running()

    def start(self) -> str:
        """Start the registry (or adopt the one already running) and wait until it answers; returns the address."""
        if self._process.running():
            self._check_adopted_port()
        else:
            if port_open(self.port):
                raise TerminalError(f"cannot start the registry: port {self.port} on 127.0.0.1 is taken by "
                                    "another process; choose another registry port")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.config_file.write_text(_CONFIG.format(data=self.data_dir, port=self.port))
            self._process.start([REGISTRY_BINARY, "serve", str(self.config_file)])
        # Stop polling as soon as the process dies, so a bad config fails fast with its log.
        wait_until(lambda: not self._process.running() or self._answers(), timeout=self.start_timeout,
                   what=f"registry on {self.address}", log=self.log_file)
        if not self._process.running():
            raise TerminalError(f"the registry exited during start-up{self._log_tail()}")
        return self.address

    def stop(self) -> bool:
        """Stop the registry; True if it was running. Stored images stay under ``data_dir``."""
        return self._process.stop()

    def _answers(self) -> bool:
        return httpx.get(f"http://{self.address}/v2/", timeout=1.0).status_code == 200

    def _check_adopted_port(self) -> None:
        """An adopted registry listens where its config says; refuse to pretend it is elsewhere."""
        written = f"addr: 127.0.0.1:{self.port}"
        try:
            config = self.config_file.read_text()
        except OSError:
            return
        if written not in config:
            raise TerminalError(f"a registry started earlier is running with another port (see {self.config_file}); "
                                f"stop it (`stageflow down`) before using port {self.port}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"\n--- last lines of {self.log_file} ---\n" + "\n".join(tail)
