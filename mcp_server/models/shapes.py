"""The shape of the embedded model's answer, kept without GBNF grammars.

A GBNF grammar is checked against the whole 262k-token vocabulary at every step, which
made a small model three times slower. The embedded backend instead lets the few-shot
prompt keep the shape, cuts the code at the first line that cannot be module level,
reads the function's signature from the code, and constrains only the short,
typed values it asks for (example arguments and expected results) with token masks
that are computed once per vocabulary.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Module-level lines a generated module may hold: definitions, imports, decorators, comments.
_TOP_LEVEL = ("def ", "async def ", "class ", "import ", "from ", "@", "#")

# Python annotation -> JSON Schema type.
JSON_TYPES: dict[str, str] = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "list": "array",
    "tuple": "array",
    "dict": "object",
}


def trim_code(text: str) -> str:
    """The code up to the first module-level line that is no definition, import, decorator or comment.

    A base model that has finished its function tends to go on with example calls or prints.
    """
    kept: list[str] = []
    for line in text.split("\n"):
        if line and not line[0].isspace() and not line.startswith(_TOP_LEVEL) and kept:
            break
        kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    json_type: str | None  # None: the annotation says nothing we can check
    required: bool
    default: tuple[Any, ...] = ()  # (value,) for a default written as a JSON-able literal


def _default(node: ast.expr | None) -> tuple[Any, ...]:
    if node is None:
        return ()
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return ()
    return (value,)


@dataclass(frozen=True, slots=True)
class Signature:
    """What the spec must say about the function the model wrote."""

    name: str
    docstring: str
    parameters: tuple[Parameter, ...]
    returns: str | None
    errors: tuple[tuple[str, str], ...]  # (exception class, its docstring) for each custom exception raised


def _json_type(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Subscript):
        node = node.value
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return JSON_TYPES.get(name.lower())


def signature(code: str) -> Signature | None:
    """The first public top-level function of `code`, or None when the code has none or does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    function = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")),
        None,
    )
    if function is None:
        return None
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = [*zip(positional, defaults, strict=True), *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    params = [Parameter(a.arg, _json_type(a.annotation), d is None, _default(d)) for a, d in pairs]
    classes = {n.name: ast.get_docstring(n) or "" for n in tree.body if isinstance(n, ast.ClassDef)}
    raised = []
    for node in ast.walk(function):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id in classes and target.id not in raised:
                raised.append(target.id)
    return Signature(
        name=function.name,
        docstring=(ast.get_docstring(function) or "").strip(),
        parameters=tuple(params),
        returns=_json_type(function.returns),
        errors=tuple((name, classes[name] or f"Raised by {function.name}.") for name in raised),
    )


def build_spec(sig: Signature, description: str, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The function_spec for `sig`: structure from the code, words and examples from the model."""
    spec: dict[str, Any] = {
        "name": sig.name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": {p.name: _property(p) for p in sig.parameters},
            "required": [p.name for p in sig.parameters if p.required],
        },
        "responses": [{"type": sig.returns} if sig.returns else {}],
    }
    if sig.errors:
        spec["errors"] = [{"name": name, "description": text} for name, text in sig.errors]
    spec["examples"] = list(examples)
    return spec


def _property(param: Parameter) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.json_type} if param.json_type else {}
    if param.default:
        schema["default"] = param.default[0]
    return schema


# -- typed values -----------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]")
_NUMBER_PIECE = re.compile(r"[0-9.\-]+")
_WORD = re.compile(r" ?[a-z]+")
_LIST_PIECE = re.compile(r"[0-9, \]]+")
_ENDS = (",", '"', "]", "\n")


@dataclass(frozen=True, slots=True)
class TokenClasses:
    """Which token ids may continue a typed value; computed once per vocabulary."""

    digits: tuple[int, ...]
    number: tuple[int, ...]
    words: tuple[int, ...]
    list_items: tuple[int, ...]
    booleans: tuple[int, ...]
    no_newline: tuple[int, ...]
    ends: dict[str, tuple[int, ...]]  # the tokens that are exactly one of the values' end marks

    def exactly(self, end: str) -> tuple[int, ...]:
        return self.ends.get(end, ())

    @classmethod
    def of(cls, pieces: Sequence[str]) -> TokenClasses:
        """Classify every token's text; `pieces[i]` is token i decoded on its own."""

        def matching(pattern: re.Pattern[str]) -> tuple[int, ...]:
            return tuple(i for i, piece in enumerate(pieces) if pattern.fullmatch(piece))

        return cls(
            digits=matching(_DIGITS),
            number=matching(_NUMBER_PIECE),
            words=matching(_WORD),
            list_items=matching(_LIST_PIECE),
            booleans=tuple(i for i, piece in enumerate(pieces) if piece in ("true", "false")),
            no_newline=tuple(i for i, piece in enumerate(pieces) if piece and "\n" not in piece),
            ends={end: tuple(i for i, piece in enumerate(pieces) if piece == end) for end in _ENDS},
        )


@dataclass(frozen=True, slots=True)
class ValueShape:
    """How to ask for one value: a forced opening, the tokens allowed inside, where it ends."""

    opening: str
    allowed: str | None  # a TokenClasses field, or None for any token
    stop: str
    max_tokens: int


def argument_shape(json_type: str | None) -> ValueShape:
    """Example arguments are kept small and simple: one digit, a word or two, a short list of digits."""
    if json_type in ("integer", "number"):
        return ValueShape("", "digits", ",", 1)
    if json_type == "string":
        return ValueShape('"', "words", '"', 3)
    if json_type == "boolean":
        return ValueShape("", "booleans", ",", 1)
    if json_type == "array":
        return ValueShape("[", "list_items", "]", 10)
    return ValueShape("", "no_newline", ",", 12)


def result_shape(json_type: str | None) -> ValueShape:
    """Expected results end at the end of the line."""
    if json_type in ("integer", "number"):
        return ValueShape("", "number", "\n", 12)
    if json_type == "string":
        return ValueShape('"', "no_newline", '"', 24)
    if json_type == "boolean":
        return ValueShape("", "booleans", "\n", 1)
    return ValueShape("", "no_newline", "\n", 32)


def read_value(opening: str, text: str, closing: str, json_type: str | None) -> tuple[bool, Any]:
    """(True, value) when `opening + text + closing` is JSON of the declared type, else (False, None)."""
    source = opening + text.strip() + (closing if opening else "")
    try:
        value = json.loads(source)
    except ValueError:
        return False, None
    return _has_type(value, json_type), value


def _has_type(value: Any, json_type: str | None) -> bool:
    if json_type is None:
        return True
    if isinstance(value, bool):
        return json_type == "boolean"
    if json_type == "integer":
        return isinstance(value, int)
    if json_type == "number":
        return isinstance(value, int | float)
    return isinstance(value, {"string": str, "array": list, "object": dict}.get(json_type, object))
