"""The whole infrastructure repository: loading, rules that span files, and PlatformSpec look-ups.

Each test starts from a copy of ``examples/infra`` (so the example itself is kept valid) and
breaks one thing in it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stageflow.errors import NotFound, ValidationFailed
from stageflow.spec import (
    DeployedVersion,
    PlatformSpec,
    load_spec,
    new_infra_tree,
    parse_file,
    to_yaml,
    validate_tree,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "infra"
DIGEST = "sha256:" + "a1" * 32


@pytest.fixture
def infra(tmp_path: Path) -> Path:
    root = tmp_path / "infra"
    shutil.copytree(EXAMPLE, root)
    return root


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new))


def messages(root: Path) -> list[str]:
    return [str(problem) for problem in validate_tree(root)]


def version_yaml(app: str = "shop", service: str = "orders", stage: str = "test") -> str:
    return to_yaml(DeployedVersion.model_validate({
        "app": app, "service": service, "stage": stage, "chart": {},
        "image": {"repository": f"127.0.0.1:5000/{app}/{service}", "digest": DIGEST}}))


# --- valid trees ----------------------------------------------------------------------------

def test_example_repo_loads() -> None:
    spec = load_spec(EXAMPLE)
    assert validate_tree(EXAMPLE) == []
    assert spec.platform.registry == "127.0.0.1:5000"
    assert list(spec.apps) == ["shop"]
    assert spec.service("shop", "orders").image == "127.0.0.1:5000/shop/orders"
    version = spec.version("shop", "orders", "test")
    assert version is not None and version.image.reference.startswith("127.0.0.1:5000/shop/orders@sha256:")
    assert spec.version("shop", "orders", "prod") is None
    assert [s.name for s in spec.services_of("shop")] == ["orders"]


def test_new_infra_tree_is_a_valid_empty_repo(tmp_path: Path) -> None:
    files = new_infra_tree("registry.example.com:5000")
    assert set(files) == {"platform.yaml", "README.md"}
    assert "apps/<app>/<stage>/<service>.yaml" in files["README.md"]
    for rel, text in files.items():
        write(tmp_path, rel, text)
    spec = load_spec(tmp_path)
    assert spec.platform.registry == "registry.example.com:5000"
    assert spec.apps == {} and spec.services == {} and spec.versions == {}


def test_new_infra_tree_refuses_a_bad_registry() -> None:
    with pytest.raises(ValidationFailed) as caught:
        new_infra_tree("http://127.0.0.1:5000")
    assert "registry: must be a registry host[:port]" in str(caught.value)


def test_dot_files_are_ignored(infra: Path) -> None:
    write(infra, "apps/.gitkeep", "")
    write(infra, "apps/shop/services/.orders.yaml.swp", "junk")
    assert validate_tree(infra) == []


def test_a_second_service_and_a_prod_version_load(infra: Path) -> None:
    write(infra, "apps/shop/services/payments.yaml", (infra / "apps/shop/services/orders.yaml").read_text()
          .replace("orders", "payments"))
    write(infra, "apps/shop/prod/payments.yaml", version_yaml(service="payments", stage="prod"))
    spec = load_spec(infra)
    assert [s.name for s in spec.services_of("shop")] == ["orders", "payments"]
    assert spec.version("shop", "payments", "prod").image.digest == DIGEST  # type: ignore[union-attr]
    assert set(spec.versions) == {("shop", "orders", "test"), ("shop", "payments", "prod")}


# --- names must match folders and files -------------------------------------------------------

def test_app_name_must_match_folder(infra: Path) -> None:
    edit(infra, "apps/shop/app.yaml", "name: shop", "name: store")
    assert messages(infra) == ["apps/shop/app.yaml: name: must match its folder name 'shop' (found 'store')"]


def test_service_name_and_app_must_match_file_and_folder(infra: Path) -> None:
    edit(infra, "apps/shop/services/orders.yaml", "name: orders", "name: order")
    edit(infra, "apps/shop/services/orders.yaml", "app: shop", "app: store")
    assert messages(infra) == [
        "apps/shop/services/orders.yaml: name: must match the file name 'orders' (found 'order')",
        "apps/shop/services/orders.yaml: app: must match the app folder name 'shop' (found 'store')",
    ]


def test_version_stage_must_match_folder(infra: Path) -> None:
    write(infra, "apps/shop/prod/orders.yaml", version_yaml(stage="test"))
    assert messages(infra) == [
        "apps/shop/prod/orders.yaml: stage: must match the stage folder name 'prod' (found 'test')"]


def test_uppercase_folder_and_name_are_refused(infra: Path) -> None:
    (infra / "apps/shop").rename(infra / "apps/Shop")
    edit(infra, "apps/Shop/app.yaml", "name: shop", "name: Shop")
    found = messages(infra)
    assert ("apps/Shop/app.yaml: name: must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit") in found


# --- references between files ---------------------------------------------------------------

def test_version_for_undeclared_service(infra: Path) -> None:
    write(infra, "apps/shop/test/payments.yaml", version_yaml(service="payments"))
    assert messages(infra) == [
        "apps/shop/test/payments.yaml: service: refers to service 'payments', which is not declared: "
        "add apps/shop/services/payments.yaml (services of 'shop': orders)"]


def test_version_for_undeclared_app(infra: Path) -> None:
    write(infra, "apps/cart/test/basket.yaml", version_yaml(app="cart", service="basket"))
    assert messages(infra) == [
        "apps/cart/app.yaml: is missing: every app folder needs one (kind: App)",
        "apps/cart/test/basket.yaml: app: refers to app 'cart', which is not declared: apps/cart/app.yaml is missing",
    ]


def test_a_broken_service_file_does_not_make_its_versions_undeclared(infra: Path) -> None:
    edit(infra, "apps/shop/services/orders.yaml", "port: 8080", "port: 0")
    assert messages(infra) == ["apps/shop/services/orders.yaml: port: must be at least 1"]


def test_duplicate_image_repository(infra: Path) -> None:
    write(infra, "apps/shop/services/payments.yaml", (infra / "apps/shop/services/orders.yaml").read_text()
          .replace("name: orders", "name: payments"))
    assert messages(infra) == [
        "apps/shop/services/payments.yaml: image: repository '127.0.0.1:5000/shop/orders' is already used by "
        "apps/shop/services/orders.yaml: each service needs its own image repository"]


# --- files and folders that do not belong -----------------------------------------------------

def test_unexpected_files_and_folders_are_reported(infra: Path) -> None:
    write(infra, "apps/shop/notes.txt", "remember the milk")
    write(infra, "apps/shop/staging/orders.yaml", version_yaml())
    write(infra, "apps/shop/services/payments.yml", "")
    write(infra, "apps/readme.md", "")
    assert messages(infra) == [
        "apps/readme.md: unexpected file: apps/ holds one folder per app",
        "apps/shop/notes.txt: unexpected file: an app folder holds only app.yaml, services/, releases/, databases/ and the stage "
        "folders test/, prod/",
        "apps/shop/services/payments.yml: unexpected file: services/ holds one <service>.yaml per service",
        "apps/shop/staging: unexpected folder: an app folder holds only app.yaml, services/, releases/, databases/ and the stage "
        "folders test/, prod/",
    ]


def test_missing_platform_file(infra: Path) -> None:
    (infra / "platform.yaml").unlink()
    assert messages(infra) == ["platform.yaml: is missing: every infrastructure repo needs one (kind: Platform)"]
    with pytest.raises(ValidationFailed):
        load_spec(infra)


def test_file_of_the_wrong_kind_for_its_place(infra: Path) -> None:
    shutil.copy(infra / "apps/shop/services/orders.yaml", infra / "apps/shop/app.yaml")
    assert messages(infra) == ["apps/shop/app.yaml: kind: must be App in this place (found Service)"]


def test_yaml_syntax_error_names_file_and_line(infra: Path) -> None:
    write(infra, "apps/shop/app.yaml", "apiVersion: stageflow.dev/v1\nkind: App\nname: shop\nowners: [alice\n")
    (problem,) = validate_tree(infra)
    assert problem.file == "apps/shop/app.yaml"
    assert problem.field.startswith("line 5")
    assert problem.rule.startswith("YAML syntax error")


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_spec(tmp_path / "nope")
    assert "is not a folder" in str(caught.value)


# --- all problems at once ---------------------------------------------------------------------

def test_validate_tree_collects_every_problem(infra: Path) -> None:
    edit(infra, "apps/shop/test/orders.yaml", "digest: sha256:", "digest: md5:")
    edit(infra, "apps/shop/services/orders.yaml", "replicas: 1", "replicas: 1\nreplica: 2")
    edit(infra, "platform.yaml", "approval_timeout_hours: 24", "approval_timeout_hours: 0")
    write(infra, "apps/shop/notes.txt", "")
    problems = validate_tree(infra)
    assert {(p.file, p.field) for p in problems} == {
        ("platform.yaml", "approval_timeout_hours"),
        (None, "apps/shop/notes.txt"),
        ("apps/shop/services/orders.yaml", "replica"),
        ("apps/shop/test/orders.yaml", "image.digest"),
    }
    with pytest.raises(ValidationFailed) as caught:
        load_spec(infra)
    assert caught.value.problems == problems
    assert str(caught.value).startswith(f"infrastructure repo {infra} is invalid:\n  - ")


# --- look-ups -------------------------------------------------------------------------------

def test_lookups_name_what_exists() -> None:
    spec: PlatformSpec = load_spec(EXAMPLE)
    with pytest.raises(NotFound, match=r"no app named 'cart' in the infrastructure repo \(apps: shop\)"):
        spec.app("cart")
    with pytest.raises(NotFound, match=r"no service named 'payments' in app 'shop' \(services: orders\)"):
        spec.service("shop", "payments")
    with pytest.raises(NotFound, match="no app named 'cart'"):
        spec.services_of("cart")
    with pytest.raises(ValidationFailed, match="stage: must be one of test, prod"):
        spec.version("shop", "orders", "staging")
    assert spec.version("shop", "payments", "test") is None


def test_example_files_are_written_as_to_yaml_writes_them() -> None:
    # The example doubles as documentation of the canonical format: keep it byte-identical.
    for path in sorted(EXAMPLE.rglob("*.yaml")):
        rel = path.relative_to(EXAMPLE).as_posix()
        text = path.read_text()
        assert to_yaml(parse_file(rel, text)) == text, rel
