"""The `stageflow` command without a platform: help, spec validation, input errors."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stageflow.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "infra"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stageflow.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command():
    out = run("--help").stdout
    for command in ("up", "down", "demo", "deploy", "sync", "status", "spec", "env", "release", "rollback", "approve",
                    "reject", "watch"):
        assert f"    {command}" in out, out


def test_spec_validate_accepts_the_example(capsys):
    assert main(["spec", "validate", str(EXAMPLE)]) == 0
    assert "valid" in capsys.readouterr().out


def test_spec_validate_lists_every_problem_and_exits_1(tmp_path):
    repo = tmp_path / "infra"
    shutil.copytree(EXAMPLE, repo)
    service = repo / "apps" / "shop" / "services" / "orders.yaml"
    service.write_text(service.read_text().replace("port: 8080", "port: 8080\ncolour: red"))
    version = repo / "apps" / "shop" / "test" / "orders.yaml"
    text = version.read_text()
    version.write_text(text.replace(text.split("digest: ")[1].split()[0], "sha256:nothex"))

    done = run("spec", "validate", str(repo))

    assert done.returncode == 1
    assert "apps/shop/services/orders.yaml: colour" in done.stderr, done.stderr
    assert "apps/shop/test/orders.yaml: image.digest" in done.stderr, done.stderr


def test_spec_validate_of_a_missing_folder_says_so(tmp_path):
    done = run("spec", "validate", str(tmp_path / "nope"))
    assert done.returncode == 1 and "not a directory" in done.stderr


def test_deploy_with_bad_input_fails_before_touching_a_platform(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGEFLOW_HOME", str(tmp_path / "no-platform"))
    done = subprocess.run([sys.executable, "-m", "stageflow.cli", "deploy", "Shop", "or_ders", "--commit", "xyz"],
                          capture_output=True, text=True, timeout=120, env={**__import__("os").environ})
    assert done.returncode == 1
    for field in ("app:", "service:", "commit:"):
        assert field in done.stderr, done.stderr
    assert not (tmp_path / "no-platform").exists()


def test_commands_that_need_the_platform_say_how_to_start_it(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGEFLOW_HOME", str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "stageflow.cli", "status"], capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ})
    assert done.returncode == 1 and "stageflow up" in done.stderr


def test_release_input_problems_are_named_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGEFLOW_HOME", str(tmp_path / "no-platform"))
    done = subprocess.run([sys.executable, "-m", "stageflow.cli", "release", "Shop", "orders", "v/1", "--requested-by",
                           " ", "--approval-timeout", "0"], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ})
    assert done.returncode == 1
    for field in ("app:", "version:", "requested_by:", "approval_timeout_seconds:"):
        assert field in done.stderr, done.stderr
    assert not (tmp_path / "no-platform").exists()


def test_approve_needs_a_run_id_and_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGEFLOW_HOME", str(tmp_path / "no-platform"))
    assert run("approve", "123").returncode == 2  # --reason is required
    done = subprocess.run([sys.executable, "-m", "stageflow.cli", "approve", "not-a-run", "--reason", "ok"],
                          capture_output=True, text=True, timeout=120, env={**__import__("os").environ})
    assert done.returncode == 1 and ("RUN_ID: must be a flow run id" in done.stderr or "stageflow up" in done.stderr)


@pytest.mark.parametrize("argv", [["deploy", "shop"], ["status", "--output", "yaml"], ["sync", "shop", "--stage", "dev"]])
def test_bad_command_lines_exit_2(argv):
    assert run(*argv).returncode == 2
