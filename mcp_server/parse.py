"""Turn a model's Markdown answer into code and function specs.

Real answers are messy (odd fence tags, missing fences, lenient JSON, specs
that disagree with the code), so everything that can be repaired is repaired
and written down, and everything else becomes a precise problem message that
can be sent back to the model.
"""

from __future__ import annotations

import ast
import copy
import json
import logging
import re
import textwrap
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import json_repair

log = logging.getLogger(__name__)

CODE_TAGS = frozenset({"python", "py", "python3", "py3"})
SPEC_TAGS = frozenset({"function_spec", "function-spec", "functionspec", "function_specs", "spec", "specs"})
JSON_TAGS = frozenset({"json", "jsonc", "json5"})
_KNOWN_TAGS = CODE_TAGS | SPEC_TAGS | JSON_TAGS
# Keys models wrap specs in, e.g. {"function_spec": {...}} or {"functions": [...]}.
_WRAPPER_KEYS = ("function_spec", "function_specs", "functionspec", "spec", "specs", "functions", "function")

_OPEN = re.compile(
    r"^(?P<prefix>[ \t]*(?:(?:[-*+]|\d{1,3}[.)])[ \t]+)?)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*$"
)

_CODE_START = re.compile(r"^(?:def |async def |class |import |from |@)", re.MULTILINE)
_CLOSER = re.compile(r"\s*[}\]]")
_WORD = re.compile(r"[A-Za-z_]\w*")
_COLON = re.compile(r"\s*:")


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """What was extracted from one answer, and what was done to get it."""

    code: str | None
    specs: tuple[dict[str, Any], ...]
    problems: tuple[str, ...]
    repairs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Block:
    tag: str
    body: str
    closed: bool


def parse_answer(text: str) -> ParsedAnswer:
    """Extract the Python code and the function specs from a Markdown answer."""
    problems: list[str] = []
    repairs: list[str] = []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    code_blocks: list[_Block] = []
    spec_values: list[tuple[str, Any]] = []
    spec_blocks = 0

    start = _leading_code(lines, code_blocks, repairs)
    for block in _scan_blocks(lines[start:]):
        kind = _classify(block)
        if kind == "code":
            code_blocks.append(block)
        elif kind == "spec":
            spec_blocks += 1
            label = f"function_spec block {spec_blocks}"
            if block.tag not in SPEC_TAGS:
                origin = f"a block tagged {block.tag!r}" if block.tag else "an untagged block"
                repairs.append(f"read {origin} as {label}")
            if not block.closed:
                repairs.append(f"closed an unterminated {label}")
            value = _load_json(block.body, label, problems, repairs)
            if value is not None:
                spec_values.append((label, value))

    code = _join_code(code_blocks, repairs)
    if code is None:
        problems.append("no python code block found")
    specs = [spec for label, value in spec_values for spec in _spec_objects(value, label, problems, repairs)]
    if not spec_blocks:
        problems.append("no function_spec block found")
    for spec in specs:
        if "sandbox" in spec:
            del spec["sandbox"]
            repairs.append(
                f"removed the sandbox field from spec {spec.get('name', '?')!r} (only a person may grant it)"
            )
    for repair in repairs:
        log.info("answer repaired: %s", repair)
    return ParsedAnswer(code, tuple(specs), tuple(problems), tuple(repairs))


def _leading_code(lines: list[str], code_blocks: list[_Block], repairs: list[str]) -> int:
    """Take code written before any fence (a completion that starts inside the block); return where to go on."""
    first_fence = next((i for i, line in enumerate(lines) if _OPEN.match(line)), len(lines))
    head = _code_in("\n".join(lines[:first_fence]))
    if head is None:
        return 0
    code_blocks.append(_Block("python", head, first_fence < len(lines)))
    repairs.append("added the missing opening ```python fence")
    if first_fence < len(lines) and not _OPEN.match(lines[first_fence])["info"]:
        return first_fence + 1  # that bare fence closes the leading code
    return first_fence


def _code_in(text: str) -> str | None:
    """The longest run of lines, from the first code-looking line on, that parses and defines a function.

    Code that never parses is still returned when it defines something, so its syntax error gets reported.
    """
    start = _CODE_START.search(text)
    if start is None:
        return None
    lines = text[start.start() :].rstrip().split("\n")
    for end in range(len(lines), 0, -1):
        if end < len(lines) and lines[end][:1] in (" ", "\t"):
            continue  # code can only end before an unindented line
        candidate = "\n".join(lines[:end]).rstrip()
        try:
            tree = ast.parse(candidate)
        except SyntaxError:
            continue
        if any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) for node in tree.body):
            return candidate
    broken = "\n".join(lines).rstrip()
    return broken if re.search(r"^(?:async )?def \w+", broken, re.MULTILINE) else None  # the checks name the error


