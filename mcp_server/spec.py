"""The function-spec format: the packaged JSON Schema and the checks a spec file needs before any code is read.

A spec file holds one spec object or a list of them. This module parses the
file's text, validates each spec against the schema, and checks what the
schema cannot express: one spec per function name, parameter and response
schemas that are themselves valid JSON Schema, examples whose arguments fit the
parameters schema, and example errors that name a known exception. Whether the
spec agrees with the code is `codecheck`'s job.

The schema validators are built once per process, and jsonschema-rs checks
first: it is about a hundred times faster than jsonschema, so a catalogue of
ten thousand specs loads in a second or two. Only a spec it refuses (or one
whose regular expressions Python may read differently) goes through jsonschema,
whose verdict and messages are the ones reported.
"""

from __future__ import annotations

import builtins
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import UnknownType, ValidationError
from referencing.exceptions import Unresolvable

from mcp_server.sandbox import SandboxGrant

SCHEMA_RESOURCE = "function.schema.json"
# Long instance reprs in schema messages help nobody; a person or model needs the gist and the path.
MAX_MESSAGE = 200
# How deep a spec field may nest (objects and lists): real schemas stay well under it, and it keeps every
# recursive walk of a schema (validation, tools' validators) far from Python's recursion limit.
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one file, before the catalogue attaches the file's path."""

    message: str
    function: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class SpecFile:
    """What a spec file says, once parsed and checked on its own."""

    specs: tuple[Mapping[str, Any], ...]  # specs that passed every check here, in file order
    names: tuple[str, ...]  # every function name the file specifies, valid or not, without repeats
    findings: tuple[Finding, ...]
    readable: bool  # False when the text could not be read as specs at all, so its names are unknown


@functools.cache
def schema() -> Mapping[str, Any]:
    """The packaged function-spec schema."""
    text = resources.files("mcp_server").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def spec_validator() -> Draft202012Validator:
    """The validator for whole specs, built once."""
    return Draft202012Validator(schema())


@functools.cache
def _meta_validator() -> Draft7Validator:
    """Checks that a spec's `parameters` and `responses` are well-formed JSON Schema.

    The Draft 7 meta-schema covers the keywords specs use (type, properties, items,
    required, enum, anyOf, ...) at a fifth of the cost of the 2020-12 one, whose
    dynamic references dominate the load time of a large catalogue. Its format
    checker also compiles every `pattern`, so a bad regex is caught here.
    """
    return Draft7Validator(Draft7Validator.META_SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER)


@functools.cache
def _fast_validators() -> tuple[jsonschema_rs.Validator, jsonschema_rs.Validator]:
    """jsonschema-rs's validators of whole specs and of parameter and response schemas (as `_meta_validator`)."""
    return jsonschema_rs.Draft202012Validator(schema()), jsonschema_rs.Draft7Validator(Draft7Validator.META_SCHEMA)


def _passes_fast(spec: Mapping[str, Any]) -> bool:
    """Whether jsonschema-rs finds the spec valid and its parameters and responses well-formed JSON Schema.

    True means jsonschema would find no problem either: the one format the meta-schema's
    checker asserts is `regex`, and Rust's regular expressions are not Python's, so every
    pattern is also compiled by `re` here. False means: ask jsonschema.
    """
    whole, meta = _fast_validators()
    if not whole.is_valid(spec):
        return False
    schemas = [spec["parameters"], *spec["responses"]]
    return all(meta.is_valid(s) for s in schemas) and all(_patterns_compile(s) for s in schemas)


def _patterns_compile(value: Any) -> bool:
    """Whether every `pattern` and `patternProperties` name in a schema is a regular expression `re` reads."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            patterns = [item.get("pattern"), *(item.get("patternProperties") or {})]
            try:
                for pattern in patterns:
                    if isinstance(pattern, str):
                        re.compile(pattern)
            except (re.error, RecursionError, OverflowError):
                return False
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def is_builtin_exception(name: str) -> bool:
    """True for a builtin exception class name such as `ValueError`."""
    value = getattr(builtins, name, None)
    return isinstance(value, type) and issubclass(value, BaseException)


def schema_types(schema: Mapping[str, Any]) -> set[Any]:
    """The JSON types a schema's `type` names: one, a list of them, or none (an empty set)."""
    kinds = schema.get("type")
    return set(kinds) if isinstance(kinds, list) else {kinds} - {None}


def json_path(parts: Iterable[str | int]) -> str:
    """`examples[1].parameters` from ('examples', 1, 'parameters')."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def _schema_message(error: ValidationError, prefix: str = "") -> str:
    """`<path>: <message>` for one jsonschema error, with plain words where jsonschema's are cryptic."""
    path = json_path([*([prefix] if prefix else []), *error.absolute_path])
    if error.validator == "not" and error.absolute_path and error.absolute_path[0] == "examples":
        message = "gives both 'result' and 'error'; an example expects one of them at most"
    else:
        message = _shorten(error.message)
    return f"{path}: {message}" if path else message


