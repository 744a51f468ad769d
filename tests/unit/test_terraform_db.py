"""Prod databases end to end through Terraform, against the stand-in modules and moto's server.

No cloud, no provider download: the roots are rendered with terraform/standins (built-in
``terraform_data`` only) and their provisioners talk to moto's Secrets Manager through
``AWS_ENDPOINT_URL``. What runs is the real Terraform CLI, the real adapter and the real steps:
render -> plan (saved) -> summary -> apply exactly that plan -> outputs -> re-plan is empty ->
failures are translated -> destroy. The generated password must never show up in anything
Terraform printed, in any exception, or in the state.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from stageflow.adapters.secrets_manager import SecretsManager
from stageflow.adapters.terraform import StateLocked, Terraform, TerraformFailed, TerraformUnavailable
from stageflow.errors import RetryableError, TerminalError
from stageflow.settings import PROJECT_ROOT
from stageflow.local.process import free_port
from stageflow.steps import apply_database, plan_database, render_db_root

from tests.support.moto import moto_server

REGION = "eu-west-1"
STANDINS = PROJECT_ROOT / "terraform" / "standins"
PG_INPUTS = {"db_subnet_group_name": "prod-db", "vpc_security_group_ids": ["sg-1"]}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture()
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"AWS_ENDPOINT_URL": moto_url, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture()
def sm(moto_url: str, aws_env: dict[str, str]) -> SecretsManager:
    return SecretsManager(REGION, endpoint_url=moto_url)


class Root:
    """A rendered root in tmp, its state file, its plan files and everything Terraform printed."""

    def __init__(self, tmp: Path, env: dict[str, str], engine: str, instance: str, inputs: dict):
        self.tf = _terraform(tmp / "root", env=env, log_output=self.transcript_add)
        self.tmp, self.engine, self.instance = tmp, engine, instance
        self.transcript: list[str] = []
        self.errors: list[str] = []
        self.state = tmp / "state" / "terraform.tfstate"
        self.render(inputs)

    def transcript_add(self, text: str) -> None:
        self.transcript.append(text)

    def render(self, inputs: dict) -> None:
        result = render_db_root.run(render_db_root.Config(
            app="shop", service="cart", engine=self.engine, instance=self.instance, backend="local",
            modules_source=str(STANDINS), inputs=inputs))
        (self.tmp / "root").mkdir(exist_ok=True)
        (self.tmp / "root" / "main.tf").write_text(result.text)

    def plan(self, name: str, *, destroy: bool = False) -> plan_database.Result:
        return plan_database.run(plan_database.Config(
            plan_file=self.tmp / "plans" / f"{name}.tfplan", destroy=destroy, title="terraform/shop/cart",
            backend_config={"path": str(self.state)}), self.tf)

    def apply(self, name: str, *, destroy: bool = False) -> apply_database.Result:
        try:
            return apply_database.run(apply_database.Config(plan_file=self.tmp / "plans" / f"{name}.tfplan",
                                                            destroy=destroy), self.tf)
        except Exception as exc:
            self.errors.append(str(exc))
            raise

    def assert_never_printed(self, secret: str) -> None:
        assert len(secret) >= 20
        assert self.transcript, "nothing was captured: the check below would prove nothing"
        for text in self.transcript + self.errors:
            assert secret not in text
        assert secret not in self.state.read_text()


def test_postgres_plan_apply_replan_destroy(tmp_path: Path, aws_env: dict[str, str], sm: SecretsManager) -> None:
    root = Root(tmp_path, aws_env, "postgres", "shop-cart", PG_INPUTS)

    planned = root.plan("create")
    assert planned.summary.add == ["module.database.terraform_data.instance"]
    assert planned.summary.destroy == [] and planned.summary.replace == [] and planned.summary.has_changes
    assert "1 to add, 0 to change, 0 to replace, 0 to destroy" in planned.markdown
    assert "`module.database.terraform_data.instance`" in planned.markdown
    assert planned.plan_file.stat().st_mode & 0o077 == 0, "plan files hold variables: owner-only"

    applied = root.apply("create")
    assert applied.applied and applied.outputs is not None
    assert applied.outputs.endpoint == "shop-cart.standin.rds.invalid"
    assert applied.outputs.port == 5432 and applied.outputs.instance == "shop-cart"
    creds = sm.read_secret(applied.outputs.credentials_secret)
    assert creds["username"].get_secret_value() == "stageflow"
    password = creds["password"].get_secret_value()
    assert root.tf.state_list() == ["module.database.terraform_data.instance"]

    again = root.plan("again")
    assert not again.summary.has_changes and "No changes" in again.markdown
    # A retried apply of the already-applied plan: Terraform calls it stale, the step adopts it.
    assert root.apply("create").applied is False
    assert sm.read_secret(applied.outputs.credentials_secret)["password"].get_secret_value() == password

    # RDS refuses to delete a protected instance: a terminal error that says why, nothing deleted.
    assert root.plan("destroy-protected", destroy=True).summary.destroy == ["module.database.terraform_data.instance"]
    with pytest.raises(TerraformFailed, match="Cannot delete protected DB Instance shop-cart") as failed:
        root.apply("destroy-protected", destroy=True)
    assert not isinstance(failed.value, RetryableError)
    assert "command failed (exit status 1)" in str(failed.value)
    assert sm.secret_arn(applied.outputs.credentials_secret) is not None

    # The reviewed way down: protection off (an in-place change), then destroy.
    root.render({**PG_INPUTS, "deletion_protection": False})
    unprotect = root.plan("unprotect")
    assert unprotect.summary.change == ["module.database.terraform_data.instance"] and not unprotect.summary.add
    root.apply("unprotect")
    gone = root.plan("destroy", destroy=True)
    assert gone.summary.destroy_plan and "Warning" in gone.markdown
    assert root.apply("destroy", destroy=True).outputs is None
    assert sm.secret_arn(applied.outputs.credentials_secret) is None
    assert sm.secret_arn("stageflow-standin/final-snapshots/shop-cart-final") is not None
    assert root.tf.state_list() == []
    assert not root.plan("after", destroy=True).summary.has_changes
    root.assert_never_printed(password)


def test_mongodb_failed_create_is_translated_and_a_rerun_converges(
        tmp_path: Path, aws_env: dict[str, str], sm: SecretsManager) -> None:
    secret = "stageflow/shop/cart/mongodb"
    # Secrets Manager unreachable while applying: retryable, and the half-made resource is tainted.
    unreachable = {**aws_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    root = Root(tmp_path, unreachable, "mongodb", "shop-cart", {"project_id": "p1"})
    root.plan("create")
    with pytest.raises(TerraformUnavailable, match="cannot reach Secrets Manager"):
        root.apply("create")
    assert sm.secret_arn(secret) is None

    # The same name still scheduled for deletion (a cluster torn down last week): terminal, says why.
    sm.ensure_secret(secret, {"username": "old"})
    sm.delete_secret(secret)
    root.tf = Terraform(tmp_path / "root", env=aws_env, log_output=root.transcript_add, lock_timeout="1s")
    replan = root.plan("retry")
    assert replan.summary.replace == ["module.database.terraform_data.cluster"]  # tainted by the failure
    with pytest.raises(TerraformFailed, match="scheduled for deletion"):
        root.apply("retry")

    # Once the operator restored it, the re-run adopts it (adopt before create) and converges.
    boto = sm._client  # the restore is the operator's action, not something Stageflow does
    boto.restore_secret(SecretId=secret)
    root.plan("rerun")
    applied = root.apply("rerun")
    assert applied.outputs is not None and applied.outputs.credentials_secret == secret
    assert applied.outputs.endpoint == "mongodb+srv://shop-cart.standin.mongodb.invalid"
    assert applied.outputs.port == 27017
    assert sm.read_secret(secret)["username"].get_secret_value() == "old"
    assert not root.plan("converged").summary.has_changes


def test_fresh_create_never_prints_the_password(tmp_path: Path, aws_env: dict[str, str], sm: SecretsManager) -> None:
    root = Root(tmp_path, aws_env, "mongodb", "shop-orders", {"project_id": "p1", "username": "orders",
                                                              "secret_name": "stageflow/shop/orders/mongodb"})
    root.plan("create")
    outputs = root.apply("create").outputs
    assert outputs is not None
    password = sm.read_secret(outputs.credentials_secret)["password"].get_secret_value()
    assert any("Creation complete" in t for t in root.transcript)
    root.assert_never_printed(password)


def test_a_held_state_lock_is_retryable(tmp_path: Path) -> None:
    """Another run applying (its provisioner waits for a file): our plan gets StateLocked."""
    root = tmp_path / "root"
    root.mkdir()
    go = tmp_path / "go"
    (root / "main.tf").write_text(
        'terraform {\n  backend "local" {}\n}\n\nvariable "n" {\n  type = number\n}\n\n'
        'resource "terraform_data" "slow" {\n  input = var.n\n\n  provisioner "local-exec" {\n'
        f'    command = "while [ ! -f {go} ]; do sleep 0.1; done"\n  }}\n}}\n')
    tf = _terraform(root)
    tf.init({"path": str(tmp_path / "state" / "terraform.tfstate")})
    tf.plan(tmp_path / "one.tfplan", {"n": 1})
    holder = subprocess.Popen([tf.binary, "apply", "-no-color", "-input=false", str(tmp_path / "one.tfplan")],
                              cwd=root, env=tf._env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lock = tmp_path / "state" / ".terraform.tfstate.lock.info"
        deadline = time.monotonic() + 30
        while not lock.exists():
            assert time.monotonic() < deadline and holder.poll() is None, "the other apply never took the lock"
            time.sleep(0.1)
        with pytest.raises(StateLocked, match="Error acquiring the state lock") as locked:
            tf.plan(tmp_path / "two.tfplan", {"n": 2})
        assert isinstance(locked.value, RetryableError)
    finally:
        go.touch()
        holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert tf.plan(tmp_path / "two.tfplan", {"n": 2}).change == ["terraform_data.slow"]


def _terraform(root: Path, **kwargs) -> Terraform:
    try:
        return Terraform(root, lock_timeout="1s", **kwargs)
    except TerminalError:
        pytest.skip("terraform CLI not installed (see scripts/build-tools.sh: it cannot be built from the Go proxy)")


def test_sensitive_variables_are_scrubbed_from_errors(tmp_path: Path) -> None:
    """A provisioner that prints a variable not declared sensitive: Terraform would show the value
    (in the command and its output); the adapter scrubs what it was given as SecretStr."""
    root = tmp_path / "leaky"
    root.mkdir()
    (root / "main.tf").write_text(
        'variable "token" {\n  type = string\n}\n\n'
        'resource "terraform_data" "leak" {\n  provisioner "local-exec" {\n'
        '    command = "echo token=${var.token} >&2; exit 3"\n  }\n}\n')
    leaked = "s3cr3t-Value-that-must-not-leak"
    transcript: list[str] = []
    tf = _terraform(root, log_output=transcript.append)
    tf.init()
    tf.plan(tmp_path / "leak.tfplan", {"token": SecretStr(leaked)})
    applier = Terraform(root, log_output=transcript.append)  # another process applies: it is told
    with pytest.raises(TerraformFailed, match="exit status 3") as failed:
        apply_database.run(apply_database.Config(plan_file=tmp_path / "leak.tfplan",
                                                 variables={"token": SecretStr(leaked)}), applier)
    assert "token=(sensitive value)" in str(failed.value), "the scrub replaced the value, not the message"
    assert leaked not in str(failed.value)
    assert transcript and all(leaked not in t for t in transcript)


def test_sensitive_outputs_come_back_wrapped_and_are_never_logged(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text('variable "pw" {\n  type = string\n}\n\n'
                                  'output "pw" {\n  value     = var.pw\n  sensitive = true\n}\n\n'
                                  'output "host" {\n  value = "db.invalid"\n}\n')
    transcript: list[str] = []
    tf = _terraform(root, log_output=transcript.append)
    tf.init()
    value = "plain-string-but-a-sensitive-output"  # not a SecretStr: only the output's own marking protects it
    tf.plan(tmp_path / "p.tfplan", {"pw": value})
    tf.apply(tmp_path / "p.tfplan")
    outputs = tf.output()
    assert outputs["host"] == "db.invalid"
    assert isinstance(outputs["pw"], SecretStr) and outputs["pw"].get_secret_value() == value
    assert any("terraform output" in t for t in transcript)
    assert all(value not in t for t in transcript)
