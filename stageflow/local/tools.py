"""Where the embedded platform finds its binaries: the cache scripts/build-tools.sh fills
(``~/.cache/stageflow/tools/bin``, or ``$STAGEFLOW_TOOLS_CACHE/bin``), then the PATH."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from stageflow.errors import TerminalError

__all__ = ["tool", "tools_bin"]


def tools_bin() -> Path:
    cache = os.environ.get("STAGEFLOW_TOOLS_CACHE") or str(Path.home() / ".cache" / "stageflow" / "tools")
    return Path(cache) / "bin"


def tool(name: str) -> str:
    """Absolute path of ``name``; a clear error says how to get it when it is missing."""
    candidate = tools_bin() / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise TerminalError(f"{name} not found in {tools_bin()} or on PATH: run `make setup` (scripts/build-tools.sh builds it)")