def _scan_blocks(lines: list[str]) -> list[_Block]:
    """Split Markdown into fenced blocks, leniently: unclosed blocks end at the next tagged fence or the end."""
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        opening = _OPEN.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, width, tag = opening["fence"], len(opening["prefix"]), _tag(opening["info"])
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        j, closed = i + 1, False
        while j < len(lines):
            line = lines[j]
            if closing.match(line):
                closed = True
                break
            nested = _OPEN.match(line)
            if nested and _tag(nested["info"]) in _KNOWN_TAGS:
                break
            body.append(_strip_indent(line, width))
            j += 1
        blocks.append(_Block(tag, "\n".join(body).strip("\n"), closed))
        i = j + 1 if closed else j
    return blocks


def _tag(info: str) -> str:
    """The language tag of a fence's info string: first word, lower case, without {} or a leading dot."""
    word = re.split(r"[\s:,{}]+", info.strip().strip("{}").strip())[0] if info.strip() else ""
    return word.lstrip(".").lower()


def _strip_indent(line: str, width: int) -> str:
    """Remove up to `width` leading blanks, the indentation of the block's opening fence."""
    stripped = len(line) - len(line.lstrip(" \t"))
    return line[min(stripped, width) :]


def _classify(block: _Block) -> str:
    """'code', 'spec' or 'other', by tag, and by content when the tag says nothing."""
    if block.tag in CODE_TAGS:
        return "code"
    if block.tag in SPEC_TAGS:
        return "spec"
    body = block.body.strip()
    if block.tag in JSON_TAGS or (not block.tag and body[:1] in ("{", "[")):
        return "spec" if _looks_like_spec_text(body) else "other"
    if not block.tag and body and _defines_function(body):
        return "code"
    return "other"


def _looks_like_spec_text(body: str) -> bool:
    """True for JSON-ish text holding a spec; unreadable text counts when it mentions parameters."""
    value = _lenient(body)
    if isinstance(value, dict | list):
        return any(_is_spec_like(item) for item in _unwrapped_items(value))
    return bool(re.search(r"""["']?parameters["']?\s*:""", body))


def _is_spec_like(value: Any) -> bool:
    return isinstance(value, dict) and ("name" in value or "parameters" in value)


def _unwrapped_items(value: Any) -> list[Any]:
    """Flatten lists and known wrapper objects down to the candidate spec objects."""
    if isinstance(value, list):
        return [item for element in value for item in _unwrapped_items(element)]
    if isinstance(value, dict) and not _is_spec_like(value):
        for key in _WRAPPER_KEYS:
            if isinstance(value.get(key), dict | list):
                return _unwrapped_items(value[key])
    return [value]


def _defines_function(source: str) -> bool:
    """True if the source parses as Python and defines a function at top level."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError):
        return bool(re.search(r"^\s*def \w+\s*\(", source, re.MULTILINE))
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) for node in tree.body)


def _lenient(text: str) -> Any:
    """Strict JSON first, then the lenient parser; None when neither yields a value."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    value = json_repair.loads(text)
    return value if isinstance(value, dict | list) else None


