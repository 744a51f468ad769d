"""One file at a time: every field rule, told as ``file: field: rule``, and the to_yaml round trip."""
from __future__ import annotations

from typing import Any

import pydantic
import pytest
import yaml

from stageflow.errors import ValidationFailed
from stageflow.spec import (
    App,
    ChartRef,
    DeployedVersion,
    ImageRef,
    Platform,
    Service,
    SourceRef,
    parse_file,
    to_yaml,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
LABEL_RULE = ("must be a DNS-1123 label: lowercase letters, digits and '-', "
              "starting and ending with a letter or digit")

VALID: dict[str, dict[str, Any]] = {
    "Platform": {"registry": "127.0.0.1:5000"},
    "App": {"name": "shop", "owners": ["alice"], "approvers": ["bob"]},
    "Service": {"name": "orders", "app": "shop", "repository": "shop-orders", "image": "127.0.0.1:5000/shop/orders"},
    "DeployedVersion": {"app": "shop", "service": "orders", "stage": "test", "chart": {"version": "0.1.0"},
                        "image": {"repository": "127.0.0.1:5000/shop/orders", "digest": DIGEST}},
}


def document(kind: str, **changes: Any) -> str:
    """A valid file of ``kind`` with ``changes`` applied; dotted keys reach into nested mappings."""
    body = yaml.safe_load(yaml.safe_dump(VALID[kind]))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = body
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return yaml.safe_dump({"apiVersion": "stageflow.dev/v1", "kind": kind, **body}, sort_keys=False)


def problems_of(path: str, text: str) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_file(path, text)
    assert caught.value.summary == f"{path} is invalid"
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.parametrize("kind", list(VALID))
def test_valid_documents_parse(kind: str) -> None:
    model = parse_file("some/file.yaml", document(kind))
    assert type(model).__name__ == kind


# (kind, changes, expected "field: rule" -- the file name is checked by the test itself)
BROKEN = [
    ("App", {"name": "Shop"}, f"name: {LABEL_RULE}"),
    ("App", {"name": "shop_eu"}, f"name: {LABEL_RULE}"),
    ("App", {"name": "-shop"}, f"name: {LABEL_RULE}"),
    ("App", {"name": "a" * 64}, f"name: must be at most 63 characters long (is 64)"),
    ("App", {"name": "a" * 59}, "name: is 59 characters long, but app names may have at most 58: the namespace '"
                                + "a" * 59 + "-test' (<app>-<stage>) must be a DNS-1123 label of at most 63 characters"),
    ("App", {"name": "default"}, "name: is reserved: 'cluster', 'core-services', 'default', 'kube' and names starting with 'kube-' "
                                 "belong to the platform or to Kubernetes"),
    ("App", {"name": "core-services"}, "name: is reserved"),
    ("App", {"name": "kube-system"}, "name: is reserved"),
    ("App", {"owners": []}, "owners: must have at least 1 entry"),
    ("App", {"owners": ["alice", " "]}, "owners[1]: must not be empty"),
    ("App", {"approvers": None}, "approvers: must be a list"),
    ("App", {"description": 42}, "description: must be a string (quote the value in YAML)"),
    ("Service", {"name": "Orders"}, f"name: {LABEL_RULE}"),
    ("Service", {"name": "order_svc"}, f"name: {LABEL_RULE}"),
    ("Service", {"repository": "r" * 101}, "repository: must be at most 100 characters long (is 101)"),
    ("Service", {"image": "127.0.0.1:5000/shop/orders:v1"}, "image: must not include a tag (':...')"),
    ("Service", {"image": f"127.0.0.1:5000/shop/orders@{DIGEST}"}, "image: must not include a digest ('@...')"),
    ("Service", {"image": "127.0.0.1:5000/Shop/orders"}, "image: must be an image repository (OCI reference grammar)"),
    ("Service", {"image": "127.0.0.1:5000/shop//orders"}, "image: must be an image repository (OCI reference grammar)"),
    ("Service", {"image": "127.0.0.1:5000/shop/orders-"}, "image: must be an image repository (OCI reference grammar)"),
    ("Service", {"image": "127.0.0.1:99999/shop/orders"},
     "image: registry '127.0.0.1:99999' port must be between 1 and 65535 (is 99999)"),
    ("Service", {"port": 0}, "port: must be at least 1"),
    ("Service", {"port": 65536}, "port: must be at most 65535"),
    ("Service", {"port": "8080"}, "port: must be a whole number"),
    ("Service", {"replicas": -1}, "replicas: must be at least 0"),
    ("Service", {"database": "mysql"}, "database: must be one of 'none', 'postgres' or 'mongodb'"),
    ("Service", {"ports": 8080}, "ports: is not a known field (allowed: name, app, repository, image, port, "
                                 "database, replicas)"),
    ("Service", {"image": None}, "image: must be a string"),
    ("DeployedVersion", {"image__digest": "sha256:abc"},
     "image.digest: must be an image digest 'sha256:' followed by 64 lowercase hexadecimal characters"),
    ("DeployedVersion", {"image__digest": DIGEST.upper()}, "image.digest: must be an image digest"),
    ("DeployedVersion", {"image__repository": "shop/orders:v1"}, "image.repository: must not include a tag"),
    ("DeployedVersion", {"image__tag": ".hidden"}, "image.tag: must be an image tag"),
    ("DeployedVersion", {"image__digset": DIGEST}, "image.digset: is not a known field (allowed: repository, "
                                                   "digest, tag)"),
    ("DeployedVersion", {"stage": "staging"}, "stage: must be one of 'test' or 'prod'"),
    ("DeployedVersion", {"chart__version": 1.0}, "chart.version: must be a string (quote the value in YAML)"),
    ("DeployedVersion", {"chart__version": "1.0"}, "chart.version: must be a semantic version"),
    ("DeployedVersion", {"chart__name": "Service"}, f"chart.name: {LABEL_RULE}"),
    ("DeployedVersion", {"source__commit": "xyz1234"},
     "source.commit: must be a git commit id: 7 to 40 lowercase hexadecimal characters"),
    ("DeployedVersion", {"source__commit": 1234567}, "source.commit: must be a string"),
    ("DeployedVersion", {"values": ["a"]}, "values: must be a mapping of keys to values"),
    ("Platform", {"registry": "http://127.0.0.1:5000"}, "registry: must be a registry host[:port]"),
    ("Platform", {"registry": "127.0.0.1:5000/path"}, "registry: must be a registry host[:port]"),
    ("Platform", {"approval_timeout_hours": 0}, "approval_timeout_hours: must be greater than 0"),
    ("Platform", {"chart": "service"}, "chart: must be a mapping of keys to values"),
]


@pytest.mark.parametrize(("kind", "changes", "expected"), BROKEN,
                         ids=[f"{kind}-{'-'.join(changes)}-{i}" for i, (kind, changes, _) in enumerate(BROKEN)])
def test_broken_field_is_named_with_its_rule(kind: str, changes: dict[str, Any], expected: str) -> None:
    found = problems_of("apps/shop/x.yaml", document(kind, **changes))
    assert len(found) == 1, found
    assert found[0].startswith(f"apps/shop/x.yaml: {expected}"), found


def test_longest_app_name_is_accepted() -> None:
    app = parse_file("apps/x/app.yaml", document("App", name="a" * 58))
    assert app.name == "a" * 58


def test_missing_field_is_required() -> None:
    text = document("Service").replace("repository: shop-orders\n", "")
    assert problems_of("s.yaml", text) == ["s.yaml: repository: is required"]


def test_several_problems_in_one_file_are_all_reported() -> None:
    text = document("Service", name="Orders", port=0, colour="blue")
    assert problems_of("s.yaml", text) == [
        f"s.yaml: name: {LABEL_RULE}",
        "s.yaml: port: must be at least 1",
        "s.yaml: colour: is not a known field (allowed: name, app, repository, image, port, database, replicas)",
    ]


@pytest.mark.parametrize(("text", "expected"), [
    ("", "x.yaml: (document): must be a mapping with apiVersion and kind, found an empty file"),
    ("- a\n- b\n", "x.yaml: (document): must be a mapping with apiVersion and kind, found a list"),
    ("kind: App\nname: shop\nowners: [a]\napprovers: []\n", "x.yaml: apiVersion: is required"),
    ("apiVersion: stageflow.dev/v2\nkind: App\nname: shop\nowners: [a]\napprovers: []\n",
     "x.yaml: apiVersion: must be 'stageflow.dev/v1' (found 'stageflow.dev/v2')"),
    ("apiVersion: stageflow.dev/v1\nname: shop\n",
     "x.yaml: kind: is required: one of Platform, App, Service, DeployedVersion"),
    ("apiVersion: stageflow.dev/v1\nkind: Deployment\n",
     "x.yaml: kind: must be one of Platform, App, Service, DeployedVersion, ReleaseHistory, Database (found 'Deployment')"),
    ("apiVersion: stageflow.dev/v1\nkind: [App]\n", "x.yaml: kind: must be one of"),
    ("apiVersion: stageflow.dev/v1\nkind: App\nname: shop\nname: cart\nowners: [a]\napprovers: []\n",
     "x.yaml: line 4, column 1: YAML syntax error: while reading a mapping found duplicate key 'name'"),
    ("apiVersion: stageflow.dev/v1\nkind: App\nname: 'shop\n", "x.yaml: line 4, column 1: YAML syntax error"),
])
def test_document_level_problems(text: str, expected: str) -> None:
    found = problems_of("x.yaml", text)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


# --- writing --------------------------------------------------------------------------------

MODELS = [
    Platform(registry="registry.example.com", chart=ChartRef(version="1.2.3-rc.1+build.5"), approval_timeout_hours=2),
    App(name="shop", owners=["alice", "carol"], approvers=[], description="Web shop: orders & payments"),
    Service(name="orders", app="shop", repository="shop-orders", image="shop/orders", port=9000,
            database="mongodb", replicas=0),
    DeployedVersion(app="shop", service="orders", stage="prod",
                    image=ImageRef(repository="127.0.0.1:5000/shop/orders", digest=DIGEST, tag="1.10"),
                    chart=ChartRef(), values={"b": {"y": None, "x": [1, "2"]}, "a": "0123"},
                    source=SourceRef(commit="0123456", repository="shop-orders")),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_round_trip(model: Any) -> None:
    text = to_yaml(model)
    assert text.startswith(f"apiVersion: stageflow.dev/v1\nkind: {type(model).__name__}\n")
    assert parse_file("f.yaml", text) == model
    assert to_yaml(parse_file("f.yaml", text)) == text


def test_to_yaml_is_deterministic_and_leaves_out_nulls() -> None:
    base = dict(app="shop", service="orders", stage="test", chart=ChartRef(),
                image=ImageRef(repository="127.0.0.1:5000/shop/orders", digest=DIGEST))
    one = DeployedVersion(**base, values={"a": 1, "b": {"d": 2, "c": 3}})
    other = DeployedVersion(**base, values={"b": {"c": 3, "d": 2}, "a": 1})
    assert to_yaml(one) == to_yaml(other)
    keys = [line.split(":")[0] for line in to_yaml(one).splitlines() if not line.startswith(" ")]
    assert keys == ["apiVersion", "kind", "app", "service", "stage", "image", "chart", "values"]
    assert "  tag:" not in to_yaml(one) and "\nsource:" not in to_yaml(one)


def test_to_yaml_refuses_parts_that_are_not_files() -> None:
    with pytest.raises(TypeError, match="not a spec file kind"):
        to_yaml(ChartRef())  # type: ignore[arg-type]


def test_models_are_frozen_and_strict() -> None:
    app = App(name="shop", owners=["a"], approvers=[])
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        app.name = "cart"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="valid integer"):
        Service(name="orders", app="shop", repository="r", image="shop/orders", port="80")  # type: ignore[arg-type]
