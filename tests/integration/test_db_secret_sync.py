"""Step db:sync-secret on the embedded cluster: credentials from Secrets Manager (moto's server)
become the Secret ``<service>-db`` in ``<app>-prod``; a re-sync changes nothing, a rotation is
carried over, and no value is returned or raised."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from stageflow.adapters.kube import Kube
from stageflow.adapters.secrets_manager import SecretsManager
from stageflow.errors import NotFound
from tests.support.moto import moto_server
from stageflow.steps import sync_db_secret

pytestmark = pytest.mark.integration

APP = f"dbsync{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="module")
def sm() -> Iterator[SecretsManager]:
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    try:
        with moto_server() as url:
            yield SecretsManager("eu-west-1", endpoint_url=url)
    finally:
        mp.undo()


def test_credentials_are_synced_into_the_prod_namespace(settings, sm: SecretsManager) -> None:
    kube = Kube(settings.kubeconfig)
    kube.ensure_namespace(f"{APP}-prod")
    arn = sm.ensure_secret(f"stageflow/{APP}/cart/master", {"username": "cart", "password": "pw-one-0123456789abcdef"})
    config = sync_db_secret.Config(app=APP, service="cart", credentials_secret=arn,
                                   connection={"host": "cart.example.invalid", "port": "5432", "database": "cart"})

    first = sync_db_secret.run(config, sm, kube)
    assert (first.namespace, first.name, first.changed) == (f"{APP}-prod", "cart-db", True)
    assert first.key_names == ["database", "host", "password", "port", "username"]
    assert "pw-one" not in first.model_dump_json()
    stored = kube.read_secret(f"{APP}-prod", "cart-db")
    assert stored is not None and stored["password"].get_secret_value() == "pw-one-0123456789abcdef"
    assert stored["host"].get_secret_value() == "cart.example.invalid"

    assert sync_db_secret.run(config, sm, kube).changed is False

    # A rotation in Secrets Manager reaches the namespace on the next sync.
    rotated = '{"username": "cart", "password": "pw-two-0123456789abcdef"}'
    sm._client.put_secret_value(SecretId=arn, SecretString=rotated)
    assert sync_db_secret.run(config, sm, kube).changed is True
    assert kube.read_secret(f"{APP}-prod", "cart-db")["password"].get_secret_value() == "pw-two-0123456789abcdef"


def test_a_missing_secret_is_not_found_and_nothing_is_written(settings, sm: SecretsManager) -> None:
    kube = Kube(settings.kubeconfig)
    kube.ensure_namespace(f"{APP}-prod")
    config = sync_db_secret.Config(app=APP, service="ghost", credentials_secret=f"stageflow/{APP}/ghost/master")
    with pytest.raises(NotFound, match="does not exist"):
        sync_db_secret.run(config, sm, kube)
    assert kube.read_secret(f"{APP}-prod", "ghost-db") is None
