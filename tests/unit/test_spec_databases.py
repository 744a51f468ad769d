"""Database files in the infrastructure repository: one database per service and stage, never
shared, and never across stages (a prod service never points at a test database, nor the reverse)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stageflow.spec import Database, database_path, load_spec, to_yaml, validate_tree
from stageflow.spec.models import Service

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "infra"


@pytest.fixture
def infra(tmp_path: Path) -> Path:
    root = tmp_path / "infra"
    shutil.copytree(EXAMPLE, root)
    for name in ("orders", "payments"):
        write(root, f"apps/shop/services/{name}.yaml", to_yaml(Service(
            name=name, app="shop", repository=f"shop-{name}", image=f"127.0.0.1:5000/shop/{name}",
            database="postgres")))
    return root


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def db_in_test(service: str = "orders", **fields) -> Database:
    base = dict(app="shop", service=service, stage="test", engine="postgres", provider="helm",
                instance=f"{service}-db", host=f"{service}-db.shop-test.svc.cluster.local", port=5432,
                credentials=f"kubernetes:shop-test/{service}-db")
    return Database(**{**base, **fields})


def prod_db(service: str = "orders", **fields) -> Database:
    base = dict(app="shop", service=service, stage="prod", engine="postgres", provider="terraform",
                instance=f"shop-{service}-prod", host=f"shop-{service}-prod.abc.eu-central-1.rds.amazonaws.com",
                port=5432, credentials=f"aws-secretsmanager:rds!db-shop-{service}")
    return Database(**{**base, **fields})


def put(root: Path, db: Database) -> None:
    write(root, database_path(db.app, db.service, db.stage), to_yaml(db))


def messages(root: Path) -> list[str]:
    return [str(p) for p in validate_tree(root)]


def test_each_service_has_its_own_database_per_stage(infra: Path):
    for db in (db_in_test("orders"), db_in_test("payments"), prod_db("orders"), prod_db("payments")):
        put(infra, db)
    assert messages(infra) == []
    spec = load_spec(infra)
    assert spec.database("shop", "orders", "prod").instance == "shop-orders-prod"
    assert spec.database("shop", "orders", "test").credentials == "kubernetes:shop-test/orders-db"
    assert spec.database("shop", "nope", "test") is None


def test_two_services_sharing_a_database_are_refused(infra: Path):
    put(infra, db_in_test("orders"))
    put(infra, db_in_test("payments", instance="orders-db", host="orders-db.shop-test.svc.cluster.local",
                       credentials="kubernetes:shop-test/orders-db"))
    found = messages(infra)
    for field in ("instance", "host", "credentials"):
        assert any(m.startswith(f"apps/shop/databases/test/payments.yaml: {field}:") and
                   "is also the database of apps/shop/databases/test/orders.yaml" in m for m in found), found


def test_a_prod_service_never_points_at_a_test_database(infra: Path):
    put(infra, prod_db("orders", host="orders-db.shop-test.svc.cluster.local",
                       credentials="kubernetes:shop-test/orders-db"))
    found = messages(infra)
    assert ("apps/shop/databases/prod/orders.yaml: host: points at a test database "
            "('orders-db.shop-test.svc.cluster.local'): prod never uses a test database") in found
    assert any(m.startswith("apps/shop/databases/prod/orders.yaml: credentials: point at the test namespace")
               for m in found), found


def test_a_test_service_never_points_at_a_prod_database(infra: Path):
    put(infra, db_in_test("orders", host="shop-orders-prod.abc.eu-central-1.rds.amazonaws.com",
                       credentials="aws-secretsmanager:rds!db-shop-orders", provider="terraform"))
    found = messages(infra)
    assert any(m.startswith("apps/shop/databases/test/orders.yaml: host: must be a service in shop-test") for m in found)
    assert any(m.startswith("apps/shop/databases/test/orders.yaml: credentials: must be kubernetes:shop-test/")
               for m in found)
    assert "apps/shop/databases/test/orders.yaml: provider: must be helm for a test database (it runs in the " \
           "cluster)" in found


def test_a_database_must_match_its_folder_and_its_service(infra: Path):
    write(infra, "apps/shop/databases/test/orders.yaml", to_yaml(db_in_test("payments")))
    write(infra, "apps/shop/databases/staging/orders.yaml", to_yaml(db_in_test("orders")))
    put(infra, db_in_test("orders", engine="mongodb", port=27017, instance="orders-mongo",
                       host="orders-mongo.shop-test.svc.cluster.local"))
    found = messages(infra)
    assert "apps/shop/databases/staging: unexpected folder: databases/ holds the stage folders test/, prod/" in found
    assert any("engine: is 'mongodb' but service 'orders' declares database: 'postgres'" in m for m in found), found


def test_the_same_service_name_in_two_apps_has_two_databases(infra: Path):
    from stageflow.spec import App

    write(infra, "apps/books/app.yaml", to_yaml(App(name="books", owners=["carol"], approvers=["carol"])))
    write(infra, "apps/books/services/orders.yaml", to_yaml(Service(
        name="orders", app="books", repository="books-orders", image="127.0.0.1:5000/books/orders",
        database="postgres")))
    put(infra, db_in_test("orders"))
    put(infra, Database(app="books", service="orders", stage="test", engine="postgres", provider="helm",
                        instance="orders-db", host="orders-db.books-test.svc.cluster.local", port=5432,
                        credentials="kubernetes:books-test/orders-db"))
    assert messages(infra) == []
