"""Names given to flows and the CLI, image references, and where files live."""
from __future__ import annotations

import pytest

from stageflow.errors import ValidationFailed
from stageflow.spec import (
    STAGES,
    app_path,
    namespace,
    platform_path,
    service_path,
    split_image_reference,
    validate_name,
    version_path,
)

DIGEST = "sha256:" + "ab" * 32


def test_stages_and_namespaces() -> None:
    assert STAGES == ("test", "prod")
    assert [namespace("shop", stage) for stage in STAGES] == ["shop-test", "shop-prod"]


@pytest.mark.parametrize(("kind", "value"), [
    ("app", "shop"), ("app", "a" * 58), ("app", "9lives"), ("app", "kubernetes"),
    ("service", "orders"), ("service", "s" * 53), ("service", "default"), ("service", "kube-proxy"),
])
def test_good_names(kind: str, value: str) -> None:
    validate_name("name", value, kind=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "value", "rule"), [
    ("app", "Shop", "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a "
                    "letter or digit"),
    ("app", "my_shop", "must be a DNS-1123 label"),
    ("app", "", "must be a DNS-1123 label"),
    ("app", "shop-", "must be a DNS-1123 label"),
    ("app", "a" * 59, "is 59 characters long, but app names may have at most 58"),
    ("app", "default", "is reserved"),
    ("app", "core-services", "is reserved"),
    ("app", "cluster", "is reserved"),
    ("app", "kube-public", "is reserved"),
    ("service", "Orders", "must be a DNS-1123 label"),
    ("service", "s" * 54, "must be at most 53 characters long (is 54)"),
    ("service", "S" * 54, "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a "
                          "letter or digit; must be at most 53 characters long (is 54)"),
])
def test_bad_names(kind: str, value: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_name("--app", value, kind=kind)  # type: ignore[arg-type]
    (problem,) = caught.value.problems
    assert problem.field == "--app"
    assert problem.rule.startswith(rule)
    assert caught.value.summary == f"invalid {kind} name {value!r}"


@pytest.mark.parametrize(("ref", "expected"), [
    ("127.0.0.1:5000/shop/orders:abc123", ("127.0.0.1:5000/shop/orders", "abc123", None)),
    (f"127.0.0.1:5000/shop/orders@{DIGEST}", ("127.0.0.1:5000/shop/orders", None, DIGEST)),
    (f"127.0.0.1:5000/shop/orders:v1.2@{DIGEST}", ("127.0.0.1:5000/shop/orders", "v1.2", DIGEST)),
    ("127.0.0.1:5000/shop/orders", ("127.0.0.1:5000/shop/orders", None, None)),
    ("localhost/shop/orders:latest", ("localhost/shop/orders", "latest", None)),
    ("registry.example.com/a.b/c__d/e-f--g:T_1", ("registry.example.com/a.b/c__d/e-f--g", "T_1", None)),
    ("[::1]:5000/shop/orders", ("[::1]:5000/shop/orders", None, None)),
    ("shop/orders:1", ("shop/orders", "1", None)),
    ("busybox", ("busybox", None, None)),
])
def test_split_image_reference(ref: str, expected: tuple[str, str | None, str | None]) -> None:
    assert split_image_reference(ref) == expected


@pytest.mark.parametrize(("ref", "rule"), [
    ("", "image: repository '' must be an image repository (OCI reference grammar)"),
    ("127.0.0.1:5000/Shop/orders:1", "image: repository '127.0.0.1:5000/Shop/orders' must be an image repository"),
    ("127.0.0.1:5000//orders", "image: repository '127.0.0.1:5000//orders' must be an image repository"),
    ("shop/orders:", "image: tag '' must be an image tag"),
    ("shop/orders:-x", "image: tag '-x' must be an image tag"),
    ("shop/orders@sha256:abc", "image: digest 'sha256:abc' must be an image digest 'sha256:' followed by 64"),
    (f"shop/orders@{DIGEST}@{DIGEST}", "image: digest"),
    ("http://127.0.0.1:5000/shop/orders", "image: repository 'http://127.0.0.1:5000/shop/orders'"),
])
def test_split_image_reference_refuses_malformed(ref: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        split_image_reference(ref)
    assert str(caught.value.problems[0]).startswith(rule), caught.value.problems
    assert caught.value.summary == f"invalid image reference {ref!r}"


def test_split_image_reference_names_the_given_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        split_image_reference("Shop", field="--image")
    assert caught.value.problems[0].field == "--image"


def test_paths() -> None:
    assert platform_path() == "platform.yaml"
    assert app_path("shop") == "apps/shop/app.yaml"
    assert service_path("shop", "orders") == "apps/shop/services/orders.yaml"
    assert version_path("shop", "orders", "prod") == "apps/shop/prod/orders.yaml"


@pytest.mark.parametrize("call", [
    lambda: app_path("../etc"),
    lambda: service_path("shop", "a/b"),
    lambda: version_path("shop", "orders", "staging"),
    lambda: version_path("Shop", "orders", "test"),
])
def test_paths_refuse_names_that_are_not_labels(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed):
        call()


@pytest.mark.parametrize("name, rule", [
    ("1orders", "must start with a letter"),
    ("o" * 54, "at most 53"),
])
def test_service_names_fit_kubernetes_services_and_helm_releases(name, rule):
    with pytest.raises(ValidationFailed, match=rule):
        validate_name("service", name, kind="service")


def test_app_named_kube_is_reserved_because_its_namespaces_would_be_kube_star():
    with pytest.raises(ValidationFailed, match="reserved"):
        validate_name("app", "kube", kind="app")
