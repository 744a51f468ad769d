"""The flows as deployments on the embedded platform: `up` registered prefect.yaml and started a
process worker; GitHub Actions' step and Prefect events start real flow runs that the worker runs
against the test platform (its STAGEFLOW_HOME), checked through the Prefect API."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import yaml

from stageflow.local.deployments import WORK_POOL, register_deployments
from stageflow.settings import PROJECT_ROOT
from tests.integration.helpers import infra, new_service, push_change

pytestmark = pytest.mark.integration

ACTIONS = PROJECT_ROOT / "deployments" / "github-actions"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
APP, SERVICE = "ci", "web"


@pytest.fixture(scope="module")
def api(settings):
    with httpx.Client(base_url=settings.prefect_api_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def pushed(settings):
    """Service ci/web with an image CI pushed: (commit, digest)."""
    svc = new_service(settings, APP, SERVICE)
    return push_change(settings, svc, "web v1")


def deployment(api: httpx.Client, name: str) -> dict:
    return api.get(f"/deployments/name/{name}/{name}").raise_for_status().json()


def flow_runs_of(api: httpx.Client, deployment_id: str) -> list[dict]:
    return api.post("/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment_id]}}}).raise_for_status().json()


def wait_for(check, *, timeout: float, what: str, interval: float = 1.0):
    """Poll ``check`` until it returns something truthy; fail the test naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout:.0f}s")


