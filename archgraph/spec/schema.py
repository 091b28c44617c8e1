"""A JSON Schema for specs, generated from the op and block registries (`archgraph schema`).

Editors use it for completion and validation (docs/editor-support.md). It states what the
registries know: the top-level keys, every op with its arguments (types, choices, required
ones) and every registered block with its arguments where their annotations say the type.
Any argument may also be a `$` expression. What a schema cannot know — shapes, wiring, block
templates defined in the spec itself — is checked by `archgraph validate`, not here: a spec that
loads always validates against the schema, not the other way round.

Plugins registered before the schema is generated (`archgraph schema --plugin my_ops`) are in it.
"""

from __future__ import annotations

import json
from typing import Any

from archgraph.blocks.registry import block_names, get_block
from archgraph.ops.registry import Arg, get_op, op_names
from archgraph.spec.block_types import param_kinds
from archgraph.spec.interpret import (
    ENTRY_KEYS,
    FORMAT_VERSION,
    INPUT_KEYS,
    REPEAT_KEYS,
    TEMPLATE_KEYS,
    TOP_KEYS,
)
from archgraph.spec.names import IDENTIFIER, NAME

SCHEMA_ID = "https://archgraph.invalid/spec.schema.json"
_EXPR = {"type": "string", "pattern": r"^\$", "description": "a spec expression: $name or ${expr}"}
_NAME = {"type": "string", "pattern": f"^{NAME.pattern}$"}
_NAMES = {"anyOf": [_NAME, {"type": "array", "items": _NAME}, _EXPR]}
_ANY: dict[str, Any] = {}


def _or_expr(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, _EXPR]}


def _arg_schema(arg: Arg) -> dict[str, Any]:
    schema: dict[str, Any] = dict(arg.kind.json_schema)
    if arg.choices is not None:
        schema = {"enum": list(arg.choices)}
    if arg.doc:
        schema["description"] = arg.doc
    if not arg.required:
        try:
            json.dumps(arg.default)
            schema["default"] = list(arg.default) if isinstance(arg.default, tuple) else arg.default
        except TypeError:
            pass
    return _or_expr(schema)


def _entry_keys() -> dict[str, Any]:
    return {
        "in": {**_NAMES, "description": "input node(s); default: the previous entry"},
        "when": {"description": "false turns the entry into a pass-through of its first input"},
    }


def _op_rule(name: str) -> dict[str, Any]:
    op = get_op(name)
    props = {**_entry_keys(), "op": {"const": name}}
    props["share"] = {"type": "string", "description": "the id of a node whose parameters to use"}
    props.update({k: _arg_schema(a) for k, a in op.args.items() if k not in ENTRY_KEYS})
    required = ["op", *(k for k, a in op.args.items() if a.required)]
    return {
        "if": {"properties": {"op": {"const": name}}, "required": ["op"]},
        "then": {
            "properties": props,
            "required": required,
            "additionalProperties": False,
            "description": op.doc,
        },
    }


def _block_rule(name: str) -> dict[str, Any]:
    """Types of a registered block's arguments. Not which are required or allowed: a spec may
    define a template of the same name (resnet18.yaml's `basic`), which then takes its place."""
    block = get_block(name)
    kinds = param_kinds(block)
    props: dict[str, Any] = {"block": {"const": name}}
    props.update({k: _or_expr(dict(kinds[k].json_schema)) for k in block.params if k in kinds})
    return {
        "if": {"properties": {"block": {"const": name}}, "required": ["block"]},
        "then": {"properties": props, "description": block.doc},
    }


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a spec, for the ops and blocks registered now."""
    ops, blocks = op_names(), block_names()
    entry = {
        "type": "object",
        "description": "an op call (`op:`) or a block call (`block:`)",
        "properties": {
            "op": {"enum": ops, "description": "a registered op (`archgraph ops`)"},
            # a block is a registered one or a template of this spec (unknown to the schema)
            "block": {
                "anyOf": [{"enum": blocks}, _NAME],
                "description": "a registered block or a template",
            },
            "repeat": {
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    {
                        "type": "object",
                        "properties": {
                            "count": _or_expr({"type": "integer", "minimum": 1}),
                            "start": _or_expr({"type": "integer", "minimum": 0}),
                            "prefix": {"type": "string"},
                        },
                        "required": ["count"],
                        "additionalProperties": False,
                    },
                    _EXPR,
                ],
                "description": "call a block N times: `.0`..`.N-1`, or {count, start, prefix}",
            },
            **_entry_keys(),
        },
        "oneOf": [{"required": ["op"]}, {"required": ["block"]}],
        "allOf": [*(_op_rule(n) for n in ops), *(_block_rule(n) for n in blocks)],
    }
    nodes = {
        "type": "object",
        # '.' (in a template): the entry takes the block call's own id
        "propertyNames": {"pattern": f"^({NAME.pattern}|\\.)$"},
        "additionalProperties": {"$ref": "#/$defs/entry"},
    }
    shape = {"type": "array", "items": _or_expr({"type": "integer", "minimum": 1})}
    params = {"type": "object", "propertyNames": {"pattern": f"^{IDENTIFIER.pattern}$"}}
    template = {
        "type": "object",
        "properties": {
            "params": {**params, "description": "template parameters; null: required"},
            "inputs": {"type": "array", "items": _NAME},
            "nodes": {"$ref": "#/$defs/nodes"},
            "output": _NAME,
            "description": {"type": "string"},
        },
        "required": ["nodes"],
        "additionalProperties": False,
    }
    assert set(template["properties"]) == set(TEMPLATE_KEYS)
    assert set(entry["properties"]["repeat"]["anyOf"][1]["properties"]) == set(REPEAT_KEYS)
    top = {
        "archgraph": {"const": FORMAT_VERSION, "description": "the spec format version"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "params": {
            **params,
            "description": "spec parameters with defaults (override: --set NAME=VALUE)",
        },
        "inputs": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": f"^{NAME.pattern}$"},
            "additionalProperties": {
                "anyOf": [
                    shape,
                    {
                        "type": "object",
                        "properties": {"shape": shape, "dtype": {"type": "string"}},
                        "required": ["shape"],
                        "additionalProperties": False,
                    },
                    _EXPR,
                ]
            },
            "description": "per-sample input shapes (the batch dimension is left out)",
        },
        "blocks": {
            "type": "object",
            "propertyNames": {"pattern": f"^{NAME.pattern}$"},
            "additionalProperties": {"$ref": "#/$defs/template"},
        },
        "nodes": {"$ref": "#/$defs/nodes"},
        "outputs": {"anyOf": [_NAME, {"type": "array", "items": _NAME}]},
    }
    assert set(top) == set(TOP_KEYS) and set(INPUT_KEYS) == {"shape", "dtype"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "archgraph spec",
        "description": "A network as a DAG of op and block calls (generated by `archgraph schema`).",
        "type": "object",
        "properties": top,
        "required": ["name", "inputs", "nodes"],
        "additionalProperties": False,
        "$defs": {"entry": entry, "nodes": nodes, "template": template},
    }


def schema_text() -> str:
    """The schema as indented JSON text (what `archgraph schema` prints)."""
    return json.dumps(spec_schema(), indent=1, sort_keys=False) + "\n"
