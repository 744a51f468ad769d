"""The registry and image adapters against a real ``docker-registry`` and a real Docker engine."""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from stageflow.adapters.images import Images
from stageflow.adapters.registry import (
    MANIFEST_MEDIA_TYPES, ImageNotFound, Registry, RegistryUnavailable, parse, wait_for_tag,
)
from stageflow.errors import RetryableError, TerminalError, ValidationFailed
from stageflow.local.docker_engine import DockerEngine
from stageflow.local.process import free_port
from stageflow.local.registry import LocalRegistry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stageflow-home")


@pytest.fixture(scope="module")
def local_registry(home: Path):
    registry = LocalRegistry(home, port=free_port())
    registry.start()
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def docker_host(home: Path):
    engine = DockerEngine(home)
    host = engine.ensure()
    yield host
    engine.stop()


@pytest.fixture(scope="module")
def images(docker_host: str):
    with Images(docker_host) as client:
        yield client


@pytest.fixture
def client(local_registry: LocalRegistry):
    with Registry(local_registry.address, timeout=2.0) as registry:
        yield registry


def _context(tmp_path: Path, content: str) -> Path:
    """A build context for a one-file image that needs no base image (builds cannot reach the internet)."""
    (tmp_path / "payload.txt").write_text(content)
    (tmp_path / "Dockerfile").write_text("FROM scratch\nARG VERSION=none\nLABEL version=$VERSION\nCOPY payload.txt /\n")
    return tmp_path


@pytest.fixture(scope="module")
def pushed(local_registry: LocalRegistry, images: Images, tmp_path_factory: pytest.TempPathFactory):
    """One image pushed as shop/orders:v1; returns the digest the push reported."""
    context = _context(tmp_path_factory.mktemp("ctx"), "orders v1\n")
    return images.build_and_push(context, f"{local_registry.address}/shop/orders", "v1")


def test_resolve_returns_the_pushed_digest(client: Registry, local_registry: LocalRegistry, pushed: str) -> None:
    assert pushed.startswith("sha256:")
    assert client.resolve("shop/orders", "v1") == pushed
    # resolve() falls back to hashing the manifest when a registry omits Docker-Content-Digest.
    body = httpx.get(f"http://{local_registry.address}/v2/shop/orders/manifests/v1",
                     headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}).content
    assert "sha256:" + hashlib.sha256(body).hexdigest() == pushed
    assert client.exists("shop/orders", pushed)
    assert not client.exists("shop/orders", "sha256:" + "0" * 64)
    assert "v1" in client.tags("shop/orders")


def test_build_args_reach_the_image(images: Images, local_registry: LocalRegistry, tmp_path: Path) -> None:
    context = _context(tmp_path, "same payload\n")
    tag = f"{local_registry.address}/shop/args:t"
    first = images.build(context, tag, buildargs={"VERSION": "1"})
    second = images.build(context, tag, buildargs={"VERSION": "2"})
    assert first != second
    assert images.build(context, tag, buildargs={"VERSION": "2"}) == second


def test_unknown_tag_and_repository_are_not_found(client: Registry, local_registry: LocalRegistry, pushed: str) -> None:
    with pytest.raises(ImageNotFound, match=rf"{local_registry.address}/shop/orders:nope"):
        client.resolve("shop/orders", "nope")
    with pytest.raises(ImageNotFound, match="shop/unknown:v1"):
        client.resolve("shop/unknown", "v1")
    with pytest.raises(ImageNotFound, match="shop/unknown"):
        client.tags("shop/unknown")


def test_wait_for_tag_sees_a_push_that_lands_while_waiting(
        client: Registry, images: Images, local_registry: LocalRegistry, tmp_path: Path) -> None:
    reference = f"{local_registry.address}/shop/late:v2"
    images.build(_context(tmp_path, "late\n"), reference)
    reported: list[str] = []

    def push_later() -> None:
        time.sleep(1.0)
        reported.append(images.push(reference))

    pusher = threading.Thread(target=push_later)
    pusher.start()
    try:
        digest = wait_for_tag(client, "shop/late", "v2", timeout=30, interval=0.2)
    finally:
        pusher.join()
    assert digest == reported[0]


