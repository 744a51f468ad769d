"""The Secrets Manager adapter against moto's server: adopt before create, values stay wrapped,
botocore errors become Stageflow's, and no value ever reaches an error message."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from stageflow.adapters.secrets_manager import SecretsManager, SecretsManagerUnavailable
from stageflow.errors import NotFound, RetryableError, TerminalError
from stageflow.local.process import free_port

from tests.support.moto import moto_server

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture()
def sm(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> SecretsManager:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return SecretsManager(REGION, endpoint_url=moto_url)


def test_ensure_adopts_an_existing_secret_and_never_overwrites_it(sm: SecretsManager) -> None:
    arn = sm.ensure_secret("shop/cart/db", {"username": "cart", "password": "first-password-0123456789"})
    again = sm.ensure_secret("shop/cart/db", {"username": "cart", "password": "second-password-0123456789"})
    assert again == arn and arn.startswith("arn:aws:secretsmanager:eu-west-1:")
    creds = sm.read_secret(arn)
    assert creds["password"].get_secret_value() == "first-password-0123456789"
    assert "first-password" not in repr(creds) and "first-password" not in str(creds)
    assert sm.read_secret("shop/cart/db").keys() == {"username", "password"}


def test_delete_is_idempotent_and_force_frees_the_name(sm: SecretsManager) -> None:
    sm.ensure_secret("shop/gone/db", {"password": "x" * 24})
    assert sm.delete_secret("shop/gone/db", force=True) is True
    assert sm.delete_secret("shop/gone/db", force=True) is False
    assert sm.secret_arn("shop/gone/db") is None
    with pytest.raises(NotFound, match="shop/gone/db does not exist"):
        sm.read_secret("shop/gone/db")


def test_a_name_scheduled_for_deletion_is_a_terminal_error(sm: SecretsManager) -> None:
    sm.ensure_secret("shop/later/db", {"password": "y" * 24})
    sm.delete_secret("shop/later/db")  # recoverable for 7 days
    with pytest.raises(TerminalError, match="scheduled for deletion") as failed:
        sm.ensure_secret("shop/later/db", {"password": "z-must-not-appear-0123456789"})
    assert "z-must-not-appear" not in str(failed.value)


def test_a_non_json_secret_is_reported_without_its_value(sm: SecretsManager) -> None:
    sm._client.create_secret(Name="shop/raw/db", SecretString="plain-value-must-not-appear")
    with pytest.raises(TerminalError, match="not hold a JSON object") as failed:
        sm.read_secret("shop/raw/db")
    assert "plain-value" not in str(failed.value)


def test_an_unreachable_endpoint_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    down = SecretsManager(REGION, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SecretsManagerUnavailable, match="cannot reach Secrets Manager") as failed:
        down.ensure_secret("shop/x/db", {"password": "never-sent-0123456789"})
    assert isinstance(failed.value, RetryableError) and "never-sent" not in str(failed.value)


def test_invalid_requests_are_terminal(sm: SecretsManager) -> None:
    assert sm.delete_secret("shop/bad/db", recovery_days=1) is False  # absent: nothing to do
    sm.ensure_secret("shop/bad/db", {"a": "b"})
    with pytest.raises(TerminalError, match="InvalidParameterException") as failed:
        sm.delete_secret("shop/bad/db", recovery_days=1)  # AWS allows 7-30 days
    assert not isinstance(failed.value, RetryableError)


def test_command_line_generates_a_password_it_never_prints(moto_url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": moto_url, "AWS_REGION": REGION,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    cmd = [sys.executable, "-m", "stageflow.adapters.secrets_manager", "ensure", "--name", "shop/cli/db",
           "--field", "username=cli", "--generate", "password"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert first.stdout == second.stdout and first.stdout.startswith("arn:aws:secretsmanager:")
    password = SecretsManager(REGION, endpoint_url=moto_url).read_secret("shop/cli/db")["password"]
    assert len(password.get_secret_value()) == 32
    assert password.get_secret_value() not in first.stdout + first.stderr + second.stdout + second.stderr
