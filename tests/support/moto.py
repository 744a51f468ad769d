"""AWS stood in by moto's server mode (the real AWS cannot be reached here): one loopback server
per use, its URL handed to boto3 and Terraform as the endpoint."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from stageflow.local.process import free_port


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto on a free loopback port; yields its URL, stops it afterwards."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
