"""provision-database / deprovision-database at the prod stage: the real Terraform CLI on the
stand-in modules (terraform/standins: Terraform's built-in resources only, since providers cannot
be downloaded here), AWS Secrets Manager served by moto's server, the approval of the plan through
the suspended run, and the credentials synced into <app>-prod."""
from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from stageflow.adapters.kube import Kube
from stageflow.settings import PROJECT_ROOT
from stageflow.spec import database_path
from tests.integration.helpers import infra, infra_head
from tests.support.moto import moto_server
from tests.integration.release_helpers import (all_artifacts, all_logs, cli, released_service, start, wait_logs,
                                               wait_state)

pytestmark = pytest.mark.integration

APP = "pdb"
RUN = uuid.uuid4().hex[:5]


@pytest.fixture(scope="module")
def standin_cloud(settings):
    """moto's server as the AWS endpoint and the stand-in modules, in platform.json (flows read it
    per run); restored afterwards."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform CLI not installed: it is not in Debian and cannot be built from the Go proxy "
                    "(replace directives); install HashiCorp's release to run the prod database tests")
    server = moto_server()
    url = server.__enter__()
    tuned = settings.model_copy(update={"databases": settings.databases.model_copy(update={
        "aws_endpoint_url": url, "terraform_modules": str(PROJECT_ROOT / "terraform" / "standins"),
        "terraform_backend": "local", "module_inputs": {
            "postgres": {"db_subnet_group_name": "standin-private", "vpc_security_group_ids": ["sg-standin"]},
            "mongodb": {"project_id": "standin-project"}}})})
    tuned.save()
    try:
        yield tuned
    finally:
        settings.save()
        server.__exit__(None, None, None)


def secret_values(settings, app: str, name: str) -> dict[str, str] | None:
    found = Kube(settings.kubeconfig).read_secret(f"{app}-prod", name)
    return None if found is None else {k: v.get_secret_value() for k, v in found.items()}


def test_a_prod_database_is_planned_approved_applied_and_reachable_from_prod(settings, standin_cloud):
    import boto3

    svc = released_service(settings, APP, f"ledger-{RUN}")
    run_id = start("provision-database", app=APP, service=svc.name, stage="prod", engine="postgres",
                   requested_by="alice", reason="ledger goes live")
    wait_state(run_id, "PAUSED", timeout=240)
    wait_logs(run_id, "1 to add, 0 to change")
    code, out = cli("approve", run_id, "--as", "alice", "--reason", "mine")
    assert code == 1 and "may not approve it alone" in out
    code, out = cli("approve", run_id, "--as", "bob", "--reason", "plan adds one database")
    assert code == 0, out
    wait_state(run_id, "COMPLETED", timeout=240)

    secret = secret_values(settings, APP, f"{svc.name}-db")
    assert secret is not None and {"username", "password", "host", "port", "database"} <= set(secret)
    password = secret["password"]
    checkout = infra(settings, f"pdb-{RUN}")
    recorded = (checkout.workdir / database_path(APP, svc.name, "prod")).read_text()
    assert "provider: terraform" in recorded and "credentials: aws-secretsmanager:" in recorded
    root = (checkout.workdir / f"terraform/{APP}/{svc.name}/main.tf").read_text()
    assert 'module "database"' in root and "rds-postgres" in root
    sm = boto3.client("secretsmanager", region_name=standin_cloud.databases.aws_region,
                      endpoint_url=standin_cloud.databases.aws_endpoint_url, aws_access_key_id="x",
                      aws_secret_access_key="x")
    assert any(s["Name"].endswith(f"{APP}-{svc.name}-prod/master") for s in sm.list_secrets()["SecretList"])

    # Re-running finds nothing to change: no approval is asked for, no infra commit is made.
    head = infra_head(settings)
    again = start("provision-database", app=APP, service=svc.name, stage="prod", requested_by="alice")
    wait_state(again, "COMPLETED", timeout=240)
    assert infra_head(settings) == head and secret_values(settings, APP, f"{svc.name}-db")["password"] == password

    # The password is in no log, artifact or infra commit.
    artifacts = all_artifacts()
    history = subprocess.run(["git", "log", "-p", "--all"], cwd=checkout.workdir, capture_output=True, text=True,
                             check=True).stdout
    for where, text in (("logs", all_logs()), ("artifacts", artifacts), ("infra repo", history)):
        assert password not in text, f"the generated password leaked into the {where}"

    # Deleting it needs an approval too; the module takes a final snapshot; the Secret goes.
    gone = start("deprovision-database", app=APP, service=svc.name, stage="prod", requested_by="bob",
                 reason="ledger retired")
    wait_state(gone, "PAUSED", timeout=240)
    code, out = cli("approve", gone, "--as", "alice", "--reason", "retire it")
    assert code == 0, out
    wait_state(gone, "COMPLETED", timeout=300)
    assert secret_values(settings, APP, f"{svc.name}-db") is None
    names = [s["Name"] for s in sm.list_secrets()["SecretList"]]
    assert any("final-snapshots" in n and f"{APP}-{svc.name}-prod" in n for n in names), names
    checkout.sync()
    assert not (checkout.workdir / database_path(APP, svc.name, "prod")).exists()


def test_a_rejected_plan_changes_nothing(settings, standin_cloud):
    svc = released_service(settings, APP, f"audit-{RUN}")
    head = infra_head(settings)
    run_id = start("provision-database", app=APP, service=svc.name, stage="prod", engine="mongodb",
                   requested_by="alice")
    wait_state(run_id, "PAUSED", timeout=240)
    code, out = cli("reject", run_id, "--as", "bob", "--reason", "not now")
    assert code == 0, out
    final = wait_state(run_id, "FAILED", timeout=120)
    assert "rejected by bob: not now" in final.message
    assert secret_values(settings, APP, f"{svc.name}-db") is None
    checkout = infra(settings, f"pdb-rej-{RUN}")
    assert not (checkout.workdir / database_path(APP, svc.name, "prod")).exists()
    # Only the reviewable root was committed before the approval.
    assert (checkout.workdir / f"terraform/{APP}/{svc.name}/main.tf").exists()
    assert infra_head(settings) != head
