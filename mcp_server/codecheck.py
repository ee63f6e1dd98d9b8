"""Static checks of a function module, with `ast` only: the code is never imported or run here.

A served module is imported in the sandbox on every call, so importing it must
do nothing beyond defining things. At top level a module may hold:

- `import` / `from ... import`, also inside `try:` blocks and `if TYPE_CHECKING:`;
- `def` and `class` (class bodies follow the same rules), docstrings, `pass`;
- assignments to plain names (`__all__` included) whose value has no side
  effects: literals and containers of them, names, attributes, subscripts,
  arithmetic, comparisons, f-strings, lambdas, and calls to `ALLOWED_CALLS`;
- decorators that are names or attributes (`functools.cache`) or allowed calls.

Default values, annotations (unless `from __future__ import annotations`),
class bases and keywords run at import time too and follow the same rules.
Anything else (bare calls, loops, `if __name__ == "__main__":`, `print(...)`,
assignments from arbitrary calls, `exec`, ...) is refused with its line.

The second job is to compare a spec with the function it names: the function
is a plain top-level `def`, its parameters match the spec's (names, required
versus defaulted), and every declared error is a class of the module or a
builtin exception.
"""

from __future__ import annotations

import ast
import functools
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp_server.spec import Finding, is_builtin_exception

# Harmless constructors a module may call at import time, by the full dotted name they resolve to
# through the module's imports (builtins as `builtins.<name>`).
ALLOWED_CALLS: frozenset[str] = frozenset(
    {
        "builtins.frozenset", "builtins.set", "builtins.dict", "builtins.tuple", "builtins.list",
        "builtins.int", "builtins.float", "builtins.str", "builtins.bytes", "builtins.bool",
        "builtins.complex", "builtins.range", "builtins.object",
        "re.compile",
        "pathlib.Path", "pathlib.PurePath", "pathlib.PurePosixPath", "pathlib.Path.home",
        "os.path.expanduser", "os.path.join", "os.path.dirname", "os.path.basename",
        "collections.namedtuple", "collections.OrderedDict", "collections.defaultdict", "collections.Counter",
        "typing.TypeVar", "typing.NamedTuple", "typing.NewType", "typing.TypedDict",
        "logging.getLogger",
        "decimal.Decimal", "fractions.Fraction",
        "datetime.timedelta", "datetime.date", "datetime.time", "datetime.datetime", "datetime.timezone",
        "dataclasses.dataclass", "dataclasses.field", "functools.lru_cache",
        "enum.Enum", "enum.IntEnum", "enum.auto", "string.Template",
    }
)  # fmt: skip
# Methods without side effects that may be called on a literal or an allowed call's result,
# e.g. `Path("~/data").expanduser()` or `", ".join(NAMES)`.
PURE_METHODS: frozenset[str] = frozenset(
    {
        "expanduser", "joinpath", "with_name", "with_suffix", "with_stem",
        "join", "format", "lower", "upper", "strip", "lstrip", "rstrip", "split", "replace", "encode", "decode",
    }
)  # fmt: skip
# Expression nodes that only look things up or compute on values; their children are checked in turn.
_PLAIN_NODES = (
    ast.Constant, ast.Name, ast.Attribute, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.BinOp, ast.UnaryOp,
    ast.BoolOp, ast.Compare, ast.IfExp, ast.Subscript, ast.Slice, ast.Starred, ast.JoinedStr, ast.FormattedValue,
    ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
)  # fmt: skip
_RULE = "a module may only hold imports, definitions, constants and docstrings at top level"
_SNIPPET = 60


@dataclass(frozen=True)
class Signature:
    """A top-level function's signature, as far as a spec cares."""

    name: str
    line: int
    parameters: tuple[str, ...]  # every named parameter, in order
    defaulted: frozenset[str]
    refused: tuple[str, ...]  # why it cannot be served: async, *args, **kwargs, positional-only
    node: ast.FunctionDef | ast.AsyncFunctionDef = field(repr=False, compare=False)

    @functools.cached_property
    def text(self) -> str:
        """`add(a, b=1)`, for messages: made only for one (unparsing every default took a tenth of a load)."""
        return _signature_text(self.node)


@dataclass(frozen=True, slots=True)
class ModuleShape:
    """What a module defines at top level, and what is wrong with it as a whole."""

    functions: Mapping[str, Signature] = field(default_factory=dict)
    classes: Mapping[str, int] = field(default_factory=dict)  # class name -> line
    nested: Mapping[str, str] = field(default_factory=dict)  # def below top level -> where it is
    findings: tuple[Finding, ...] = ()
    parsed: bool = True  # False on a syntax error: nothing else is known


