"""GitHub's OpenAPI description, loaded once per process: find an operation by method and path,
validate parameters and bodies against it, and build minimal valid response bodies.

The description comes from the npm package ``@octokit/openapi`` pinned in tools/github-openapi
(``scripts/setup.sh`` installs it). It is OpenAPI 3.0, so its schemas are checked as JSON Schema
draft 7 (which, like OpenAPI 3.0, ignores keywords beside ``$ref``) after one translation:
``nullable: true`` becomes ``"null"`` in the type. ``format`` is not checked.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = PROJECT_ROOT / "tools" / "github-openapi" / "node_modules" / "@octokit" / "openapi"
DESCRIPTION_FILE = PACKAGE_DIR / "generated" / "api.github.com.json"
DOC_URI = "https://stand-in.invalid/api.github.com.json"
METHODS = ("get", "put", "post", "delete", "patch")


class DescriptionMissing(RuntimeError):
    """The pinned npm package is not installed (run scripts/setup.sh)."""


@dataclass(frozen=True)
class Operation:
    method: str          # upper case
    template: str        # "/repos/{owner}/{repo}/pulls"
    operation_id: str
    pointer: str         # JSON pointer of the operation object


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Description:
    """One parsed description with operation lookup, validators and response skeletons."""

    def __init__(self, document: dict[str, Any]):
        _translate_nullable(document)
        self.doc = document
        self.version = document["info"]["version"]
        self.registry = Registry().with_resource(DOC_URI, Resource(document, DRAFT7))
        self._validators: dict[str, Draft7Validator] = {}
        self._skeletons: dict[str, Any] = {}
        # Per method: (literal segment count, regex, operation); more literal segments first, so
        # /repos/{owner}/{repo}/git/refs wins over a template with a parameter in that place.
        self._routes: dict[str, list[tuple[int, re.Pattern[str], re.Pattern[str] | None, Operation]]] = {}
        for template, item in document["paths"].items():
            for method in METHODS:
                if method not in item:
                    continue
                op = Operation(method.upper(), template, item[method]["operationId"],
                               f"/paths/{_escape(template)}/{method}")
                parts = template.strip("/").split("/")
                strict = "/" + "/".join(r"([^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
                # GitHub lets a trailing ref or file path span several segments.
                greedy = None
                if parts[-1] in ("{ref}", "{path}"):
                    greedy = re.compile("/" + "/".join([*(r"([^/]+)" if p.startswith("{") else re.escape(p)
                                                          for p in parts[:-1]), r"(.+)"]) + "$")
                literal = sum(not p.startswith("{") for p in parts)
                self._routes.setdefault(op.method, []).append((literal, re.compile(strict + "$"), greedy, op))
        for routes in self._routes.values():
            routes.sort(key=lambda r: -r[0])

    # --- lookup ---------------------------------------------------------------------------------
    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation for ``method`` and an undecoded request path, with its path parameters."""
        routes = self._routes.get(method.upper(), [])
        for use_greedy in (False, True):
            for _, strict, greedy, op in routes:
                pattern = greedy if use_greedy else strict
                if pattern is None or not (m := pattern.match(raw_path)):
                    continue
                names = re.findall(r"{([^}]+)}", op.template)
                return op, {name: unquote(value) for name, value in zip(names, m.groups())}
        return None

    def node(self, pointer: str) -> Any:
        node: Any = self.doc
        for token in pointer.lstrip("/").split("/") if pointer.strip("/") else []:
            token = token.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]
        return node

    def resolve(self, pointer: str) -> tuple[Any, str]:
        """Follow OpenAPI-level ``$ref``s (parameters, request bodies, responses)."""
        node = self.node(pointer)
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"].removeprefix("#")
            node = self.node(pointer)
        return node, pointer

    def parameters(self, op: Operation) -> list[tuple[dict[str, Any], str]]:
        """(parameter object, pointer of its schema) for the operation and its path item."""
        found = []
        for owner in (op.pointer, op.pointer.rsplit("/", 1)[0]):
            for i, _ in enumerate(self.node(owner).get("parameters", [])):
                param, pointer = self.resolve(f"{owner}/parameters/{i}")
                found.append((param, f"{pointer}/schema"))
        return found

    def request_schema(self, op: Operation) -> tuple[str | None, bool]:
        """(pointer of the JSON request body schema or None, whether a body is required)."""
        operation = self.node(op.pointer)
        if "requestBody" not in operation:
            return None, False
        body, pointer = self.resolve(f"{op.pointer}/requestBody")
        content = body.get("content", {})
        if "application/json" not in content:
            return None, bool(body.get("required"))
        return f"{pointer}/content/application~1json/schema", bool(body.get("required"))

    def response_schema(self, op: Operation, status: int) -> tuple[bool, str | None]:
        """(whether ``status`` is documented, pointer of its JSON schema or None for no body)."""
        responses = self.node(op.pointer)["responses"]
        if str(status) not in responses:
            return False, None
        response, pointer = self.resolve(f"{op.pointer}/responses/{status}")
        content = response.get("content") or {}
        if not content:
            return True, None
        kind = "application/json" if "application/json" in content else next(iter(content))
        return True, f"{pointer}/content/{_escape(kind)}/schema"

    # --- validation -------------------------------------------------------------------------------
    def errors(self, schema_pointer: str, instance: Any) -> list[str]:
        validator = self._validators.get(schema_pointer)
        if validator is None:
            validator = Draft7Validator({"$ref": f"{DOC_URI}#{schema_pointer}"}, registry=self.registry)
            self._validators[schema_pointer] = validator
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
                for e in validator.iter_errors(instance)]

    # --- response skeletons ---------------------------------------------------------------------
    def skeleton(self, schema_pointer: str) -> Any:
        """A minimal instance of a schema: every required property, with the plainest valid value
        (None where null is allowed). Callers overlay the values that matter."""
        if schema_pointer not in self._skeletons:
            self._skeletons[schema_pointer] = _skeleton(self, self.node(schema_pointer), 0)
        return copy.deepcopy(self._skeletons[schema_pointer])


