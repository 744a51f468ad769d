"""One spec file <-> one model: YAML in, typed model out, and back to deterministic YAML.

Every failure becomes a :class:`~stageflow.errors.Problem` naming the file, the field as a dotted
path (``image.digest``) and the rule in plain words; pydantic's and PyYAML's own wording never
reaches the user, because it names Python types rather than what to write in the file.
"""
from __future__ import annotations

import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from stageflow.errors import Problem, ValidationFailed
from stageflow.spec.models import (API_VERSION, App, Database, DeployedVersion, Platform, ReleaseHistory, Service,
                                   SpecModel)

__all__ = ["KINDS", "SpecDocument", "parse_file", "to_yaml"]

SpecDocument = Platform | App | Service | DeployedVersion | ReleaseHistory | Database
KINDS: dict[str, type[SpecModel]] = {model.KIND: model for model in (Platform, App, Service, DeployedVersion,
                                                                       ReleaseHistory, Database)}
_KIND_LIST = ", ".join(KINDS)


def to_yaml(model: SpecDocument) -> str:
    """The file text for ``model``: apiVersion and kind first, fields in model order, no nulls.

    ``values`` is written with sorted keys so that equal models always give identical text.
    """
    kind = getattr(type(model), "KIND", None)
    if kind not in KINDS:
        raise TypeError(f"{type(model).__name__} is not a spec file kind ({_KIND_LIST})")
    body = model.model_dump(mode="json", exclude_none=True)
    if "values" in body:
        body["values"] = _sorted(body["values"])
    document = {"apiVersion": API_VERSION, "kind": kind, **body}
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=4096)


def parse_file(path_in_repo: str, text: str) -> SpecDocument:
    """Parse one spec file, choosing the model by its ``kind``; raise ValidationFailed naming it."""
    data = _load_yaml(path_in_repo, text)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {_yaml_type(data)}"
        raise ValidationFailed(
            Problem("(document)", f"must be a mapping with apiVersion and kind, found {found}", path_in_repo),
            summary=f"{path_in_repo} is invalid")
    body = dict(data)
    problems = _header_problems(body.pop("apiVersion", None), body.get("kind"), path_in_repo)
    kind = body.pop("kind", None)
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is not None:
        try:
            parsed = model.model_validate(body)
        except ValidationError as exc:
            problems += [_problem_from(error, model, path_in_repo) for error in exc.errors()]
    if problems:
        raise ValidationFailed(problems, summary=f"{path_in_repo} is invalid")
    return parsed  # type: ignore[return-value]


def _header_problems(api_version: Any, kind: Any, file: str) -> list[Problem]:
    problems = []
    if api_version is None:
        problems.append(Problem("apiVersion", f"is required: write 'apiVersion: {API_VERSION}'", file))
    elif api_version != API_VERSION:
        problems.append(Problem("apiVersion", f"must be '{API_VERSION}' (found {api_version!r})", file))
    if kind is None:
        problems.append(Problem("kind", f"is required: one of {_KIND_LIST}", file))
    elif not isinstance(kind, str) or kind not in KINDS:
        problems.append(Problem("kind", f"must be one of {_KIND_LIST} (found {kind!r})", file))
    return problems


# --- YAML -------------------------------------------------------------------------------------

class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that refuses duplicate keys, which plain YAML loaders silently overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<' merges may override on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    """Indents lists under their key, as people (and most formatters) write them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _load_yaml(file: str, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from the safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        raise ValidationFailed(Problem(where, f"YAML syntax error: {detail}", file),
                               summary=f"{file} is invalid") from exc
    except yaml.YAMLError as exc:  # e.g. a reader error on control characters, without a mark
        raise ValidationFailed(Problem("(document)", f"YAML error: {exc}", file),
                               summary=f"{file} is invalid") from exc


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _yaml_type(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "scalar")


# --- pydantic errors in plain words -------------------------------------------------------------

def _problem_from(error: Any, model: type[BaseModel], file: str) -> Problem:
    loc = error["loc"]
    return Problem(_dotted(loc), _rule_text(error, model, loc), file)


def _dotted(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) and path else (f".{part}" if path else str(part))
    return path or "(document)"


def _rule_text(error: Any, model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "stageflow_rule":
        return error["msg"]
    if kind == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        return "is not a known field" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        return f"must have at least {count} {'entry' if count == 1 else 'entries'}"
    words = {
        "missing": "is required",
        "string_type": "must be a string (quote the value in YAML)",
        "int_type": "must be a whole number",
        "list_type": "must be a list",
        "dict_type": "must be a mapping of keys to values",
        "model_type": "must be a mapping of keys to values",
        "greater_than": "must be greater than {gt}",
        "greater_than_equal": "must be at least {ge}",
        "less_than_equal": "must be at most {le}",
    }
    if kind in words:
        return words[kind].format(**ctx)
    message = error["msg"]
    return message[:1].lower() + message[1:]


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the (nested) model found at ``loc``, to suggest what was meant."""
    current: type[BaseModel] | None = model
    for part in loc:
        field = current.model_fields.get(part) if current is not None and isinstance(part, str) else None
        current = _model_in(field.annotation) if field is not None else None
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((m for arg in typing.get_args(annotation) if (m := _model_in(arg))), None)
    return None
