"""The GitHub Actions workflows the project ships: actionlint passes on each, in the repository
layout they are published in (so calls to local reusable workflows are checked against their
inputs and secrets), and the infra repo's diff step finds the changed app stages in a real repo."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stageflow.local.tools import tools_bin

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deployments" / "github-actions"
INFRA_TEMPLATE = ROOT / "templates" / "infra-repo" / ".github" / "workflows"


def workflow_files() -> list[Path]:
    return sorted(SHIPPED.glob("*.yaml")) + sorted(ROOT.glob("templates/**/.github/workflows/*.yaml"))


@pytest.fixture(scope="module")
def actionlint() -> str:
    binary = tools_bin() / "actionlint"
    if not binary.is_file():
        pytest.skip(f"actionlint is not built in {tools_bin()}: run scripts/build-tools.sh")
    return str(binary)


def published(tmp_path: Path, files: list[Path]) -> Path:
    """A git repository with ``files`` in .github/workflows, as GitHub would read them."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    target = tmp_path / ".github" / "workflows"
    target.mkdir(parents=True)
    for f in files:
        shutil.copy(f, target / f.name)
    return tmp_path


def lint(actionlint: str, repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint, "-no-color"], cwd=repo, capture_output=True, text=True)


def test_project_ships_the_workflows():
    names = {p.relative_to(ROOT).as_posix() for p in workflow_files()}
    assert {"deployments/github-actions/call-deployment.yaml", "deployments/github-actions/build-to-test.yaml",
            "templates/infra-repo/.github/workflows/sync-stage.yaml"} <= names


@pytest.mark.parametrize("group", ["deployments/github-actions", *sorted(
    {p.parent.parent.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("templates/**/.github/workflows/*.yaml")})])
def test_actionlint_passes(actionlint, tmp_path, group):
    folder = ROOT / group
    files = sorted(folder.glob("*.yaml")) if folder == SHIPPED else sorted((folder / ".github" / "workflows").glob("*.yaml"))
    result = lint(actionlint, published(tmp_path, files))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_wrong_input_of_a_reusable_workflow(actionlint, tmp_path):
    """The check above would see a caller passing an input call-deployment does not declare."""
    repo = published(tmp_path, sorted(SHIPPED.glob("*.yaml")))
    caller = repo / ".github" / "workflows" / "build-to-test.yaml"
    caller.write_text(caller.read_text().replace("idempotency-key:", "idempotency_key:"))
    result = lint(actionlint, repo)
    assert result.returncode == 1 and "idempotency_key" in result.stdout


def test_infra_repo_carries_the_shipped_call_deployment():
    assert (INFRA_TEMPLATE / "call-deployment.yaml").read_text() == (SHIPPED / "call-deployment.yaml").read_text()


def test_secrets_reach_the_step_through_env_only():
    """No ${{ }} expression inside a run script (script injection), and no secret in a with: input."""
    for path in workflow_files():
        workflow = yaml.safe_load(path.read_text())
        for job in workflow["jobs"].values():
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{path.name}: {step.get('name')} expands an expression in run"
            assert "secrets." not in json.dumps(job.get("with", {})), f"{path.name}: a secret passed as an input"


def _diff_step() -> dict:
    workflow = yaml.safe_load((INFRA_TEMPLATE / "sync-stage.yaml").read_text())
    return next(s for s in workflow["jobs"]["changes"]["steps"] if s.get("id") == "diff")


def _commit(repo: Path, files: dict[str, str | None], message: str) -> str:
    for name, text in files.items():
        path = repo / name
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def _changed_targets(repo: Path, before: str, after: str, tmp_path: Path) -> list[dict]:
    step = _diff_step()
    output = tmp_path / "github_output"
    output.write_text("")
    env = {**os.environ, "BEFORE": before, "AFTER": after, "GITHUB_OUTPUT": str(output)}
    assert set(step["env"]) == {"BEFORE", "AFTER"}, "the test sets every env var the step reads"
    subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=repo, env=env,
                   check=True, capture_output=True, text=True)
    line = next(line for line in output.read_text().splitlines() if line.startswith("targets="))
    return json.loads(line.removeprefix("targets="))


def test_diff_step_lists_each_changed_app_stage_once(tmp_path):
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    repo = tmp_path / "infra"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    first = _commit(repo, {"platform.yaml": "kind: Platform\n", "apps/shop/app.yaml": "kind: App\n",
                           "apps/shop/services/orders.yaml": "kind: Service\n",
                           "apps/shop/test/orders.yaml": "v1\n", "apps/shop/test/cart.yaml": "v1\n",
                           "apps/shop/prod/orders.yaml": "v1\n"}, "first")
    second = _commit(repo, {"apps/shop/test/orders.yaml": "v2\n", "apps/shop/test/cart.yaml": "v2\n",
                            "apps/shop/app.yaml": "kind: App # owners\n", "apps/shop/services/orders.yaml": None,
                            "apps/blog/prod/web.yaml": "v1\n"}, "second")

    assert _changed_targets(repo, first, second, tmp_path) == [
        {"app": "blog", "stage": "prod"}, {"app": "shop", "stage": "test"}]
    # First push of the branch: GitHub sends an all-zero "before"; everything counts as changed.
    assert _changed_targets(repo, "0" * 40, first, tmp_path) == [
        {"app": "shop", "stage": "prod"}, {"app": "shop", "stage": "test"}]
    only_app = _commit(repo, {"apps/shop/app.yaml": "kind: App # approvers\n"}, "third")
    assert _changed_targets(repo, second, only_app, tmp_path) == []