def inspect_module(source: str, filename: str) -> ModuleShape:
    """Parse and compile (never run) a module; collect its definitions and every top-level side effect."""
    try:
        tree = ast.parse(source, filename=filename)
        compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as error:
        where = f" at column {error.offset}" if error.offset else ""
        return ModuleShape(findings=(Finding(f"syntax error{where}: {error.msg}", line=error.lineno),), parsed=False)
    except (ValueError, RecursionError, MemoryError) as error:  # a NUL byte, or nesting deeper than the parser takes
        return ModuleShape(findings=(Finding(f"cannot be compiled: {error or type(error).__name__}"),), parsed=False)

    functions: dict[str, Signature] = {}
    classes: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions[node.name] = _signature(node)
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = node.lineno
    nested = {
        inner.name: f"'{outer.name}' (line {outer.lineno})"
        for outer in tree.body
        if isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        for inner in _inner_statements(outer)
        if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    try:
        findings = tuple(_Rules(tree).problems())
    except RecursionError:
        findings = (Finding("has an expression nested too deeply to check; simplify it"),)
    return ModuleShape(functions, classes, nested, findings)


def implementation(source: str) -> str:
    """What a module's code does, written so that two candidates differing only in names, annotations,
    docstrings, comments and layout read alike: agreement between different implementations is stronger evidence
    than one idea written out again."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source
    own: dict[str, str] = {}  # the code's own names (functions, parameters, variables) -> placeholders

    def placeholder(name: str) -> str:
        return own.setdefault(name, f"_{len(own)}")

    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            placeholder(node.name)
            if not isinstance(node, ast.ClassDef):
                node.returns = None
            first = node.body[0].value if node.body and isinstance(node.body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):  # the docstring
                node.body = node.body[1:] or [ast.Pass()]
        elif isinstance(node, ast.arg):
            node.arg, node.annotation = placeholder(node.arg), None
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            placeholder(node.id)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.name = own[node.name]
        elif isinstance(node, ast.Name) and node.id in own:
            node.id = own[node.id]
    return ast.dump(tree, annotate_fields=False)


def check_function(spec: Mapping[str, Any], shape: ModuleShape, module_file: str) -> list[Finding]:
    """Every way a schema-valid spec disagrees with the module it belongs to."""
    name: str = spec["name"]
    signature = shape.functions.get(name)
    if signature is None:
        return [Finding(_missing(name, shape, module_file), function=name)]
    where = _Where(signature, module_file)
    problems = [f"{where} {reason}" for reason in signature.refused]

    parameters = spec["parameters"]
    properties = list(parameters.get("properties", {}))
    required = list(parameters.get("required", []))
    in_spec = list(dict.fromkeys(properties + required))
    in_code = signature.parameters
    for parameter in in_spec:
        if parameter not in in_code:
            problems.append(f"parameter '{parameter}' is in the spec but not in the signature of {where}")
    for parameter in in_code:
        if parameter not in in_spec:
            problems.append(f"parameter '{parameter}' of {where} is missing from the spec's parameters.properties")
            continue
        if parameter not in properties:
            problems.append(f"parameter '{parameter}' is in parameters.required but not in parameters.properties")
        defaulted = parameter in signature.defaulted
        if parameter in required and defaulted:
            problems.append(
                f"parameter '{parameter}' is required in the spec but has a default in {where}; "
                "remove it from parameters.required or remove the default"
            )
        elif parameter not in required and not defaulted:
            problems.append(
                f"parameter '{parameter}' has no default in {where} but is not in the spec's parameters.required"
            )

    for error in spec.get("errors", []):
        if error["name"] not in shape.classes and not is_builtin_exception(error["name"]):
            problems.append(
                f"error '{error['name']}' is neither a class defined at top level of {module_file} "
                "nor a builtin exception"
            )
    return [Finding(problem, function=name) for problem in problems]


def _missing(name: str, shape: ModuleShape, module_file: str) -> str:
    if name in shape.classes:
        return f"'{name}' is a class in {module_file} (line {shape.classes[name]}), not a function"
    if name in shape.nested:
        return f"function '{name}' is defined inside {shape.nested[name]} in {module_file}, not at top level"
    known = ", ".join(sorted(shape.functions)) or "none"
    return f"no top-level function '{name}' in {module_file} (its functions: {known})"


class _Where:
    """`add(a, b=1) (calc.py line 3)` when a message is made of it, and only then."""

    def __init__(self, signature: Signature, module_file: str) -> None:
        self.signature, self.module_file = signature, module_file

    def __str__(self) -> str:
        return f"{self.signature.text} ({self.module_file} line {self.signature.line})"


def _defaults(args: ast.arguments) -> dict[str, ast.expr]:
    """Each parameter that has a default, and its default."""
    positional = [*args.posonlyargs, *args.args]
    with_default = positional[len(positional) - len(args.defaults) :]
    defaults = dict(zip([a.arg for a in with_default], args.defaults, strict=True))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None})
    return defaults


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Signature:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults = _defaults(args)
    refused = []
    if isinstance(node, ast.AsyncFunctionDef):
        refused.append("is async; only plain `def` functions are served")
    refused.extend(
        f"has positional-only parameter '{a.arg}'; spec parameters are passed by name, remove the '/'"
        for a in args.posonlyargs
    )
    if args.vararg is not None:
        refused.append(f"takes *{args.vararg.arg}; spec parameters are passed by name, declare each one")
    if args.kwarg is not None:
        refused.append(f"takes **{args.kwarg.arg}; spec parameters are passed by name, declare each one")
    return Signature(
        name=node.name,
        line=node.lineno,
        parameters=tuple(a.arg for a in [*positional, *args.kwonlyargs]),
        defaulted=frozenset(defaults),
        refused=tuple(refused),
        node=node,
    )


def _signature_text(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    args = node.args
    defaults = _defaults(args)
    shown = [_shown(a.arg, defaults) for a in [*args.posonlyargs, *args.args]]
    if args.posonlyargs:
        shown.insert(len(args.posonlyargs), "/")
    if args.vararg is not None:
        shown.append(f"*{args.vararg.arg}")
    elif args.kwonlyargs:
        shown.append("*")
    shown.extend(_shown(a.arg, defaults) for a in args.kwonlyargs)
    if args.kwarg is not None:
        shown.append(f"**{args.kwarg.arg}")
    return f"{node.name}({', '.join(shown)})"


def _shown(name: str, defaults: Mapping[str, ast.expr]) -> str:
    return f"{name}={_snippet(defaults[name], 20)}" if name in defaults else name


def _snippet(node: ast.AST, limit: int = _SNIPPET) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Rules:
    """The top-level rules above, applied to one parsed module."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.aliases: dict[str, str] = {}
        self.bound: set[str] = set()
        self.lazy_annotations = False
        for node in _top_statements(tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    head = alias.name.partition(".")[0]
                    self.aliases[alias.asname or head] = alias.name if alias.asname else head
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                self.lazy_annotations |= node.module == "__future__" and any(
                    a.name == "annotations" for a in node.names
                )
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.bound.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                self.bound.update(name for target in targets for name in _target_names(target))

    def problems(self) -> Iterator[Finding]:
        yield from self._block(self.tree.body, "")

    def _block(self, body: list[ast.stmt], inside: str) -> Iterator[Finding]:
        for node in body:
            yield from self._statement(node, inside)

    def _statement(self, node: ast.stmt, inside: str) -> Iterator[Finding]:
        place = f"in class {inside}, " if inside else "top-level "
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Pass):
            return
        if isinstance(node, ast.Expr):
            if not isinstance(node.value, ast.Constant):
                yield self._refuse(node, f"{place}expression `{_snippet(node)}` runs at import time")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from self._function(node)
        elif isinstance(node, ast.ClassDef):
            yield from self._class(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            yield from self._assignment(node, place)
        elif isinstance(node, ast.Try):
            for part in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from self._block(part, inside)
            for handler in node.handlers:
                yield from self._expression(handler.type, f"{place}`except` clause")
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from self._block(node.body, inside)
            yield from self._block(node.orelse, inside)
        elif isinstance(node, ast.If) and _is_main_guard(node.test):
            yield self._refuse(
                node, f'{place}`if __name__ == "__main__":` block runs code; put usage in the spec\'s examples'
            )
        else:
            what = f"`{_statement_kind(node)}` statement"
            if isinstance(node, ast.If):
                what = "`if` block (only `if TYPE_CHECKING:` is allowed)"
            yield self._refuse(node, f"{place}{what} runs at import time")

    def _refuse(self, node: ast.stmt | ast.expr, what: str) -> Finding:
        return Finding(f"{what}; {_RULE}", line=node.lineno)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[Finding]:
        yield from self._decorators(node)
        args = node.args
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            yield from self._expression(default, f"a default value in {node.name}()")
        if not self.lazy_annotations:
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            annotations = [a.annotation for a in every if a is not None and a.annotation is not None]
            for annotation in [*annotations, *([node.returns] if node.returns else [])]:
                yield from self._expression(annotation, f"an annotation in {node.name}()")

    def _class(self, node: ast.ClassDef) -> Iterator[Finding]:
        yield from self._decorators(node)
        for base in [*node.bases, *(k.value for k in node.keywords)]:
            yield from self._expression(base, f"the bases of class {node.name}")
        yield from self._block(node.body, node.name)

    def _decorators(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> Iterator[Finding]:
        for decorator in node.decorator_list:
            if _dotted(decorator) is None and not isinstance(decorator, ast.Call):
                yield self._refuse(decorator, f"decorator `@{_snippet(decorator)}` of {node.name} is not a name")
            else:
                yield from self._expression(decorator, f"decorator `@{_snippet(decorator)}` of {node.name}")

    def _assignment(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign, place: str) -> Iterator[Finding]:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute | ast.Subscript):
                    yield self._refuse(node, f"{place}assignment to `{_snippet(part)}` changes another object")
                    return
        names = ", ".join(_snippet(t) for t in targets)
        if isinstance(node, ast.AnnAssign) and not self.lazy_annotations:
            yield from self._expression(node.annotation, f"{place}annotation of {names}")
        if node.value is not None:
            yield from self._expression(node.value, f"{place}assignment to {names}")

    def _expression(self, node: ast.expr | None, context: str) -> Iterator[Finding]:
        if node is None:
            return
        problem = self._unsafe(node)
        if problem is not None:
            culprit, why = problem
            yield Finding(f"{context} {why} at import time; {_RULE}", line=getattr(culprit, "lineno", None))

    def _unsafe(self, node: ast.AST) -> tuple[ast.AST, str] | None:
        """The first part of an expression that could have a side effect when evaluated, and why."""
        if isinstance(node, ast.Name | ast.Constant):  # most annotations and defaults: nothing below them runs
            return None
        if isinstance(node, ast.Call):
            if not self._allowed_call(node.func):
                return node, f"calls {_snippet(node.func)}()"
            children: list[ast.AST] = [node.func, *node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.Lambda):
            children = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            return node, "runs a comprehension (a loop)"
        elif isinstance(node, ast.NamedExpr | ast.Await | ast.Yield | ast.YieldFrom):
            return node, f"uses `{_snippet(node)}`"
        elif isinstance(node, _PLAIN_NODES):
            children = list(ast.iter_child_nodes(node))
        else:
            return node, f"evaluates `{_snippet(node)}`"
        for child in children:
            problem = self._unsafe(child)
            if problem is not None:
                return problem
        return None

    def _allowed_call(self, func: ast.expr) -> bool:
        dotted = _dotted(func)
        if dotted is not None:
            return self._resolve(dotted) in ALLOWED_CALLS
        # A pure method on a value built right here: `Path("~").expanduser()`, `", ".join(...)`.
        return isinstance(func, ast.Attribute) and func.attr in PURE_METHODS and _dotted(func.value) is None

    def _resolve(self, dotted: str) -> str | None:
        head, _, rest = dotted.partition(".")
        if head in self.bound:
            return None
        full = self.aliases.get(head, f"builtins.{head}")
        return f"{full}.{rest}" if rest else full


def _target_names(target: ast.expr) -> Iterator[str]:
    """The plain names an assignment binds (not those inside `a.b = ...` or `a[0] = ...`)."""
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _target_names(element)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _inner_statements(node: ast.stmt) -> Iterator[ast.stmt]:
    """Every statement below `node` at any depth (a `def` is a statement, so no expression is walked)."""
    pending = deque(_bodies(node))
    while pending:
        inner = pending.popleft()
        yield inner
        pending.extend(_bodies(inner))


def _bodies(node: ast.stmt) -> Iterator[ast.stmt]:
    """The statements directly inside `node`: its bodies, branches, handlers and cases."""
    for name in ("body", "orelse", "finalbody"):
        yield from getattr(node, name, ())
    for handler in getattr(node, "handlers", ()):
        yield from handler.body
    for case in getattr(node, "cases", ()):
        yield from case.body


def _top_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The module's own statements, including those inside `try:` and `if TYPE_CHECKING:` blocks."""
    for node in body:
        yield node
        if isinstance(node, ast.Try):
            for part in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _top_statements(part)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _top_statements([*node.body, *node.orelse])


def _dotted(node: ast.expr) -> str | None:
    """`os.path.join` for a chain of names and attributes, None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner is not None else None
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return _dotted(test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def _is_main_guard(test: ast.expr) -> bool:
    return isinstance(test, ast.Compare) and any(
        isinstance(n, ast.Name) and n.id == "__name__" for n in [test.left, *test.comparators]
    )


def _statement_kind(node: ast.stmt) -> str:
    kinds = {
        ast.For: "for", ast.AsyncFor: "async for", ast.While: "while", ast.With: "with", ast.AsyncWith: "async with",
        ast.Delete: "del", ast.Global: "global", ast.Nonlocal: "nonlocal", ast.Raise: "raise", ast.Assert: "assert",
        ast.Return: "return", ast.Match: "match", ast.Break: "break", ast.Continue: "continue",
    }  # fmt: skip
    return kinds.get(type(node), type(node).__name__)
