"""A local stand-in for GitHub's REST API that holds every request and every answer to GitHub's
own OpenAPI description.

    with GitHubStandIn() as standin:                  # 127.0.0.1, a free port, its own thread
        forge = GitHubForge(SecretStr(standin.token), standin.org, base_url=standin.base_url, ...)
        forge.create_repo("shop")
        assert standin.violations == []

For each request the server finds the operation by method and path template, checks path and
query parameters and the JSON body against it (a request the description does not allow is
recorded as a violation and answered 422, or 404 when no operation matches), lets a handler
(github_state.py, github_git_handlers.py, github_handlers.py) answer from a small in-memory state, and checks the answer
against the operation's response schema (a mismatch is a violation too). ``fail_next`` makes the
next calls answer 429/403/5xx, as GitHub does under load.
"""
from __future__ import annotations

import json
import secrets
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import tests.support.github_git_handlers  # noqa: F401 - registers the handlers
import tests.support.github_handlers  # noqa: F401 - registers the handlers
from tests.support.github_state import HANDLERS, GitHubState, Refusal
from tests.support.openapi import Description, Operation, load_description

__all__ = ["Fault", "GitHubStandIn", "Violation"]


@dataclass(frozen=True)
class Violation:
    method: str
    path: str
    operation: str | None
    where: str            # "path", "query", "body", "response 200", "route", "handler"
    errors: tuple[str, ...]


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "Server Error"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    operation: str | None
    status: int


class GitHubStandIn:
    def __init__(self, description: Description | None = None, *, org: str = "stand-in-org",
                 user: str = "stageflow-bot"):
        self.description = description or load_description()
        self.token = "ghp_standin_" + secrets.token_hex(16)
        self.org, self.user = org, user
        self.violations: list[Violation] = []
        self.calls: list[Call] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.state = GitHubState(self.description, self.base_url, org, user)
        self._thread = threading.Thread(target=self._server.serve_forever, name="github-stand-in", daemon=True)

    def __enter__(self) -> GitHubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- test controls --------------------------------------------------------------------------
    def fail_next(self, count: int, status: int, *, headers: dict[str, str] | None = None,
                  message: str = "Server Error") -> None:
        """Answer the next ``count`` requests with ``status`` (429, 403 + Retry-After, 502 ...)."""
        with self._lock:
            self._faults.extend(Fault(status, dict(headers or {}), message) for _ in range(count))

    def mark_template(self, name: str) -> None:
        self.state.repos[(self.org, name)].is_template = True

    def secret_value(self, repo: str, name: str) -> str:
        """What the forge's sealed box decrypts to with the repository's private key."""
        return self.state.repos[(self.org, repo)].secrets[name]

    def operations(self) -> list[str]:
        return [c.operation or "?" for c in self.calls]

    # --- one request ----------------------------------------------------------------------------
    def answer(self, method: str, raw_path: str, query: dict[str, str], headers: dict[str, str],
               raw_body: bytes) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            status, extra_headers, body, op = self._answer(method, raw_path, query, headers, raw_body)
            self.calls.append(Call(method, raw_path, op.operation_id if op else None, status))
            return status, extra_headers, body

    def _answer(self, method: str, raw_path: str, query: dict[str, str], headers: dict[str, str],
                raw_body: bytes) -> tuple[int, dict[str, str], Any, Operation | None]:
        auth = headers.get("authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, None
        if self._faults:
            fault = self._faults.pop(0)
            return fault.status, fault.headers, {"message": fault.message,
                                                 "documentation_url": "https://docs.github.com/rest"}, None
        found = self.description.match(method, raw_path)
        if found is None:
            self._violate(method, raw_path, None, "route", ["no operation in GitHub's description"])
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, None
        op, path_params = found
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            self._violate(method, raw_path, op, "body", ["not JSON"])
            return 400, {}, {"message": "Problems parsing JSON"}, op
        problems = self._check_request(op, path_params, query, body)
        if problems:
            for where, errors in problems.items():
                self._violate(method, raw_path, op, where, errors)
            return 422, {}, {"message": "Invalid request.",
                             "errors": [f"{w}: {e}" for w, es in problems.items() for e in es],
                             "documentation_url": "https://docs.github.com/rest"}, op
        handler = HANDLERS.get(op.operation_id)
        if handler is None:
            self._violate(method, raw_path, op, "handler", [f"the stand-in does not implement {op.operation_id}"])
            return 501, {}, {"message": f"stand-in: {op.operation_id} not implemented"}, op
        try:
            status, answer = handler(self.state, path_params, query, body if body is not None else {})
        except Refusal as refusal:
            status, answer = refusal.status, self._error_body(op, refusal)
        documented, schema = self.description.response_schema(op, status)
        if not documented and status == 404:
            # GitHub answers 404 for anything missing or hidden, on every operation, and its
            # description leaves that out of some (variables, environments): hold it to basic-error.
            documented, schema = True, "/components/schemas/basic-error"
        if not documented:
            self._violate(method, raw_path, op, f"response {status}", ["status not documented for this operation"])
        elif schema is not None and (errors := self.description.errors(schema, answer)):
            self._violate(method, raw_path, op, f"response {status}", errors)
        return status, {}, answer, op

    def _check_request(self, op: Operation, path_params: dict[str, str], query: dict[str, str],
                       body: Any) -> dict[str, list[str]]:
        problems: dict[str, list[str]] = {}
        known_query = set()
        for param, schema_pointer in self.description.parameters(op):
            where, name = param["in"], param["name"]
            if where == "query":
                known_query.add(name)
            source = path_params if where == "path" else query if where == "query" else None
            if source is None:
                continue
            if name not in source:
                if param.get("required"):
                    problems.setdefault(where, []).append(f"{name}: required")
                continue
            value = _coerce(self.description.node(schema_pointer), source[name])
            problems.setdefault(where, []).extend(f"{name}: {e}" for e in self.description.errors(schema_pointer, value))
        unknown = sorted(set(query) - known_query)
        if unknown:
            problems.setdefault("query", []).append(f"parameters not in the description: {', '.join(unknown)}")
        schema, required = self.description.request_schema(op)
        if body is None and required:
            problems.setdefault("body", []).append("a request body is required")
        elif body is not None and schema is None and body != {}:
            problems.setdefault("body", []).append("this operation takes no JSON body")
        elif body is not None and schema is not None:
            problems.setdefault("body", []).extend(self.description.errors(schema, body))
        return {where: errors for where, errors in problems.items() if errors}

    def _error_body(self, op: Operation, refusal: Refusal) -> Any:
        documented, schema = self.description.response_schema(op, refusal.status)
        base = self.description.skeleton(schema) if documented and schema else {}
        if not isinstance(base, dict):
            base = {}
        return {**base, "message": refusal.message, "documentation_url": "https://docs.github.com/rest"}

    def _violate(self, method: str, path: str, op: Operation | None, where: str, errors: list[str]) -> None:
        self.violations.append(Violation(method, path, op.operation_id if op else None, where, tuple(errors)))


def _coerce(schema: Any, value: str) -> Any:
    """Query and path values arrive as text; read them as the schema's type before validating."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    kind = kind[0] if isinstance(kind, list) else kind
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


def _handler_class(standin: GitHubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = standin.answer(self.command, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
                                                 headers, raw_body)
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            pass

    return Handler
