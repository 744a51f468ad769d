"""The EW stage's command builder. Telepresence itself cannot run here (it needs a real cluster
network, root and a TUN device): these tests check the invocation it would get and the refusals."""
from __future__ import annotations

import subprocess
import sys

import pytest

from stageflow.devloop import telepresence_commands
from stageflow.errors import ValidationFailed


def test_connects_to_the_apps_test_namespace_and_intercepts_the_service():
    assert telepresence_commands("shop", "orders", port=8080) == [
        ["telepresence", "connect", "--namespace", "shop-test"],
        ["telepresence", "intercept", "orders", "--port", "8080:8080"]]
    assert telepresence_commands("shop", "orders", port=80, local_port=9000, env_file="orders.env")[1] == [
        "telepresence", "intercept", "orders", "--port", "9000:80", "--env-file", "orders.env"]


@pytest.mark.parametrize("namespace", ["shop-prod", "other-prod", "kube-system", "other-test"])
def test_any_other_namespace_and_above_all_prod_is_refused(namespace):
    with pytest.raises(ValidationFailed) as caught:
        telepresence_commands("shop", "orders", port=8080, target_namespace=namespace)
    assert caught.value.problems[0].field == "namespace"
    if namespace.endswith("-prod"):
        assert "prod namespace" in str(caught.value)


def test_bad_names_and_ports_are_named():
    with pytest.raises(ValidationFailed) as caught:
        telepresence_commands("Shop", "or_ders", port=8080)
    assert {p.field for p in caught.value.problems} == {"app", "service"}
    with pytest.raises(ValidationFailed, match="port"):
        telepresence_commands("shop", "orders", port=0)


def test_the_cli_prints_the_commands_and_refuses_prod():
    run = [sys.executable, "-m", "stageflow.cli", "dev", "connect", "shop", "orders"]
    done = subprocess.run([*run, "--dry-run"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "$ telepresence connect --namespace shop-test" in done.stdout
    refused = subprocess.run([*run, "--namespace", "shop-prod"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "prod namespace" in refused.stderr and "telepresence" not in refused.stdout
