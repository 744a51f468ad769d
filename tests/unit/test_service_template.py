"""templates/service-python, rendered by the real Copier from a published (git-tagged) copy, and
the generated repository checked with the real tools: its own pytest, actionlint, the Dev
Container schema, the service chart's values schema, and Helm."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from stageflow.adapters.forge import LocalForge
from stageflow.adapters.helm import Helm, helm_binary
from stageflow.errors import TerminalError
from stageflow.local.tools import tools_bin
from stageflow.onboarding.render_repo import render_to
from stageflow.onboarding.request import TEMPLATES
from stageflow.onboarding.template_repo import publish_template
from stageflow.spec import DeployedVersion, ImageRef, ChartRef, Service
from stageflow.steps.helm_deploy import chart_values

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "service"
ANSWERS = {"app": "shop", "service": "orders", "port": 8081, "owners": ["alice", "acme/payments"],
           "database": "postgres", "registry": "127.0.0.1:5000"}
# The Dev Container schema is not shipped by any npm package (@devcontainers/cli 0.89 has none);
# point this at a copy of devcontainers/spec's schemas/devContainer.base.schema.json to use it.
DEVCONTAINER_SCHEMA_ENV = "STAGEFLOW_DEVCONTAINER_SCHEMA"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    published = publish_template(LocalForge(root / "forge"), "python")
    return render_to(published.clone_url, published.version, ANSWERS, root / "repo")


def test_the_repository_has_what_a_developer_needs(generated: Path) -> None:
    for path in (".copier-answers.yml", "Dockerfile", "Makefile", "CODEOWNERS", "README.md", "pyproject.toml",
                 ".github/workflows/ci.yaml", ".github/dependabot.yml", ".devcontainer/devcontainer.json",
                 "service/main.py", "tests/test_service.py"):
        assert (generated / path).is_file(), path
    answers = yaml.safe_load((generated / ".copier-answers.yml").read_text())
    assert answers["_commit"] == (TEMPLATES["python"] / "VERSION").read_text().strip()
    assert answers["_src_path"].endswith("stageflow-template-python.git")
    assert {k: answers[k] for k in ANSWERS} == ANSWERS
    assert (generated / "CODEOWNERS").read_text().splitlines()[-1] == "* @alice @acme/payments"
    assert "DEFAULT_PORT = 8081" in (generated / "service" / "main.py").read_text()


def test_its_own_tests_pass(generated: Path, tmp_path: Path) -> None:
    work = shutil.copytree(generated, tmp_path / "repo")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=work,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(work)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_dockerfile_is_multi_stage_non_root_with_base_arg_and_healthcheck(generated: Path) -> None:
    text = (generated / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert lines.index("ARG BASE_IMAGE=python:3.12-slim") < lines.index("FROM ${BASE_IMAGE} AS test")
    assert "FROM ${BASE_IMAGE} AS runtime" in lines
    assert "USER 10001:10001" in lines  # the chart runs as uid 10001 with runAsNonRoot
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert "/healthz" in text and "EXPOSE 8081" in lines


def test_workflow_passes_actionlint_and_wires_the_deployments(generated: Path) -> None:
    actionlint = tools_bin() / "actionlint"
    if not actionlint.is_file():
        actionlint = Path(shutil.which("actionlint") or "")
    if not actionlint.is_file():
        pytest.skip("actionlint is not installed (go install github.com/rhysd/actionlint/cmd/actionlint)")
    workflow = generated / ".github" / "workflows" / "ci.yaml"
    done = subprocess.run([str(actionlint), "-no-color", str(workflow)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    ci = yaml.safe_load(workflow.read_text())
    triggers = ci[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request", "release"} and triggers["release"] == {"types": ["published"]}
    assert ci["jobs"]["test"]["name"] == "test"  # the required check configure_repo sets
    deploy = ci["jobs"]["deploy-test"]
    assert deploy["uses"] == "./.github/workflows/call-deployment.yaml"
    assert deploy["with"]["deployment"] == "build-to-test/build-to-test"
    assert deploy["with"]["idempotency-key"].endswith("/${{ github.sha }}")  # one rollout per commit
    assert set(deploy["secrets"]) == {"PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "PREFECT_API_KEY"}
    release = ci["jobs"]["release-to-prod"]
    assert release["with"]["deployment"] == "release-to-prod/release-to-prod"
    # The generated repo calls deployments exactly as Stageflow's shipped reusable workflow does.
    shipped = Path(__file__).resolve().parents[2] / "deployments" / "github-actions" / "call-deployment.yaml"
    assert (generated / ".github" / "workflows" / "call-deployment.yaml").read_text() == shipped.read_text()


def test_devcontainer_has_the_toolchain_and_telepresence_needs(generated: Path) -> None:
    config = json.loads((generated / ".devcontainer" / "devcontainer.json").read_text())
    assert config["runArgs"] == ["--cap-add=NET_ADMIN", "--device=/dev/net/tun"]
    assert "python" in config["image"]
    assert any("kubectl-helm" in feature for feature in config["features"])
    assert "telepresence" in (generated / ".devcontainer" / "post-create.sh").read_text()
    assert config["forwardPorts"] == [8081]
    schema_path = os.environ.get(DEVCONTAINER_SCHEMA_ENV)
    if not schema_path:
        pytest.skip(f"no offline Dev Container schema: @devcontainers/cli does not ship one; set "
                    f"{DEVCONTAINER_SCHEMA_ENV} to devcontainers/spec's devContainer.base.schema.json")
    jsonschema.validate(config, json.loads(Path(schema_path).read_text()))


def test_makefile_documents_intercept(generated: Path) -> None:
    make = (generated / "Makefile").read_text()
    assert "intercept: ## " in make
    assert "telepresence connect --namespace $(APP)-test" in make
    assert "telepresence intercept $(SERVICE) --port $(PORT)" in make
    assert "APP      := shop" in make and "PORT     := 8081" in make
    assert "make intercept" in (generated / "README.md").read_text()


def test_generated_helm_values_match_the_chart_schema(generated: Path, tmp_path: Path) -> None:
    answers = yaml.safe_load((generated / ".copier-answers.yml").read_text())
    svc = Service(name=answers["service"], app=answers["app"], repository="shop-orders", port=answers["port"],
                  image=f"{answers['registry']}/shop/orders", database=answers["database"])
    version = DeployedVersion(app="shop", service="orders", stage="test", chart=ChartRef(),
                              image=ImageRef(repository=svc.image, digest="sha256:" + "ab" * 32))
    values = chart_values(svc, version)
    jsonschema.validate(values, json.loads((CHART / "values.schema.json").read_text()))
    try:
        binary = helm_binary()
    except TerminalError as exc:
        pytest.skip(f"helm is not built yet (`make setup`): {exc}")
    Helm(tmp_path / "kubeconfig", binary=binary).lint(CHART, values)