# -- the GitHub Actions step, run as the runner runs it ----------------------------------------------
def run_step(settings, tmp_path: Path, inputs: dict[str, str], secret_key: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run call-deployment.yaml's step with the env build-to-test.yaml's call gives it; returns the
    process and what it wrote to $GITHUB_OUTPUT."""
    caller = yaml.safe_load((ACTIONS / "build-to-test.yaml").read_text())["jobs"]["deploy"]
    called = yaml.safe_load((ACTIONS / "call-deployment.yaml").read_text())
    step = called["jobs"]["run"]["steps"][0]
    assert caller["uses"] == "./.github/workflows/call-deployment.yaml"
    with_ = caller["with"]
    output, summary = tmp_path / "github_output", tmp_path / "step_summary"
    output.write_text("")
    env = {
        "PREFECT_API_URL": settings.prefect_api_url,
        "PREFECT_API_AUTH_STRING": "",
        # The embedded server has no auth and ignores the header; the step must still never print it.
        "PREFECT_API_KEY": secret_key,
        "DEPLOYMENT": with_["deployment"],
        "PARAMETERS": _format_expression(with_["parameters"], inputs),
        "IDEMPOTENCY_KEY": _inputs_expression(with_["idempotency-key"], inputs),
        "WATCH": "true",
        "TIMEOUT_MINUTES": str(with_["timeout-minutes"]),
        "POLL_SECONDS": step["env"]["POLL_SECONDS"],
    }
    assert set(env) == set(step["env"]), "the test sets exactly the env the step declares"
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                          env={**os.environ, **env, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)},
                          capture_output=True, text=True, timeout=600)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return done, outputs


def _inputs_expression(text: str, inputs: dict[str, str]) -> str:
    """Evaluate ``${{ inputs.NAME }}`` in a workflow string, as GitHub does."""
    return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: inputs[m.group(1)], text)


def _format_expression(text: str, inputs: dict[str, str]) -> str:
    """Evaluate ``${{ format('…', toJSON(inputs.a), …) }}``: the one expression shape build-to-test uses."""
    match = re.fullmatch(r"\$\{\{\s*format\('(.*)',\s*(.*)\)\s*\}\}", text.strip())
    assert match, f"unexpected parameters expression: {text}"
    names = re.findall(r"toJSON\(inputs\.([\w-]+)\)", match.group(2))
    # Left to right, as GitHub reads it: {{ and }} are braces, {N} is the N-th argument.
    return re.sub(r"\{\{|\}\}|\{(\d+)\}", lambda m: json.dumps(inputs[names[int(m.group(1))]]) if m.group(1)
                  else m.group(0)[0], match.group(1))


def test_github_actions_step_runs_build_to_test_once_per_idempotency_key(settings, api, pushed, tmp_path):
    commit, digest = pushed
    secret = f"pnu_{uuid.uuid4().hex}"
    inputs = {"app": APP, "service": SERVICE, "commit": commit}

    first, out = run_step(settings, tmp_path, inputs, secret)

    assert first.returncode == 0, first.stdout + first.stderr
    assert out["state"] == "COMPLETED"
    run_id = out["flow-run-id"]
    assert secret not in first.stdout + first.stderr
    run = api.get(f"/flow_runs/{run_id}").raise_for_status().json()
    build = deployment(api, "build-to-test")
    assert run["deployment_id"] == build["id"] and run["state_type"] == "COMPLETED"
    assert run["parameters"] == inputs and run["idempotency_key"] == f"build-to-test/{APP}/{SERVICE}/{commit}"
    # The run's results: the infra commit names this flow run, and its release record the digest.
    record = infra(settings, "deployments").find_commit_with_trailers(**{"Stageflow-Image-Digest": digest})
    assert record is not None and record.trailers["Stageflow-Flow-Run"] == run_id
    artifacts = api.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}).json()
    assert digest in next(a for a in artifacts if a["key"] == f"release-record-test-{APP}-{SERVICE}")["data"]

    again, out_again = run_step(settings, tmp_path, inputs, secret)

    assert again.returncode == 0, again.stdout + again.stderr
    assert out_again["flow-run-id"] == run_id
    same_commit = [r for r in flow_runs_of(api, build["id"]) if r["parameters"].get("commit") == commit]
    assert [r["id"] for r in same_commit] == [run_id]


def test_step_fails_naming_the_reason_when_the_flow_refuses_its_input(settings, tmp_path):
    bad, out = run_step(settings, tmp_path, {"app": APP, "service": SERVICE, "commit": "not a sha"}, "")
    assert bad.returncode != 0
    # The flow refuses the commit before any side effect; the step names the state and the reason.
    assert out.get("state") == "FAILED" and "commit" in bad.stdout, bad.stdout + bad.stderr


# -- events ---------------------------------------------------------------------------------------------
def test_infra_pushed_event_starts_sync_stage_for_that_app_stage(api, pushed):
    sync = deployment(api, "sync-stage")
    before = {r["id"] for r in flow_runs_of(api, sync["id"])}
    event = {
        "id": str(uuid.uuid4()), "occurred": datetime.now(timezone.utc).isoformat(),
        "event": "stageflow.infra.pushed",
        "resource": {"prefect.resource.id": f"stageflow.app.{APP}.test", "stageflow.app": APP, "stageflow.stage": "test"},
    }
    api.post("/events", json=[event]).raise_for_status()

    started = wait_for(lambda: [r for r in flow_runs_of(api, sync["id"]) if r["id"] not in before],
                       timeout=60, what="a sync-stage flow run triggered by the event")
    assert len(started) == 1 and started[0]["parameters"] == {"app": APP, "stage": "test"}
    run = wait_for(lambda: (r := api.get(f"/flow_runs/{started[0]['id']}").json())["state_type"] in TERMINAL and r,
                   timeout=300, what="the triggered sync-stage run to end")
    assert run["state_type"] == "COMPLETED", run["state"]


# -- registration -----------------------------------------------------------------------------------------
def test_every_deployment_of_prefect_yaml_is_registered_with_its_parameter_schema(embedded, settings, api):
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    declared = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]
    ids = {}
    for spec in declared:
        registered = deployment(api, spec["name"])
        ids[spec["name"]] = registered["id"]
        expected = parameter_schema(load_flow_from_entrypoint(str(PROJECT_ROOT / spec["entrypoint"]))).model_dump()
        schema = registered["parameter_openapi_schema"]
        assert registered["work_pool_name"] == WORK_POOL and registered["entrypoint"] == spec["entrypoint"]
        required = schema.get("required", [])
        assert required == expected.get("required", []) and set(required) <= set(schema["properties"])
        assert all(p.get("description") for p in schema["properties"].values()), "the UI form describes every field"

    # Registering again updates in place: same ids, one trigger automation each, not two.
    assert register_deployments(settings.home, settings.prefect_api_url) == sorted(f"{n}/{n}" for n in ids)
    assert {n: deployment(api, n)["id"] for n in ids} == ids
    automations = api.post("/automations/filter", json={}).raise_for_status().json()
    triggered = [a for a in automations if any(x.get("deployment_id") == ids["sync-stage"] for x in a["actions"])]
    assert len(triggered) == 1 and triggered[0]["trigger"]["expect"] == ["stageflow.infra.pushed"]


def test_worker_runs_with_the_platforms_home_and_is_online(embedded, settings):
    assert embedded.worker.online()
    environ = Path(f"/proc/{embedded.worker.proc.pid()}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    assert env["STAGEFLOW_HOME"] == str(settings.home) and env["PREFECT_API_URL"] == settings.prefect_api_url
    assert env["STAGEFLOW_PROJECT_DIR"] == str(PROJECT_ROOT)


def test_kubernetes_work_pool_template_is_accepted_by_the_server(api):
    """The server checks that every {{ placeholder }} of the job configuration is a declared variable."""
    template = json.loads((PROJECT_ROOT / "deployments" / "work-pools" / "kubernetes.json").read_text())
    name = f"stageflow-kubernetes-{uuid.uuid4().hex[:8]}"
    created = api.post("/work_pools/", json={"name": name, "type": "kubernetes", "base_job_template": template})
    assert created.status_code == 201, created.text
    defaults = created.json()["base_job_template"]["variables"]["properties"]
    assert defaults["env"]["default"]["STAGEFLOW_PLATFORM_BLOCK"] == "stageflow-platform"
    broken = json.loads(json.dumps(template).replace("{{ memory_limit }}", "{{ memory_limt }}"))
    refused = api.post("/work_pools/", json={"name": f"{name}-x", "type": "kubernetes", "base_job_template": broken})
    assert refused.status_code == 422
    api.delete(f"/work_pools/{name}")