def _load_json(body: str, label: str, problems: list[str], repairs: list[str]) -> Any:
    """Parse a spec block's JSON, recording the repair or the problem."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as strict_error:
        value = json_repair.loads(body) if body.strip() else None
        if not isinstance(value, dict | list):
            where = f"at line {strict_error.lineno} column {strict_error.colno}"
            problems.append(f"{label}: invalid JSON {where}: {strict_error.msg}")
            return None
        issues = _json_issues(body) or [f"{strict_error.msg} at line {strict_error.lineno}"]
        repairs.append(f"{label}: repaired invalid JSON ({', '.join(issues)})")
        return value


def _json_issues(text: str) -> list[str]:
    """Name the common ways model JSON deviates from the standard, for the repair log."""
    found: dict[str, None] = {}
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "\"'":
            if char == "'":
                found["single quotes"] = None
            i = _string_end(text, i)
        elif text.startswith("//", i) or char == "#":
            found["comments"] = None
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            found["comments"] = None
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif char == "," and _CLOSER.match(text, i + 1):
            found["trailing commas"] = None
            i += 1
        elif char.isalpha() or char == "_":
            word = _WORD.match(text, i)[0]
            if word in ("True", "False", "None"):
                found["Python literals True/False/None"] = None
            elif word not in ("true", "false", "null") and _COLON.match(text, i + len(word)):
                found["unquoted keys"] = None
            i += len(word)
        else:
            i += 1
    return list(found)


def _string_end(text: str, start: int) -> int:
    """Index just after the string literal that opens at `start`."""
    quote, i = text[start], start + 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _spec_objects(value: Any, label: str, problems: list[str], repairs: list[str]) -> list[dict[str, Any]]:
    """The spec objects in one block's value, unwrapped; anything else is a problem."""
    if isinstance(value, dict) and not _is_spec_like(value):
        wrapper = next((key for key in _WRAPPER_KEYS if isinstance(value.get(key), dict | list)), None)
        if wrapper is not None:
            repairs.append(f"{label}: unwrapped the specs from the {wrapper!r} key")
    items = _unwrapped_items(value)
    specs: list[dict[str, Any]] = []
    for index, item in enumerate(items, start=1):
        where = label if len(items) == 1 else f"{label}, element {index}"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a JSON object, got {type(item).__name__} {item!r:.60}")
        elif not _is_spec_like(item):
            problems.append(f"{where}: not a function spec (no 'name' or 'parameters'; keys: {sorted(item)})")
        else:
            specs.append(item)
    return specs


def _join_code(blocks: list[_Block], repairs: list[str]) -> str | None:
    """One module from all python blocks: dedented, exact repeats dropped."""
    sources: list[str] = []
    for number, block in enumerate(blocks, start=1):
        source = block.body
        if _margin(source):
            source = textwrap.dedent(source)
            repairs.append(f"removed the common indentation of python block {number}")
        if not block.closed:
            repairs.append(f"closed an unterminated ```python block (block {number})")
        if not source.strip():
            continue
        if source in sources:
            repairs.append(f"dropped python block {number}, a repeat of an earlier block")
            continue
        sources.append(source)
    if not sources:
        return None
    if len(sources) > 1:
        repairs.append(f"joined {len(sources)} python blocks into one module")
    return "\n\n\n".join(sources) + "\n"


def _margin(source: str) -> int:
    """The indentation shared by all non-blank lines."""
    return min((len(line) - len(line.lstrip()) for line in source.splitlines() if line.strip()), default=0)


# --- reconciling a spec with the code -------------------------------------------------------------

_SIMPLE_TYPES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "list": "array",
    "List": "array",
    "tuple": "array",
    "Tuple": "array",
    "Sequence": "array",
    "MutableSequence": "array",
    "Iterable": "array",
    "dict": "object",
    "Dict": "object",
    "Mapping": "object",
    "MutableMapping": "object",
    "None": "null",
    "NoneType": "null",
}


