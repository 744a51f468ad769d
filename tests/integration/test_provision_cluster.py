"""provision-cluster end to end: the deployment run renders and commits the root, plans with the
real Terraform CLI on the stand-in module (terraform/standins/cluster: built-in resources only,
since providers cannot be downloaded here), suspends for the approval, applies exactly that plan
when resumed, and saves the kubeconfig as block stageflow-kubeconfig/<name>.

The decision is given the way the Prefect UI gives it (the run's input form, resume_flow_run):
`stageflow approve` looks the approvers up by the run's ``app`` parameter, which a cluster run has
not (see the report of issue 7)."""
from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest
import yaml

from stageflow.settings import PROJECT_ROOT
from tests.integration.helpers import infra, infra_head
from tests.integration.release_helpers import cli, new_app, start, wait_logs, wait_state

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:5]
SUBNETS = {"subnet_ids": ["subnet-standin-a", "subnet-standin-b"]}
MODULES = PROJECT_ROOT / "terraform"


def _terraform_missing() -> bool:
    return shutil.which("terraform") is None


needs_terraform = pytest.mark.skipif(_terraform_missing(), reason=(
    "terraform CLI not installed: it is not in Debian and cannot be built from the Go proxy; install "
    "HashiCorp's release to run the provision-cluster tests"))


@pytest.fixture(scope="module")
def standin_modules(settings):
    """The stand-in modules and a local state backend, in platform.json (flows read it per run);
    an app with approvers, so the platform has some; restored afterwards."""
    tuned = settings.model_copy(update={"databases": settings.databases.model_copy(update={
        "terraform_modules": str(MODULES / "standins"), "terraform_backend": "local"})})
    tuned.save()
    new_app(settings, "pcl")  # approvers: alice, bob
    try:
        yield tuned
    finally:
        settings.save()


def decide(run_id: str, decision: str, approver: str, reason: str) -> None:
    """What the Prefect UI's approval form sends."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(uuid.UUID(run_id), run_input={"decision": decision, "approver": approver, "reason": reason})


def stored_kubeconfig(name: str) -> str | None:
    from blocks.kubeconfig import StageflowKubeconfig

    try:
        return StageflowKubeconfig.load(name).kubeconfig.get_secret_value()
    except ValueError:  # Prefect: "Unable to find block document named ..."
        return None


def terraform_root(settings, name: str):
    from stageflow.adapters.terraform import Terraform

    return Terraform(settings.home / "terraform-clusters" / name)


@needs_terraform
def test_the_real_module_and_its_stand_in_share_variables_and_are_fmt_clean():
    real, standin = MODULES / "modules" / "cluster", MODULES / "standins" / "cluster"
    for shared in ("variables.tf", "kubeconfig.tftpl"):
        assert (real / shared).read_text() == (standin / shared).read_text(), shared
    fmt = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(real), str(standin)],
                         capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@needs_terraform
def test_a_cluster_is_planned_approved_applied_and_its_kubeconfig_saved(settings, standin_modules, tmp_path):
    name = f"pc-{RUN}"
    run_id = start("provision-cluster", name=name, requested_by="alice", reason="prod moves to EKS",
                   module_inputs=SUBNETS)
    wait_state(run_id, "PAUSED", timeout=240)
    wait_logs(run_id, "2 to add, 0 to change")
    assert stored_kubeconfig(name) is None, "saved before the approval"
    # The requester may not approve alone: refused in the log, asked again under the next key.
    decide(run_id, "approve", "alice", "mine")
    wait_state(run_id, "PAUSED", timeout=120, paused_key="approval-2")
    assert "may not approve it alone" in wait_logs(run_id, "decision 1 refused")
    # From the command line, the same rules: the approvers of every app, never the requester alone.
    code, out = cli("approve", run_id, "--as", "alice", "--reason", "mine again")
    assert code == 1 and "may not approve it alone" in out
    code, out = cli("approve", run_id, "--as", "bob", "--reason", "plan adds one cluster")
    assert code == 0 and f"cluster {name}" in out, out
    wait_state(run_id, "COMPLETED", timeout=240)

    # The block holds exactly what the module put out, and writes it owner-only.
    produced = terraform_root(settings, name).output()["kubeconfig"].get_secret_value()
    assert stored_kubeconfig(name) == produced
    doc = yaml.safe_load(produced)
    assert doc["current-context"] == name
    assert doc["clusters"][0]["cluster"]["server"].startswith("https://")
    exec_ = doc["users"][0]["user"]["exec"]
    assert exec_["command"] == "aws" and exec_["args"][:4] == ["eks", "get-token", "--cluster-name", name]
    assert settings.databases.aws_region in exec_["args"]
    from blocks.kubeconfig import StageflowKubeconfig

    path = StageflowKubeconfig.load(name).get_kubeconfig_path(tmp_path)
    assert path.read_text() == produced and path.stat().st_mode & 0o777 == 0o600

    checkout = infra(settings, f"pcl-{RUN}")
    root = (checkout.workdir / f"terraform/cluster/{name}/main.tf").read_text()
    assert 'module "cluster"' in root and "standins/cluster" in root and "subnet-standin-a" in root

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"cluster-{name}"])))
    assert artifacts and f"stageflow-kubeconfig/{name}" in str(artifacts[0].data)
    assert "apiVersion" not in str(artifacts[0].data)

    # Re-running finds nothing to change: no approval, no infra commit, the same block.
    head = infra_head(settings)
    again = start("provision-cluster", name=name, requested_by="alice", module_inputs=SUBNETS)
    assert wait_state(again, {"COMPLETED", "PAUSED"}, timeout=240).type.value == "COMPLETED", \
        "a plan without changes asked for an approval"
    assert "waiting for an approver" not in wait_logs(again, "nothing to apply")
    assert infra_head(settings) == head and stored_kubeconfig(name) == produced


@needs_terraform
def test_a_rejected_cluster_plan_applies_nothing(settings, standin_modules):
    name = f"pc-rej-{RUN}"
    run_id = start("provision-cluster", name=name, requested_by="alice", module_inputs=SUBNETS)
    wait_state(run_id, "PAUSED", timeout=240)
    decide(run_id, "reject", "bob", "not now")
    final = wait_state(run_id, "FAILED", timeout=120)
    assert "rejected by bob: not now" in final.message
    assert stored_kubeconfig(name) is None
    assert terraform_root(settings, name).state_list() == []
    assert not list((settings.home / "plans").glob(f"{run_id}*")), "the rejected plan was kept"


@needs_terraform
def test_missing_network_inputs_are_named_before_anything_is_planned(settings, standin_modules):
    name = f"pc-bare-{RUN}"
    run_id = start("provision-cluster", name=name, requested_by="alice")
    final = wait_state(run_id, "FAILED", timeout=120)
    assert "module_inputs.subnet_ids: is required" in final.message, final.message
    assert not (settings.home / "terraform-clusters" / name).exists()