def parse_spec_file(text: str) -> SpecFile:
    """Parse and check the text of one spec file; every problem becomes a finding, never an exception."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"invalid JSON at column {error.colno}: {error.msg}"
        return SpecFile((), (), (Finding(message, line=error.lineno),), readable=False)
    except (ValueError, RecursionError) as error:  # an over-long number, or nesting deeper than Python's stack
        return SpecFile((), (), (Finding(f"invalid JSON: {_shorten(str(error)) or 'nested too deeply'}"),), False)
    if isinstance(data, dict):
        items, listed = [data], False
    elif isinstance(data, list):
        items, listed = data, True
    else:
        message = f"must hold one function spec (a JSON object) or a list of them, not {_kind(data)}"
        return SpecFile((), (), (Finding(message),), readable=False)
    if not items:
        return SpecFile((), (), (Finding("holds an empty list: it specifies no function"),), readable=False)

    findings: list[Finding] = []
    named: dict[str, list[int]] = {}
    candidates: list[tuple[str | None, Mapping[str, Any]]] = []
    for index, item in enumerate(items):
        label = f"spec [{index}]" if listed else "spec"
        if not isinstance(item, dict):
            findings.append(Finding(f"{label} must be a JSON object, not {_kind(item)}"))
            continue
        name = _valid_name(item.get("name"))
        if name is not None:
            named.setdefault(name, []).append(index)
        problems = list(_too_deep(item))
        fast = not problems and _passes_fast(item)
        if not problems and not fast:
            problems = [_schema_message(e) for e in spec_validator().iter_errors(item)]
        if not problems:
            problems = list(_semantic_problems(item, well_formed=fast))
        where = f"{label}: " if listed else ""
        findings.extend(Finding(where + p, function=name) for p in problems)
        if not problems:
            candidates.append((name, item))

    repeated = {name for name, indexes in named.items() if len(indexes) > 1}
    for name in sorted(repeated):
        places = ", ".join(f"[{i}]" for i in named[name])
        findings.append(
            Finding(f"is specified {len(named[name])} times in this file (specs {places}); keep one", function=name)
        )
    specs = tuple(spec for name, spec in candidates if name not in repeated)
    return SpecFile(specs, tuple(named), tuple(findings), readable=True)


def nesting_depth(value: Any) -> int:
    """How many objects and lists deep `value` nests (0 for a scalar), counted without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _too_deep(spec: Mapping[str, Any]) -> Iterable[str]:
    """Fields nested deeper than MAX_DEPTH: every schema walker (jsonschema's above all) recurses per level."""
    for key, value in spec.items():
        depth = nesting_depth(value)
        if depth > MAX_DEPTH:
            yield (
                f"{key}: nests {depth} levels of objects and lists deep; at most {MAX_DEPTH} are allowed "
                "(flatten it, or name the repeated part in $defs and $ref it)"
            )


def _valid_name(value: Any) -> str | None:
    """The spec's name when it is one the schema accepts (so findings can name the function)."""
    if isinstance(value, str) and _name_pattern().search(value):
        return value
    return None


@functools.cache
def _name_pattern() -> re.Pattern[str]:
    return re.compile(schema()["properties"]["name"]["pattern"])


def _semantic_problems(spec: Mapping[str, Any], *, well_formed: bool) -> Iterable[str]:
    """What a schema-valid spec can still get wrong on its own (`well_formed`: its schemas are known to be)."""
    meta = _meta_validator()
    parameters_ok = True
    for error in () if well_formed else meta.iter_errors(spec["parameters"]):
        parameters_ok = False
        yield f"parameters is not a valid JSON Schema: {_schema_message(error)}"
    for index, response in () if well_formed else enumerate(spec["responses"]):
        for error in meta.iter_errors(response):
            yield f"responses[{index}] is not a valid JSON Schema: {_schema_message(error)}"

    try:
        SandboxGrant.from_spec(spec.get("sandbox"))
    except ValueError as error:
        yield str(error)

    declared = [error["name"] for error in spec.get("errors", [])]
    examples = spec.get("examples", [])
    arguments = Draft202012Validator(spec["parameters"]) if examples and parameters_ok else None
    for index, example in enumerate(examples):
        if arguments is not None:
            try:
                problems = [
                    _schema_message(e, f"examples[{index}].parameters")
                    for e in arguments.iter_errors(example["parameters"])
                ]
            except (UnknownType, Unresolvable, re.error, RecursionError) as error:
                problems = [f"parameters cannot check examples[{index}].parameters: {_shorten(str(error))}"]
            yield from problems
        raised = example.get("error")
        if raised is not None and raised not in declared and not is_builtin_exception(raised):
            known = ", ".join(declared) or "none"
            yield (
                f"examples[{index}].error: '{raised}' is neither a declared error "
                f"(errors[].name: {known}) nor a builtin exception"
            )
