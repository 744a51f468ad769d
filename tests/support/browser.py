"""Resume a suspended flow run through the Prefect UI in headless Chromium, as a release approver does.

    reason = browser_available()
    if reason:
        pytest.skip(reason)
    approve_in_ui(f"http://127.0.0.1:{settings.ports.prefect}", run_id, decision="approve", approver="ada",
                  reason="tests green", screenshot=tmp_path / "approval.png")

The work happens in tools/browser/approve.mjs (Playwright's ``playwright-core``, pinned by
tools/browser/package-lock.json, driving Debian's ``/usr/bin/chromium``; ``scripts/setup.sh``
installs both). It opens ``<ui>/runs/flow-run/<id>``, waits for the Suspended state, presses
Resume, fills the form the UI generates from the run input schema (Decision, Approver, Reason) and
submits; it succeeds only when the server answers the UI's resume request with ACCEPT and the UI
confirms. With ``screenshot`` set, the filled form is saved there, the page after the resume as
``<stem>.after.png`` and, on failure, the page as ``<stem>.failed.png``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Literal

__all__ = ["approve_in_ui", "browser_available", "BROWSER_DIR", "CHROMIUM"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = PROJECT_ROOT / "tools" / "browser"
SCRIPT = BROWSER_DIR / "approve.mjs"
# Debian's chromium; approve.mjs reads the same variable, so an override reaches both.
CHROMIUM = Path(os.environ.get("STAGEFLOW_CHROMIUM", "/usr/bin/chromium"))


def _node() -> str | None:
    return shutil.which("node") or ("/usr/bin/node" if Path("/usr/bin/node").exists() else None)


def browser_available() -> str | None:
    """Why the UI cannot be driven here (a pytest skip reason), or None when it can."""
    if _node() is None:
        return "node is not installed (Debian package nodejs; scripts/setup.sh)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian package chromium; run scripts/setup.sh)"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return f"{BROWSER_DIR / 'node_modules'} is missing playwright-core (run scripts/setup.sh)"
    return None


def approve_in_ui(ui_url: str, flow_run_id: str, *, decision: Literal["approve", "reject"] | str,
                  approver: str, reason: str, screenshot: Path | None = None,
                  timeout: float = 120) -> None:
    """Submit ``decision`` for the suspended flow run through the UI's resume form.

    Waits (within ``timeout`` seconds) for the run to be suspended first, so it may be called as
    soon as the run exists. Raises AssertionError carrying the script's output when the UI did not
    accept the submission (the message names the step that failed).
    """
    missing = browser_available()
    if missing:
        raise AssertionError(f"cannot drive the Prefect UI: {missing}")
    command = [_node(), str(SCRIPT), "--ui", ui_url, "--run", str(flow_run_id), "--decision", decision,
               "--approver", approver, "--reason", reason,
               # The script's own budget ends first, so its message (not a kill) explains a timeout.
               "--timeout", str(max(timeout - 15, timeout * 0.75))]
    if screenshot is not None:
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        command += ["--screenshot", str(screenshot)]
    proc = subprocess.Popen(command, cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as err:
        stdout, stderr = _stop(proc)
        raise AssertionError(f"approve.mjs did not finish within {timeout}s:\n{stdout}{stderr}") from err
    if proc.returncode != 0:
        raise AssertionError(f"approving flow run {flow_run_id} in the Prefect UI failed "
                             f"(exit {proc.returncode}):\n{stdout}{stderr}".rstrip())



def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """End node and its chromium. Playwright starts chromium in a process group of its own and
    closes it on SIGTERM; SIGKILL on node's session is the fallback (chromium then exits when its
    pipe to node closes)."""
    proc.terminate()
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()
