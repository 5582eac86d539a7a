"""Python access to the Ecolix contract (``openapi.yaml``), the one source of payload schemas.

The client, the sandbox and the mapping validation all ask this module for an operation's
method, path and JSON schemas, so that none of them keeps its own copy of the contract::

    spec = load_contract().operation("orders.create")
    spec.method, spec.path, spec.path_params      # "POST", "/orders", ()
    jsonschema_rs.validator_for(spec.request_schema)

Schemas handed out are self-contained (every ``$ref`` inlined) so that a JSON Schema
validator can compile them alone, without the rest of the OpenAPI document.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml

from edigw.errors import EdigwError

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
HTTP_METHODS = ("get", "put", "post", "patch", "delete")

OperationKind = Literal["read", "write"]


class ContractError(EdigwError):
    """The contract file is inconsistent, or an unknown operation was asked for."""


@dataclass(frozen=True, slots=True)
class QueryParam:
    """One query parameter of a read operation."""

    name: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """One Ecolix operation as the contract defines it.

    ``path`` is relative to the API base URL (``/api/v1``), with ``{name}`` placeholders
    listed in ``path_params``; for a write each placeholder is also a required property of
    the body. ``target``: a write a mapping may target (``x-edigw-target: false`` in the
    contract says otherwise, e.g. ``dry_runs.create``). ``request_schema`` is None for reads; ``response_schema`` is the schema of the
    success answer (for lists: ``{"items": [...], "next_cursor": ...}``).
    """

    op_id: str
    method: str
    path: str
    path_params: tuple[str, ...]
    kind: OperationKind
    request_schema: dict[str, Any] | None
    response_schema: dict[str, Any]
    object_id_field: str | None
    success_statuses: tuple[int, ...]
    query_params: tuple[QueryParam, ...] = ()
    summary: str = ""
    is_list: bool = False
    item_schema: dict[str, Any] | None = field(default=None, compare=False)
    #: whether a mapping may target it: a write of business data (not ``dry_runs.create``)
    target: bool = True
    #: ``x-edigw-upsert``: a write that sets its object (the path) to the body, so the same
    #: body twice changes nothing the second time (``edigw.journal.accepted``)
    upsert: bool = False

    def url_path(self, values: Mapping[str, Any]) -> str:
        """The path with its placeholders filled from ``values`` (a body or a dict)."""
        path = self.path
        for name in self.path_params:
            if name not in values:
                msg = f"{self.op_id}: the value of path parameter {name!r} is missing"
                raise ContractError(msg)
            path = path.replace("{" + name + "}", _quote_segment(str(values[name])))
        return path


def _quote_segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


class Contract:
    """The parsed OpenAPI document and its operations, looked up by operationId."""

    def __init__(self, document: dict[str, Any], text: str) -> None:
        self.document = document
        self.text = text
        self._operations = {spec.op_id: spec for spec in _build_operations(document)}

    def operation(self, op_id: str) -> OperationSpec:
        """The operation named ``op_id`` (e.g. ``"orders.create"``)."""
        try:
            return self._operations[op_id]
        except KeyError:
            known = ", ".join(sorted(self._operations))
            msg = f"unknown Ecolix operation {op_id!r}; known operations: {known}"
            raise ContractError(msg) from None

    def operations(self) -> Iterator[OperationSpec]:
        """Every operation, in contract order."""
        return iter(self._operations.values())

    def schema(self, name: str) -> dict[str, Any]:
        """A self-contained copy of ``components/schemas/<name>``."""
        schemas = self.document.get("components", {}).get("schemas", {})
        if name not in schemas:
            msg = f"the Ecolix contract has no schema named {name!r}"
            raise ContractError(msg)
        return _self_contained(schemas[name], self.document)


@functools.lru_cache(maxsize=1)
def load_contract() -> Contract:
    """The contract shipped with edigw, parsed once per process."""
    text = resources.files("edigw.ecolix").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return parse_contract(text)


def parse_contract(text: str) -> Contract:
    """Parse an OpenAPI document given as YAML text."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"the Ecolix contract is not valid YAML: {exc}"
        raise ContractError(msg) from exc
    if not isinstance(document, dict) or "paths" not in document:
        msg = "the Ecolix contract has no 'paths'"
        raise ContractError(msg)
    return Contract(document, text)


def _build_operations(document: dict[str, Any]) -> Iterator[OperationSpec]:
    for path, item in document["paths"].items():
        shared_params = item.get("parameters", [])
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            params = [_resolve(p, document) for p in [*shared_params, *op.get("parameters", [])]]
            yield _build_operation(document, path, method, op, params)


def _build_operation(
    document: dict[str, Any],
    path: str,
    method: str,
    op: dict[str, Any],
    params: list[dict[str, Any]],
) -> OperationSpec:
    op_id = op["operationId"]
    path_params = tuple(p["name"] for p in params if p["in"] == "path")
    query_params = tuple(
        QueryParam(
            p["name"], _self_contained(p.get("schema", {}), document), p.get("required", False)
        )
        for p in params
        if p["in"] == "query"
    )
    kind: OperationKind = "read" if method == "get" else "write"
    request_schema = None
    if "requestBody" in op:
        body = _resolve(op["requestBody"], document)
        request_schema = _self_contained(body["content"]["application/json"]["schema"], document)
        missing = [n for n in path_params if n not in request_schema.get("required", [])]
        if missing:
            msg = f"{op_id}: path parameters {missing} must be required body properties"
            raise ContractError(msg)
    successes = sorted(int(s) for s in op["responses"] if s.startswith("2"))
    if not successes:
        msg = f"{op_id}: no success response in the contract"
        raise ContractError(msg)
    success = _resolve(op["responses"][str(successes[0])], document)
    response_schema = _self_contained(success["content"]["application/json"]["schema"], document)
    props = response_schema.get("properties", {})
    is_list = "items" in props and "next_cursor" in props
    item_schema = props["items"]["items"] if is_list else None
    return OperationSpec(
        op_id=op_id,
        method=method.upper(),
        path=path,
        path_params=path_params,
        kind=kind,
        request_schema=request_schema,
        response_schema=response_schema,
        object_id_field=op.get("x-object-id"),
        success_statuses=tuple(successes),
        query_params=query_params,
        summary=op.get("summary", ""),
        is_list=is_list,
        item_schema=item_schema,
        target=kind == "write" and op.get("x-edigw-target", True) is not False,
        upsert=kind == "write" and op.get("x-edigw-upsert", False) is True,
    )


def _resolve(node: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """Follow a top-level ``$ref`` (local references only)."""
    seen: set[str] = set()
    while "$ref" in node:
        ref = node["$ref"]
        if ref in seen or not ref.startswith("#/"):
            msg = f"unsupported or circular $ref {ref!r} in the Ecolix contract"
            raise ContractError(msg)
        seen.add(ref)
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _inline(node: Any, document: dict[str, Any], depth: int = 0) -> Any:
    if depth > 50:
        msg = "the Ecolix contract's schemas nest too deeply (circular $ref?)"
        raise ContractError(msg)
    if isinstance(node, dict):
        if "$ref" in node:
            node = _resolve(node, document)
        return {
            k: _inline(v, document, depth + 1) for k, v in node.items() if not k.startswith("x-")
        }
    if isinstance(node, list):
        return [_inline(v, document, depth + 1) for v in node]
    return copy.copy(node)


def _self_contained(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    inlined: dict[str, Any] = _inline(schema, document)
    inlined.pop("examples", None)
    return {"$schema": JSON_SCHEMA_DIALECT, **inlined}
