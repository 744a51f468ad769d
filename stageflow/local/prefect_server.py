"""The Prefect server of the embedded platform: ``prefect server start`` on SQLite under
``home/prefect``; its UI shows every flow run and artifact."""
from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from pathlib import Path

from stageflow.local.process import ManagedProcess, wait_until

__all__ = ["PrefectServer", "prefect_env"]


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment that points Prefect (server or client) at the embedded platform."""
    env = {
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect' / 'prefect.db'}",
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"),
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


class PrefectServer:
    def __init__(self, home: Path, port: int = 4200):
        self.home = home
        self.port = port
        self.proc = ManagedProcess("prefect-server", home)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        (self.home / "prefect").mkdir(parents=True, exist_ok=True)
        prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
        self.proc.start([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                        env=prefect_env(self.home))
        wait_until(self.healthy, timeout=120, what="Prefect server", interval=0.5, log=self.proc.log_file)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def stop(self) -> None:
        self.proc.stop()