def reconcile(
    code: str, spec: Mapping[str, Any], *, taken: Collection[str] = ()
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Make the spec agree with the code (names, required-ness, types), keeping the spec's descriptions.

    `taken` lists function names already claimed by other specs of the same answer, so a misnamed
    spec is only renamed to a function nobody else describes.
    """
    result = copy.deepcopy(dict(spec))
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        return result, (f"code does not parse (line {error.lineno}: {error.msg}); spec left unchanged",)
    notes: list[str] = []
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    function = _find_function(result, functions, taken, notes)
    if function is None:
        return result, tuple(notes)
    result["parameters"] = _reconcile_parameters(function, result.get("parameters"), notes)
    _items_from_examples(result, notes)
    if "responses" not in result:
        response = _schema_of(function.returns) if function.returns is not None else None
        if response is not None:
            result["responses"] = [response]
            notes.append(f"added responses {[response]} from the return annotation")
    _reconcile_errors(function, tree, result, notes)
    return result, tuple(notes)


_ITEM_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _items_from_examples(spec: dict[str, Any], notes: list[str]) -> None:
    """Give a list parameter with no item type (`numbers: list`) the one type its examples' items share.

    Without it any JSON value is a valid item, so generated inputs such as `[null]` or `[{}]` make every
    such function raise, right or wrong; with it, a client also sees what the list holds. Whole numbers
    beside fractions make a list of numbers.
    """
    properties = spec.get("parameters", {}).get("properties", {})
    examples = [e.get("parameters") for e in spec.get("examples") or [] if isinstance(e, dict)]
    for name, prop in properties.items():
        if not isinstance(prop, dict) or prop.get("type") != "array" or "items" in prop:
            continue
        values = [e[name] for e in examples if isinstance(e, dict) and name in e]
        if not values or not all(isinstance(v, list) for v in values):
            continue
        kinds = {_ITEM_TYPES.get(type(item)) for value in values for item in value}
        kinds = {"number"} if kinds == {"integer", "number"} else kinds
        if len(kinds) == 1 and None not in kinds:
            prop["items"] = {"type": kinds.pop()}
            notes.append(f"parameter {name!r}: items set to {prop['items']!r} (its examples' items)")


def _find_function(
    spec: dict[str, Any],
    functions: Mapping[str, ast.FunctionDef | ast.AsyncFunctionDef],
    taken: Collection[str],
    notes: list[str],
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The function the spec describes; renames the spec when exactly one public function is free."""
    name = spec.get("name")
    if isinstance(name, str) and name in functions:
        return functions[name]
    free = [fn for fn in functions if not fn.startswith("_") and fn not in taken and fn != name]
    if len(free) == 1:
        spec["name"] = free[0]
        notes.append(f"renamed spec {name!r} to {free[0]!r}, the only function in the code without a spec")
        return functions[free[0]]
    notes.append(f"no top-level function named {name!r} in the code (functions: {sorted(functions)})")
    return None


def _reconcile_parameters(
    function: ast.FunctionDef | ast.AsyncFunctionDef, declared: Any, notes: list[str]
) -> dict[str, Any]:
    """parameters built from the signature, carrying over the spec's per-parameter details."""
    parameters = dict(declared) if isinstance(declared, dict) else {}
    if parameters.get("type") != "object":
        notes.append(f"parameters: type set to 'object' (was {parameters.get('type')!r})")
    old_props = parameters.get("properties") if isinstance(parameters.get("properties"), dict) else {}
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    defaults: dict[str, ast.expr | None] = {a.arg: None for a in [*positional, *args.kwonlyargs]}
    for arg, default in zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True):
        defaults[arg.arg] = default
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        defaults[arg.arg] = default
    for star in (args.vararg, args.kwarg):
        if star is not None:
            notes.append(f"parameter {star.arg!r} (*args/**kwargs) cannot be described; left out")

    properties: dict[str, Any] = {}
    for arg in [*positional, *args.kwonlyargs]:
        prop = dict(old_props[arg.arg]) if isinstance(old_props.get(arg.arg), dict) else {}
        if arg.arg not in old_props:
            notes.append(f"added parameter {arg.arg!r} from the signature")
        _reconcile_property(arg, defaults[arg.arg], prop, notes)
        properties[arg.arg] = prop
    for dropped in [name for name in old_props if name not in properties]:
        notes.append(f"dropped parameter {dropped!r}: not in the signature")
    if list(old_props) != list(properties) and old_props.keys() == properties.keys():
        notes.append("reordered parameters to follow the signature")

    required = [name for name, default in defaults.items() if default is None]
    old_required = parameters.get("required")
    if (required or old_required is not None) and old_required != required:
        notes.append(f"required: {old_required!r} -> {required!r} (parameters without defaults)")
    rebuilt: dict[str, Any] = {"type": "object", "properties": properties}
    if required or old_required is not None:
        rebuilt["required"] = required
    rebuilt.update({k: v for k, v in parameters.items() if k not in ("type", "properties", "required")})
    return rebuilt


def _reconcile_property(arg: ast.arg, default: ast.expr | None, prop: dict[str, Any], notes: list[str]) -> None:
    """Type and default of one parameter from its annotation and default value."""
    name = arg.arg
    hinted = _schema_of(arg.annotation) if arg.annotation is not None else None
    if hinted is not None:
        if default is not None and _is_none(default) and not _allows_null(hinted["type"]):
            hinted["type"] = _with_null(hinted["type"])
        for key, value in hinted.items():
            if prop.get(key) != value:
                if key == "items" and isinstance(prop.get("items"), dict):
                    value = {**prop["items"], **value}
                    if value == prop["items"]:
                        continue
                verb = "set" if key not in prop else f"changed from {prop[key]!r}"
                notes.append(f"parameter {name!r}: {key} {verb} to {value!r} (type hint)")
                prop[key] = value
    if default is None:
        if "default" in prop:
            notes.append(f"parameter {name!r}: removed default {prop.pop('default')!r} (the code has none)")
        return
    try:
        value = _jsonable(ast.literal_eval(default))
    except (ValueError, TypeError, SyntaxError):
        return
    if prop.get("default", object()) != value:
        verb = "set" if "default" not in prop else f"changed from {prop['default']!r}"
        notes.append(f"parameter {name!r}: default {verb} to {value!r} (the code's default)")
        prop["default"] = value