def test_wait_for_tag_gives_up_with_not_found(client: Registry, local_registry: LocalRegistry, pushed: str) -> None:
    started = time.monotonic()
    expected = rf"image {local_registry.address}/shop/orders:missing not found in the registry after 1s"
    with pytest.raises(ImageNotFound, match=expected):
        wait_for_tag(client, "shop/orders", "missing", timeout=1.0, interval=0.2)
    assert 0.9 < time.monotonic() - started < 5


def test_build_failure_is_terminal_with_the_log(images: Images, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY not-there.txt /\n")
    with pytest.raises(TerminalError, match=r"(?s)building broken:1 failed.*not-there\.txt"):
        images.build(tmp_path, "broken:1")


def test_push_to_an_unreachable_registry_is_retryable(images: Images, tmp_path: Path) -> None:
    reference = f"127.0.0.1:{free_port()}/shop/orders:v1"
    images.build(_context(tmp_path, "x\n"), reference)
    with pytest.raises(RetryableError, match="connection refused"):
        images.push(reference)


def test_parse_splits_address_and_path() -> None:
    assert parse("127.0.0.1:5000/shop/orders") == ("127.0.0.1:5000", "shop/orders")
    assert parse("localhost/orders") == ("localhost", "orders")
    assert parse("shop/orders") == ("docker.io", "shop/orders")
    assert parse("nginx") == ("docker.io", "library/nginx")
    with pytest.raises(ValidationFailed):
        parse("127.0.0.1:5000/shop/orders:v1")
    with pytest.raises(ValidationFailed):
        parse("127.0.0.1:5000/Shop/orders")


def test_start_twice_adopts_the_running_registry(local_registry: LocalRegistry, home: Path) -> None:
    pid = local_registry.pid()
    assert pid is not None
    again = LocalRegistry(home, port=local_registry.port)
    assert again.start() == local_registry.address
    assert again.pid() == pid
    with pytest.raises(TerminalError, match="another port"):
        LocalRegistry(home, port=free_port()).start()


def test_paused_registry_is_unavailable(local_registry: LocalRegistry, pushed: str) -> None:
    process = local_registry._process
    process.pause()
    try:
        with Registry(local_registry.address, timeout=0.5) as hung, pytest.raises(RegistryUnavailable):
            hung.resolve("shop/orders", "v1")
    finally:
        process.resume()


def test_stopped_registry_is_unavailable_and_a_restart_keeps_the_images(
        client: Registry, local_registry: LocalRegistry, pushed: str) -> None:
    assert local_registry.stop()
    try:
        assert not local_registry.running()
        with pytest.raises(RegistryUnavailable, match=local_registry.address):
            client.resolve("shop/orders", "v1")
        # Still unavailable when the wait ends: "not found" would be a claim nobody checked.
        with pytest.raises(RegistryUnavailable):
            wait_for_tag(client, "shop/orders", "v1", timeout=0.5, interval=0.2)
    finally:
        local_registry.start()
    assert client.resolve("shop/orders", "v1") == pushed


def test_engine_is_adopted_and_an_answering_engine_is_reused(
        docker_host: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert DockerEngine(home).ensure() == docker_host
    # Another home sees an engine answering at DOCKER_HOST and uses it instead of starting one.
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    other = DockerEngine(tmp_path)
    assert other.ensure() == docker_host
    assert not other.running()
    assert not other.stop()


def test_unreachable_engine_is_retryable(tmp_path: Path) -> None:
    with Images(f"unix://{tmp_path}/no-engine.sock") as nowhere, pytest.raises(RetryableError, match="unavailable"):
        nowhere.build(_context(tmp_path, "x\n"), "nowhere:1")


def test_a_deep_home_keeps_the_engine_socket_path_short(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    engine = DockerEngine(deep)
    assert engine.runtime_dir.parent == Path("/tmp")
    assert engine.runtime_dir == DockerEngine(deep).runtime_dir
    assert len(engine.own_host.removeprefix("unix://")) < 108
    short = Path(tempfile.mkdtemp(prefix="sf-", dir="/tmp"))  # pytest's own tmp_path may be too deep already
    try:
        assert DockerEngine(short).runtime_dir == short / "docker"
    finally:
        shutil.rmtree(short, ignore_errors=True)