def _translate_nullable(node: Any) -> None:
    """OpenAPI 3.0 ``nullable: true`` -> JSON Schema: add "null" to the type (or allow null)."""
    if isinstance(node, list):
        for item in node:
            _translate_nullable(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _translate_nullable(value)
    if node.get("nullable") is True:
        del node["nullable"]
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        elif "type" not in node:
            rest = dict(node)
            node.clear()
            node["anyOf"] = [rest, {"type": "null"}]


def _skeleton(description: Description, schema: Any, depth: int) -> Any:
    if depth > 12 or not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return _skeleton(description, description.node(schema["$ref"].removeprefix("#")), depth + 1)
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            branches = schema[combinator]
            if any(b == {"type": "null"} for b in branches):
                return None
            return _skeleton(description, branches[0], depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = _skeleton(description, part, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "null" in types:
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = next((t for t in types if t), "object" if "properties" in schema else None)
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _skeleton(description, props.get(name, {}), depth + 1) for name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "string":
        return {"date-time": "2026-01-01T00:00:00Z", "uri": "https://stand-in.invalid/",
                "email": "stand-in@example.com"}.get(schema.get("format", ""), "x" * schema.get("minLength", 0))
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1) if "maximum" not in schema else int(schema.get("minimum", 0))
    if kind == "number":
        return 0
    if kind == "boolean":
        return False
    return None


@functools.cache
def load_description(path: Path = DESCRIPTION_FILE) -> Description:
    """Parsed once per process (about a second for 13 MB); the tests share it."""
    if not path.is_file():
        raise DescriptionMissing(f"{path} is missing: run scripts/setup.sh (npm ci in tools/github-openapi)")
    return Description(json.loads(path.read_text()))
