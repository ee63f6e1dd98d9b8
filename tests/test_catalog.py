"""The catalogue: each broken pair gives one precise diagnostic; valid pairs publish; refresh keeps last good."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from mcp_server import catalog as catalog_module
from mcp_server.catalog import (
    BUILTIN_TOOLS,
    Catalog,
    CatalogChange,
    Diagnostic,
    check_module,
    is_catalog_file,
    load_catalog,
    module_name,
)

MATH_PY = '''"""Small arithmetic."""

def add(a, b):
    """Add two numbers."""
    return a + b
'''


def spec(name: str = "add", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
        "responses": [{"type": "number"}],
    }
    base.update(changes)
    return base


def write(folder: Path, module: str, source: str | None, specs: Any) -> None:
    if source is not None:
        (folder / f"{module}.py").write_text(source, encoding="utf-8")
    if specs is not None:
        text = specs if isinstance(specs, str) else json.dumps(specs, indent=2)
        (folder / f"{module}.json").write_text(text, encoding="utf-8")


def only(catalog: Catalog) -> Diagnostic:
    diagnostics = catalog.diagnostics
    assert len(diagnostics) == 1, [str(d) for d in diagnostics]
    return diagnostics[0]


def test_valid_pair_publishes(tmp_path: Path) -> None:
    write(
        tmp_path, "math", MATH_PY, spec(examples=[{"prompt": "1 plus 2", "parameters": {"a": 1, "b": 2}, "result": 3}])
    )
    catalog = load_catalog(str(tmp_path))
    assert catalog.ok and catalog.diagnostics == []
    entry = catalog.get("add")
    assert entry is not None and list(catalog.published) == ["add"]
    assert (entry.module, entry.module_path, entry.spec_path) == ("math", tmp_path / "math.py", tmp_path / "math.json")
    assert entry.source == MATH_PY
    assert entry.description == "Add two numbers."
    assert entry.parameters["required"] == ["a", "b"]
    assert entry.responses == [{"type": "number"}]
    assert entry.errors == []
    assert entry.examples[0]["result"] == 3
    [status] = catalog.statuses()
    assert (status.name, status.module, status.status, status.entry, status.diagnostics) == (
        "add",
        "math",
        "published",
        entry,
        (),
    )


def test_list_of_specs_publishes_each_function(tmp_path: Path) -> None:
    source = (
        MATH_PY
        + '\n\nclass NegativeError(ValueError):\n    """Below zero."""\n\n\ndef neg(x, strict=False):\n    return -x\n'
    )
    neg = spec(
        "neg",
        parameters={
            "type": "object",
            "properties": {"x": {"type": "number"}, "strict": {"type": "boolean"}},
            "required": ["x"],
        },
        errors=[{"name": "NegativeError", "description": "x < 0"}, {"name": "OverflowError", "description": "big"}],
        examples=[{"prompt": "negate -1", "parameters": {"x": -1, "strict": True}, "error": "NegativeError"}],
    )
    write(tmp_path, "math", source, [spec(), neg])
    catalog = load_catalog(tmp_path)
    assert catalog.ok, [str(d) for d in catalog.diagnostics]
    assert sorted(catalog.published) == ["add", "neg"]


def test_diagnostic_text_omits_absent_parts() -> None:
    assert str(Diagnostic(Path("functions/math.json"), "bad", "add", 3)) == "functions/math.json:3: function 'add': bad"
    assert str(Diagnostic(Path("functions/math.json"), "bad")) == "functions/math.json: bad"
    assert str(Diagnostic(Path("f/m.py"), "bad", line=7)) == "f/m.py:7: bad"


PARAMS_AB = {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"]}


@pytest.mark.parametrize(
    ("source", "specs", "function", "expected"),
    [
        pytest.param(
            MATH_PY,
            spec(parameters={**PARAMS_AB, "properties": {"a": {}, "b": {}, "c": {}}}),
            "add",
            "parameter 'c' is in the spec but not in the signature of add(a, b) (math.py line 3)",
            id="spec-parameter-not-in-code",
        ),
        pytest.param(
            MATH_PY,
            spec(parameters={"type": "object", "properties": {"a": {}}, "required": ["a"]}),
            "add",
            "parameter 'b' of add(a, b) (math.py line 3) is missing from the spec's parameters.properties",
            id="code-parameter-not-in-spec",
        ),
        pytest.param(
            MATH_PY.replace("add(a, b)", "add(a, b=1)"),
            spec(),
            "add",
            "parameter 'b' is required in the spec but has a default in add(a, b=1) (math.py line 3)",
            id="required-but-defaulted",
        ),
        pytest.param(
            MATH_PY,
            spec(parameters={**PARAMS_AB, "required": ["a"]}),
            "add",
            "parameter 'b' has no default in add(a, b) (math.py line 3) but is not in the spec's parameters.required",
            id="no-default-but-optional",
        ),
        pytest.param(
            MATH_PY.replace("add(a, b)", "add(a, b, *rest)"),
            spec(),
            "add",
            "add(a, b, *rest) (math.py line 3) takes *rest",
            id="varargs",
        ),
        pytest.param(
            MATH_PY.replace("add(a, b)", "add(a, b, **options)"),
            spec(),
            "add",
            "add(a, b, **options) (math.py line 3) takes **options",
            id="kwargs",
        ),
        pytest.param(
            MATH_PY.replace("add(a, b)", "add(a, /, b)"),
            spec(),
            "add",
            "add(a, /, b) (math.py line 3) has positional-only parameter 'a'",
            id="positional-only",
        ),
        pytest.param(
            MATH_PY.replace("def add", "async def add"),
            spec(),
            "add",
            "add(a, b) (math.py line 3) is async",
            id="async",
        ),
        pytest.param(
            MATH_PY,
            spec("sub"),
            "sub",
            "no top-level function 'sub' in math.py (its functions: add)",
            id="function-missing",
        ),
        pytest.param(
            MATH_PY + "\n\nclass Adder:\n    pass\n",
            spec("Adder"),
            "Adder",
            "'Adder' is a class in math.py (line 8), not a function",
            id="class-not-function",
        ),
        pytest.param(
            MATH_PY + "\n\ndef outer():\n    def inner(a, b):\n        return a\n    return inner\n",
            spec("inner"),
            "inner",
            "function 'inner' is defined inside 'outer' (line 8) in math.py, not at top level",
            id="nested-function",
        ),
        pytest.param(
            MATH_PY,
            spec(errors=[{"name": "TooBigError", "description": "too big"}]),
            "add",
            "error 'TooBigError' is neither a class defined at top level of math.py nor a builtin exception",
            id="undeclared-error-class",
        ),
        pytest.param(
            MATH_PY,
            spec(
                examples=[
                    {"prompt": "ok", "parameters": {"a": 1, "b": 2}},
                    {"prompt": "bad", "parameters": {"a": "x", "b": 2}},
                ]
            ),
            "add",
            "examples[1].parameters.a: 'x' is not of type 'number'",
            id="example-parameters-invalid",
        ),
        pytest.param(
            MATH_PY,
            spec(examples=[{"prompt": "p", "parameters": {"a": 1, "b": 2}, "error": "Oops"}]),
            "add",
            "examples[0].error: 'Oops' is neither a declared error (errors[].name: none) nor a builtin exception",
            id="example-error-unknown",
        ),
        pytest.param(
            MATH_PY,
            spec(parameters={"type": "object", "properties": ["a", "b"]}),
            "add",
            "parameters.properties: ['a', 'b'] is not of type 'object'",
            id="schema-error-names-json-path",
        ),
        pytest.param(
            MATH_PY,
            {k: v for k, v in spec().items() if k != "responses"},
            "add",
            "'responses' is a required property",
            id="schema-required-property",
        ),
        pytest.param(
            MATH_PY,
            spec(parameters={**PARAMS_AB, "properties": {"a": {"type": "integr"}, "b": {}}}),
            "add",
            "parameters is not a valid JSON Schema: properties.a.type:",
            id="parameters-not-a-schema",
        ),
        pytest.param(
            MATH_PY,
            spec(parameters={**PARAMS_AB, "properties": {"a": {"pattern": "("}, "b": {}}}),
            "add",
            "parameters is not a valid JSON Schema: properties.a.pattern: '(' is not a 'regex'",
            id="parameters-bad-regex",
        ),
        pytest.param(
            MATH_PY,
            spec(parameters={**PARAMS_AB, "patternProperties": {"\\p{L}": {}}, "properties": {"a": {}, "b": {}}}),
            "add",
            "parameters is not a valid JSON Schema: patternProperties: '\\\\p{L}' is not a 'regex'",
            id="parameters-regex-python-cannot-read",
        ),
        pytest.param(
            MATH_PY,
            [spec(), spec()],
            "add",
            "is specified 2 times in this file (specs [0], [1]); keep one",
            id="function-specified-twice",
        ),
    ],
)
def test_spec_problem_gives_one_precise_diagnostic(
    tmp_path: Path, source: str, specs: Any, function: str, expected: str
) -> None:
    write(tmp_path, "math", source, specs)
    catalog = load_catalog(tmp_path)
    diagnostic = only(catalog)
    assert diagnostic.file == tmp_path / "math.json"
    assert diagnostic.function == function
    assert expected in diagnostic.message, diagnostic.message
    assert catalog.published == {}
    [status] = catalog.statuses()
    assert (status.name, status.status, status.entry, status.diagnostics) == (function, "invalid", None, (diagnostic,))


@pytest.mark.parametrize(
    ("text", "expected", "line"),
    [
        ('{\n  "name": "add",\n  "description": "x",,\n}', "invalid JSON at column 22: Expecting property name", 3),
        ('"add"', "must hold one function spec (a JSON object) or a list of them, not a string", None),
        ("[]", "holds an empty list: it specifies no function", None),
        ("[" * 100_000, "invalid JSON: maximum recursion depth exceeded", None),
        (json.dumps([spec(), 3]), "spec [1] must be a JSON object, not a number", None),
    ],
    ids=["bad-json", "not-object-or-list", "empty-list", "nested-too-deeply", "list-item-not-object"],
)
def test_malformed_json_gives_one_diagnostic(tmp_path: Path, text: str, expected: str, line: int | None) -> None:
    write(tmp_path, "math", MATH_PY, text)
    catalog = load_catalog(tmp_path)
    diagnostic = only(catalog)
    assert (diagnostic.file, diagnostic.line, diagnostic.function) == (tmp_path / "math.json", line, None)
    assert expected in diagnostic.message, diagnostic.message


@pytest.mark.parametrize(
    ("statement", "offset", "expected"),
    [
        ('print("loaded")', 0, "top-level expression `print('loaded')` runs at import time"),
        ("add(1, 2)", 0, "top-level expression `add(1, 2)` runs at import time"),
        ("for i in range(3):\n    pass", 0, "top-level `for` statement runs at import time"),
        ('if __name__ == "__main__":\n    print(add(1, 2))', 0, '`if __name__ == "__main__":` block runs code'),
        ('HANDLE = open("/tmp/x")', 0, "top-level assignment to HANDLE calls open() at import time"),
        ('exec("x = 1")', 0, "top-level expression `exec('x = 1')` runs at import time"),
        ('import os\nos.environ["X"] = "1"', 1, "top-level assignment to `os.environ['X']` changes another object"),
        ("SQUARES = [i * i for i in range(9)]", 0, "top-level assignment to SQUARES runs a comprehension (a loop)"),
        ('@register("x")\ndef sub(a):\n    return a', 0, "decorator `@register('x')` of sub calls register()"),
        ('import os\ndef sub(a=os.system("ls")):\n    return a', 1, "a default value in sub() calls os.system()"),
        ("class Thing:\n    print('hi')", 1, "in class Thing, expression `print('hi')` runs at import time"),
        ("if DEBUG:\n    import pdb", 0, "top-level `if` block (only `if TYPE_CHECKING:` is allowed)"),
    ],
)
def test_side_effect_at_import_is_refused_with_its_line(
    tmp_path: Path, statement: str, offset: int, expected: str
) -> None:
    source = MATH_PY + "\n" + statement + "\n"
    write(tmp_path, "math", source, spec())
    catalog = load_catalog(tmp_path)
    diagnostic = only(catalog)
    assert diagnostic.file == tmp_path / "math.py"
    assert diagnostic.line == MATH_PY.count("\n") + 2 + offset
    assert expected in diagnostic.message, diagnostic.message
    assert "only hold imports, definitions, constants and docstrings" in diagnostic.message
    assert catalog.published == {}


ALLOWED_MODULE = '''"""Everything a module may hold at top level."""
from __future__ import annotations

import collections
import functools
import logging
import os
import re as regex
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

try:
    import tomllib
except ImportError:
    tomllib = None

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["add"]
log = logging.getLogger(__name__)
DATA = Path.home() / "data"
DATA2 = Path("~/data").expanduser()
DATA3 = os.path.join(os.path.expanduser("~"), "data")
WORD = regex.compile(r"\\w+")
LIMITS = frozenset({1, 2}) | {3}
PAIR = collections.namedtuple("PAIR", "x y")
T = TypeVar("T")
RATE = Decimal("0.1")
WEEK = timedelta(days=7)
LABEL = f"rate {RATE}"
NAMES = ", ".join(["a", "b"])
MISSING = object()


class Point(NamedTuple):
    x: int
    y: int = 0


@dataclass(frozen=True)
class Box:
    """A box."""

    items: list[int] = field(default_factory=list)


class TooBigError(ValueError):
    pass


@functools.cache
def add(a: int, b: int = 1, *, scale: float = 1.0) -> int:
    """Add."""
    if a > 10:
        raise TooBigError("a too big")
    return a + b
'''


def test_harmless_top_level_code_is_allowed(tmp_path: Path) -> None:
    write(
        tmp_path,
        "calc",
        ALLOWED_MODULE,
        spec(
            parameters={"type": "object", "properties": {"a": {}, "b": {}, "scale": {}}, "required": ["a"]},
            errors=[{"name": "TooBigError", "description": "a > 10"}, {"name": "KeyError", "description": "k"}],
        ),
    )
    catalog = load_catalog(tmp_path)
    assert catalog.ok, [str(d) for d in catalog.diagnostics]
    assert list(catalog.published) == ["add"]


def test_syntax_error_is_one_diagnostic_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "math", MATH_PY + "\ndef broken(:\n    pass\n", [spec(), spec("broken")])
    catalog = load_catalog(tmp_path)
    diagnostic = only(catalog)
    assert (diagnostic.file, diagnostic.line, diagnostic.function) == (tmp_path / "math.py", 7, None)
    assert diagnostic.message.startswith("syntax error at column 12: ")
    assert sorted((s.name, s.status) for s in catalog.statuses()) == [("add", "invalid"), ("broken", "invalid")]


def test_lone_json_and_lone_py_are_each_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "helper", "def util(x):\n    return x\n", None)
    write(tmp_path, "orphan", None, spec())
    write(tmp_path, "_private", "def util(x):\n    return x\n", None)
    catalog = load_catalog(tmp_path)
    lone_py, lone_json = catalog.diagnostics
    assert lone_json.file == tmp_path / "orphan.json"
    assert "orphan.py is missing" in lone_json.message
    assert lone_py.file == tmp_path / "helper.py" and lone_py.function is None
    assert lone_py.message.startswith("helper.json is missing: ") and "leading _" in lone_py.message
    assert catalog.published == {} and [s.name for s in catalog.statuses()] == ["add"]
    # The spec arrives (a save writes the .py first): the problem is gone, the function served.
    write(
        tmp_path,
        "helper",
        None,
        spec("util", parameters={"type": "object", "properties": {"x": {}}, "required": ["x"]}),
    )
    catalog.refresh(["helper"])
    assert "util" in catalog.published, [str(d) for d in catalog.diagnostics]
    assert [d.file.name for d in catalog.diagnostics] == ["orphan.json"]


def test_unreadable_files_are_diagnostics(tmp_path: Path) -> None:
    write(tmp_path, "math", None, spec())
    (tmp_path / "math.py").write_bytes(b'"""ok"""\n\ndef add(a, b):\n    return "\xff"\n')
    (tmp_path / "dir.json").mkdir()
    catalog = Catalog(tmp_path)
    catalog.refresh(["math", "dir"])
    first, second = catalog.diagnostics
    assert (first.file, first.line) == (tmp_path / "dir.json", None)
    assert "is a directory, not a file" in first.message
    assert (second.file, second.line) == (tmp_path / "math.py", 4)
    assert "is not valid UTF-8 (byte 0xff" in second.message
    assert catalog.published == {}


def test_permission_error_is_a_diagnostic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "math", MATH_PY, spec())
    real_read_bytes = Path.read_bytes

    def locked(path: Path) -> bytes:
        if path.name == "math.py":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_bytes(path)

    monkeypatch.setattr(catalog_module.Path, "read_bytes", locked)
    catalog = load_catalog(tmp_path)
    diagnostic = only(catalog)
    assert (diagnostic.file, diagnostic.message) == (tmp_path / "math.py", "cannot be read: Permission denied")
    assert [(s.name, s.status) for s in catalog.statuses()] == [("add", "invalid")]


def test_entries_are_hashable_and_compare_by_content(tmp_path: Path) -> None:
    write(tmp_path, "math", MATH_PY, spec())
    first, second = check_module(tmp_path, "math").entries[0], check_module(tmp_path, "math").entries[0]
    assert first == second and first is not second and len({first, second}) == 1


def test_clash_reports_both_sides_and_first_module_wins(tmp_path: Path) -> None:
    write(tmp_path, "beta", MATH_PY, spec())
    write(tmp_path, "alpha", MATH_PY, spec())
    catalog = load_catalog(tmp_path)
    alpha, beta = catalog.diagnostics
    assert alpha.file == tmp_path / "alpha.json" and beta.file == tmp_path / "beta.json"
    assert alpha.function == beta.function == "add"
    assert "also specified by module 'beta'" in alpha.message and "sorts first" in alpha.message
    assert "module 'alpha'" in beta.message and "this one is not served" in beta.message
    entry = catalog.get("add")
    assert entry is not None and entry.module == "alpha"
    statuses = {s.module: s for s in catalog.statuses()}
    # No checked examples in these specs: served, and shown as unverified.
    assert (statuses["alpha"].status, statuses["beta"].status, statuses["beta"].entry) == (
        "unverified",
        "invalid",
        None,
    )
    assert statuses["beta"].diagnostics == (beta,)


def test_clash_keeps_the_already_published_function(tmp_path: Path) -> None:
    write(tmp_path, "beta", MATH_PY, spec())
    catalog = load_catalog(tmp_path)
    write(tmp_path, "alpha", MATH_PY, spec())
    change = catalog.refresh(["alpha"])
    assert not change
    entry = catalog.get("add")
    assert entry is not None and entry.module == "beta"
    assert len(catalog.diagnostics) == 2
    assert "was published first" in next(d.message for d in catalog.diagnostics if d.file.stem == "beta")
    (tmp_path / "beta.json").unlink()
    change = catalog.refresh(["beta"])
    assert change == CatalogChange(changed=frozenset({"add"}))
    entry = catalog.get("add")
    assert entry is not None and entry.module == "alpha"
    assert [d.file.name for d in catalog.diagnostics] == ["beta.py"]  # its code, left without a spec


@pytest.mark.parametrize("name", sorted(BUILTIN_TOOLS))
def test_builtin_tool_name_is_never_served(tmp_path: Path, name: str) -> None:
    write(tmp_path, "tools", MATH_PY.replace("def add", f"def {name}"), spec(name))
    catalog = load_catalog(tmp_path)
    diagnostic = only(catalog)
    assert (diagnostic.file, diagnostic.function) == (tmp_path / "tools.json", name)
    assert f"'{name}' is the name of a built-in tool" in diagnostic.message
    assert catalog.published == {}
    assert [s.status for s in catalog.statuses()] == ["invalid"]


IGNORED = [".hidden.py", ".hidden.json", "_private.py", "_private.json", "math.py.swp", ".math.py.swp", "math.py.swo",
           "math.py~", "#math.py#", ".#math.py", "math.json.bak", "math.json.tmp", "math.py.orig", "4913",
           "notes.txt", "README.md", "math.pyc"]  # fmt: skip


def test_ignored_files(tmp_path: Path) -> None:
    for name in IGNORED:
        (tmp_path / name).write_text("{ not a spec, not python (", encoding="utf-8")
    state = tmp_path / ".funcsmith"
    state.mkdir()
    write(state, "old", MATH_PY, spec())
    catalog = load_catalog(tmp_path)
    assert catalog.ok and catalog.statuses() == [] and catalog.published == {}
    for name in IGNORED:
        assert not is_catalog_file(tmp_path / name) and module_name(tmp_path / name) is None, name
    assert not is_catalog_file(state / "old.json")
    assert module_name(tmp_path / "math.py") == module_name(Path("math.json")) == "math"


def test_missing_folder_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"functions folder .*nowhere does not exist"):
        load_catalog(tmp_path / "nowhere")
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        load_catalog(tmp_path / "file")


def _published_add(tmp_path: Path) -> tuple[Catalog, Any]:
    write(
        tmp_path,
        "math",
        MATH_PY + "\n\ndef double():\n    return 2\n",
        [spec(), spec("double", parameters={"type": "object"})],
    )
    catalog = load_catalog(tmp_path)
    assert catalog.ok and sorted(catalog.published) == ["add", "double"]
    return catalog, catalog.get("add")


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda d: (d / "math.json").write_text("[{", encoding="utf-8"), id="bad-json"),
        pytest.param(lambda d: (d / "math.py").write_text("def add(:\n", encoding="utf-8"), id="syntax-error"),
        pytest.param(lambda d: (d / "math.py").unlink(), id="py-deleted"),
        pytest.param(
            lambda d: (d / "math.py").write_text(
                MATH_PY.replace("(a, b)", "(a, c)") + "\ndef double():\n    return 2\n"
            ),
            id="spec-code-mismatch",
        ),
    ],
)
def test_refresh_keeps_last_good_version_serving(tmp_path: Path, break_it: Any) -> None:
    catalog, good = _published_add(tmp_path)
    break_it(tmp_path)
    change = catalog.refresh(["math"])
    assert "add" not in change.added | change.removed | change.changed
    assert catalog.get("add") is good
    statuses = {s.name: s for s in catalog.statuses()}
    assert statuses["add"].status == "stale" and statuses["add"].entry is good
    assert statuses["add"].diagnostics and not catalog.ok
    # Still stale after another broken edit; a fixed module publishes again.
    catalog.refresh(["math"])
    assert catalog.get("add") is good
    write(tmp_path, "math", MATH_PY.replace("a + b", "b + a"), spec())
    change = catalog.refresh(["math"])
    assert change == CatalogChange(removed=frozenset({"double"}), changed=frozenset({"add"}))
    entry = catalog.get("add")
    assert entry is not None and "b + a" in entry.source and catalog.ok
    assert [s.status for s in catalog.statuses()] == ["unverified"]  # served; its spec has no checked examples


def test_refresh_replaces_a_valid_new_version_and_keeps_the_broken_one_stale(tmp_path: Path) -> None:
    catalog, _ = _published_add(tmp_path)
    write(
        tmp_path,
        "math",
        None,
        [spec(description="Add them."), spec("double", parameters={"type": "object", "required": ["x"]})],
    )
    change = catalog.refresh(["math"])
    assert change == CatalogChange(changed=frozenset({"add"}))
    entry = catalog.get("add")
    assert entry is not None and entry.description == "Add them."
    assert {s.name: s.status for s in catalog.statuses()} == {"add": "unverified", "double": "stale"}
    assert "parameter 'x' is in the spec but not in the signature of double()" in only(catalog).message


def test_refresh_removes_a_module_whose_spec_is_gone_and_a_dropped_function(tmp_path: Path) -> None:
    catalog, _ = _published_add(tmp_path)
    write(tmp_path, "math", None, spec())
    assert catalog.refresh(["math"]) == CatalogChange(removed=frozenset({"double"}))
    (tmp_path / "math.json").unlink()
    assert catalog.refresh(["math"]) == CatalogChange(removed=frozenset({"add"}))
    assert catalog.published == {} and catalog.statuses() == []
    assert only(catalog).file == tmp_path / "math.py"  # the code left behind is reported
    (tmp_path / "math.py").unlink()
    assert not catalog.refresh(["math"]) and catalog.ok


def test_published_snapshot_is_replaced_not_mutated(tmp_path: Path) -> None:
    catalog, good = _published_add(tmp_path)
    before = catalog.published
    write(tmp_path, "more", MATH_PY.replace("add", "plus"), spec("plus"))
    assert catalog.refresh(["more"]) == CatalogChange(added=frozenset({"plus"}))
    assert sorted(before) == ["add", "double"] and before["add"] is good
    assert sorted(catalog.published) == ["add", "double", "plus"]
    with pytest.raises(TypeError):
        catalog.published["x"] = good  # type: ignore[index]


def test_refresh_reads_only_the_given_module_in_a_large_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1000):
        name = f"f{i}"
        write(tmp_path, f"m{i:04d}", MATH_PY.replace("add", name), spec(name))
    started = time.perf_counter()
    catalog = load_catalog(tmp_path)
    loaded_in = time.perf_counter() - started
    assert len(catalog.published) == 1000 and catalog.ok
    before = catalog.published

    read: list[Path] = []
    real_read_bytes = Path.read_bytes

    def spy(path: Path) -> bytes:
        read.append(path)
        return real_read_bytes(path)

    monkeypatch.setattr(catalog_module.Path, "read_bytes", spy)
    write(tmp_path, "m0007", MATH_PY.replace("add", "f7").replace("a + b", "b + a"), None)
    started = time.perf_counter()
    change = catalog.refresh(["m0007"])
    refreshed_in = time.perf_counter() - started
    assert sorted(read) == [tmp_path / "m0007.json", tmp_path / "m0007.py"]
    assert change == CatalogChange(changed=frozenset({"f7"}))
    assert all(catalog.published[n] is before[n] for n in before if n != "f7")
    # A loose bound (the machine is shared): one module must cost a tiny fraction of the whole load.
    assert refreshed_in < max(loaded_in / 10, 0.2), (refreshed_in, loaded_in)


def test_check_module_is_pure_and_never_imports(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = f"def add(a, b):\n    return a + b\n\nopen({str(marker)!r}, 'w').close()\n"
    write(tmp_path, "math", source, spec())
    result = check_module(tmp_path, "math")
    assert not marker.exists()
    assert (result.module, result.entries, result.failed) == ("math", (), ("add",))
    [diagnostic] = result.diagnostics
    assert diagnostic.line == 4 and "open(" in diagnostic.message
    assert check_module(tmp_path, "absent") == catalog_module.ModuleCheck("absent", (), (), ())
