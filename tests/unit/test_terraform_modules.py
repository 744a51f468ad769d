"""The Terraform modules for prod databases and their stand-ins: formatted, valid, interchangeable.

The real modules need the hashicorp/aws, mongodb/mongodbatlas and hashicorp/random providers to
validate; where they cannot be downloaded (no network to registry.terraform.io) that test skips
and says so. The stand-ins use only Terraform's built-in provider and are validated for real.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stageflow.adapters.terraform import Terraform, TerraformUnavailable
from stageflow.errors import TerminalError
from stageflow.settings import PROJECT_ROOT
from stageflow.steps import render_db_root

TF_DIR = PROJECT_ROOT / "terraform"
MODULES = ["rds-postgres", "atlas-mongodb"]


def _terraform() -> str:
    try:
        return Terraform(PROJECT_ROOT).binary
    except TerminalError:
        pytest.skip("terraform CLI not installed (see scripts/build-tools.sh: it cannot be built from the Go proxy)")


def _copy(module_dir: Path, tmp_path: Path) -> Path:
    # Never leave .terraform/ or lock files in the source tree.
    target = tmp_path / module_dir.name
    shutil.copytree(module_dir, target, ignore=shutil.ignore_patterns(".terraform*"))
    return target


def test_modules_and_standins_are_terraform_fmt_clean() -> None:
    binary = _terraform()
    proc = subprocess.run([binary, "fmt", "-check", "-recursive", "-no-color", str(TF_DIR)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"not `terraform fmt` clean:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("module", MODULES)
def test_standin_has_the_same_variables_and_outputs(module: str) -> None:
    real, standin = TF_DIR / "modules" / module, TF_DIR / "standins" / module
    strip_header = lambda text: text.split("\n", 1)[1]  # noqa: E731 - the first line names the other copy
    assert strip_header((standin / "variables.tf").read_text()) == strip_header((real / "variables.tf").read_text())
    outputs = lambda d: sorted(re.findall(r'^output "(\w+)"', (d / "outputs.tf").read_text(), re.M))  # noqa: E731
    assert outputs(real) == outputs(standin) == sorted(render_db_root.OUTPUTS)


@pytest.mark.parametrize("module", MODULES)
def test_standin_validates(module: str, tmp_path: Path) -> None:
    _terraform()
    tf = Terraform(_copy(TF_DIR / "standins" / module, tmp_path))
    tf.init_without_backend()
    tf.validate()


@pytest.mark.parametrize("module", MODULES)
def test_real_module_validates(module: str, tmp_path: Path) -> None:
    _terraform()
    tf = Terraform(_copy(TF_DIR / "modules" / module, tmp_path))
    try:
        tf.init_without_backend()
    except TerraformUnavailable as exc:
        pytest.skip(f"providers cannot be downloaded here (registry.terraform.io unreachable): {str(exc)[:200]}")
    tf.validate()


def test_validate_reports_terraform_s_own_error(tmp_path: Path) -> None:
    """The check above can fail: a module referring to an undeclared variable is reported."""
    _terraform()
    broken = _copy(TF_DIR / "standins" / "rds-postgres", tmp_path)
    (broken / "extra.tf").write_text('output "oops" {\n  value = var.not_declared\n}\n')
    tf = Terraform(broken)
    tf.init_without_backend()
    with pytest.raises(TerminalError, match="Reference to undeclared input variable"):
        tf.validate()


INPUTS = {"postgres": {"db_subnet_group_name": "prod-db", "vpc_security_group_ids": ["sg-1", "sg-2"]},
          "mongodb": {"project_id": "p1"}}


def _render(engine: str, tmp_path: Path, inputs: dict) -> Path:
    result = render_db_root.run(render_db_root.Config(
        app="shop", service="cart-api", engine=engine, instance="shop-cart-api", backend="local",
        modules_source=str(TF_DIR / "standins"), inputs=inputs))
    assert result.path == "terraform/shop/cart-api/main.tf"
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(result.text)
    return root


@pytest.mark.parametrize("engine", ["postgres", "mongodb"])
def test_rendered_root_is_fmt_clean_and_valid(engine: str, tmp_path: Path) -> None:
    binary = _terraform()
    root = _render(engine, tmp_path, INPUTS[engine])
    proc = subprocess.run([binary, "fmt", "-check", "-diff", "-no-color", str(root)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tf = Terraform(root)
    tf.init_without_backend()
    tf.validate()


def test_rendered_root_with_an_input_the_module_lacks_does_not_validate(tmp_path: Path) -> None:
    _terraform()
    tf = Terraform(_render("postgres", tmp_path, {**INPUTS["postgres"], "project_id": "p1"}))
    tf.init_without_backend()
    with pytest.raises(TerminalError, match="Unsupported argument"):
        tf.validate()


def test_render_is_deterministic_and_escapes_templates() -> None:
    config = render_db_root.Config(app="shop", service="cart", engine="postgres", instance="shop-cart",
                                   modules_source="git::https://git.example/infra.git//terraform/modules?ref=v3",
                                   inputs={"db_subnet_group_name": "a${b}", "vpc_security_group_ids": ["sg-1"]})
    first, second = render_db_root.run(config), render_db_root.run(config)
    assert first.text == second.text
    assert 'source = "git::https://git.example/infra.git//terraform/modules/rds-postgres?ref=v3"' in first.text
    assert '"a$${b}"' in first.text
    assert 'backend "s3" {}' in first.text
    assert 'database_name          = "cart"' in first.text
