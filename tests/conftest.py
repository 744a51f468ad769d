"""Test session settings, fixed before anything imports Prefect (it reads its settings once).

The integration tests start their own embedded platform under a fresh temporary
STAGEFLOW_HOME on free ports, so they never touch a platform a developer has running. Set
STAGEFLOW_TEST_HOME to a folder to keep (and reuse) that platform between runs.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from stageflow.local.prefect_server import prefect_env
from stageflow.local.process import free_port
from stageflow.settings import Ports

_keep = os.environ.get("STAGEFLOW_TEST_HOME")
TEST_HOME = Path(_keep) if _keep else Path(tempfile.mkdtemp(prefix="sf-test-"))
TEST_HOME.mkdir(parents=True, exist_ok=True)
_ports_file = TEST_HOME / "ports.json"
if _ports_file.exists():
    TEST_PORTS = Ports.model_validate_json(_ports_file.read_text())
else:
    TEST_PORTS = Ports(prefect=free_port(), registry=free_port(), apiserver=free_port(),
                       etcd_client=free_port(), etcd_peer=free_port())
    _ports_file.write_text(TEST_PORTS.model_dump_json())

os.environ["STAGEFLOW_HOME"] = str(TEST_HOME)
os.environ.update(prefect_env(TEST_HOME, f"http://127.0.0.1:{TEST_PORTS.prefect}/api"))
# Tests wait less than people: a missing image is reported after a few seconds, not a minute.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
