"""Background processes of the embedded platform: started detached, tracked by pid files under
``$STAGEFLOW_HOME/run``, logs under ``$STAGEFLOW_HOME/logs``, stopped by ``stageflow down``.

Each component is started once and adopted when its pid file names a live process, so
``stageflow up`` is safe to run twice.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stageflow.errors import RetryableError, TerminalError

__all__ = ["ManagedProcess", "free_port", "port_open", "wait_until"]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.25,
               log: Path | None = None) -> None:
    """Poll ``check`` until it is true; raise RetryableError naming ``what`` (and the log tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - a failing probe just means "not yet"
            pass
        time.sleep(interval)
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- last lines of " + str(log) + " ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RetryableError(f"{what} did not become ready within {timeout:.0f}s{tail}")


@dataclass
class ManagedProcess:
    """One detached process of the embedded platform, named for its pid and log files."""

    name: str
    home: Path

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the live process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            self.pid_file.unlink(missing_ok=True)
            return None
        except PermissionError:
            return pid
        # A zombie child still answers kill(0); treat it as gone.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1]
            if state == "Z":
                self.pid_file.unlink(missing_ok=True)
                return None
        except OSError:
            pass
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        """Start ``argv`` detached (own session, so it outlives the caller) unless already running."""
        pid = self.pid()
        if pid is not None:
            return pid
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {})}
        with open(self.log_file, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=full_env, cwd=str(cwd) if cwd else None, start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise TerminalError(f"cannot start {self.name}: {argv[0]} not found (run `make setup`)") from exc
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the process group (SIGTERM, then SIGKILL); True if something was running."""
        pid = self.pid()
        if pid is None:
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            except PermissionError:
                os.kill(pid, sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._alive(pid):
                time.sleep(0.1)
            if not self._alive(pid):
                break
        self.pid_file.unlink(missing_ok=True)
        return True

    def pause(self) -> None:
        """SIGSTOP the process group: used by fault tests to make a component unavailable."""
        pid = self.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGSTOP)

    def resume(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGCONT)

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
        except OSError:
            return False