def _jsonable(value: Any) -> Any:
    """A literal default as JSON would carry it; TypeError when JSON can't."""
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _jsonable(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _allows_null(json_type: Any) -> bool:
    return json_type == "null" or (isinstance(json_type, list) and "null" in json_type)


def _with_null(json_type: Any) -> list[str]:
    return [*(json_type if isinstance(json_type, list) else [json_type]), "null"]


def _schema_of(annotation: ast.expr) -> dict[str, Any] | None:
    """A JSON Schema for a type hint, or None when the hint has no clear JSON type."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(annotation, ast.Constant) and annotation.value is None:
        return {"type": "null"}
    members = _union_members(annotation)
    if members is not None:
        return _union_schema(members)
    base, args = _subscript(annotation)
    json_type = _SIMPLE_TYPES.get(base)
    if json_type is None:
        return None
    schema: dict[str, Any] = {"type": json_type}
    if json_type == "array" and args:
        item_args = args[:1] if len(args) == 1 or (len(args) == 2 and _is_ellipsis(args[1])) else []
        item = _schema_of(item_args[0]) if item_args else None
        if item is not None:
            schema["items"] = item
    return schema


def _union_members(annotation: ast.expr) -> list[ast.expr] | None:
    """Members of `X | Y`, `Optional[X]` or `Union[X, Y]`; None for anything else."""
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return [*(_union_members(annotation.left) or [annotation.left]), annotation.right]
    base, args = _subscript(annotation)
    if base == "Optional" and len(args) == 1:
        return [args[0], ast.Constant(None)]
    if base == "Union" and args:
        return args
    return None


def _union_schema(members: list[ast.expr]) -> dict[str, Any] | None:
    """One schema for a union of hints: the single member's schema, or a list of plain types."""
    schemas = [_schema_of(member) for member in members]
    if any(schema is None for schema in schemas):
        return None
    types: list[str] = []
    for schema in schemas:
        for json_type in schema["type"] if isinstance(schema["type"], list) else [schema["type"]]:
            if json_type not in types:
                types.append(json_type)
    if "integer" in types and "number" in types:
        types.remove("integer")
    non_null = [schema for schema in schemas if schema["type"] != "null"]
    if len(non_null) == 1 and len(types) <= 2:
        return {**non_null[0], "type": types if len(types) > 1 else types[0]}
    return {"type": types if len(types) > 1 else types[0]}


def _subscript(annotation: ast.expr) -> tuple[str | None, list[ast.expr]]:
    """(base name, type arguments) of a hint like `list[int]` or `typing.Dict[str, int]`."""
    args: list[ast.expr] = []
    if isinstance(annotation, ast.Subscript):
        inner = annotation.slice
        args = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
        annotation = annotation.value
    if isinstance(annotation, ast.Name):
        return annotation.id, args
    if isinstance(annotation, ast.Attribute):
        return annotation.attr, args
    return None, args


def _is_ellipsis(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def _reconcile_errors(
    function: ast.FunctionDef | ast.AsyncFunctionDef, tree: ast.Module, spec: dict[str, Any], notes: list[str]
) -> None:
    """Add the module's own exception classes that the function raises but the spec doesn't list."""
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    raised: dict[str, str] = {}
    for node in ast.walk(function):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        call = node.exc if isinstance(node.exc, ast.Call) else None
        target = call.func if call is not None else node.exc
        if isinstance(target, ast.Name) and target.id in classes and target.id not in raised:
            raised[target.id] = _error_description(classes[target.id], call)
    errors = spec.get("errors")
    listed = {e.get("name") for e in errors if isinstance(e, dict)} if isinstance(errors, list) else set()
    missing = [{"name": name, "description": text} for name, text in raised.items() if name not in listed]
    if not missing:
        return
    spec["errors"] = [*(errors if isinstance(errors, list) else []), *missing]
    notes.append(f"added errors {[e['name'] for e in missing]} raised by the code")


def _error_description(cls: ast.ClassDef, call: ast.Call | None) -> str:
    """The class docstring, else the literal message of the raise, else the class name in words."""
    docstring = ast.get_docstring(cls)
    if docstring:
        return docstring.strip().splitlines()[0]
    if call is not None and call.args and isinstance(call.args[0], ast.Constant):
        return str(call.args[0].value)
    return re.sub(r"(?<!^)(?=[A-Z])", " ", cls.name).capitalize()
