"""The functions folder as validated entries: what is served, what is broken, and why.

A module is a pair `<module>.py` + `<module>.json` in the folder. A function
is published only when its spec validates against the schema and agrees with
the code, checked statically (the code is never imported here), and its name
is free: not a built-in tool's, not taken by another module. Every problem is
a `Diagnostic`; nothing in a broken folder raises.

A broken edit never takes a working tool away: on `refresh`, a function that
was served keeps serving its last good entry (status "stale") until its module
is fixed or its spec is removed.

Library use, without the server::

    from mcp_server.catalog import load_catalog

    catalog = load_catalog("functions")
    for entry in catalog.published.values():
        print(entry.name, entry.module_path, entry.spec["description"], entry.parameters)
    for status in catalog.statuses():  # published, unverified, stale and invalid functions
        print(status.name, status.module, status.status)
        for diagnostic in status.diagnostics:
            print("   ", diagnostic)
    if not catalog.ok:
        print("\\n".join(str(d) for d in catalog.diagnostics))

    change = catalog.refresh({"expenses"})  # after expenses.py / expenses.json changed
    print(change.added, change.changed, change.removed)
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from mcp_server.codecheck import check_function, inspect_module
from mcp_server.spec import parse_spec_file

BUILTIN_TOOLS: frozenset[str] = frozenset({"create_function", "list_functions", "find_functions", "call_function"})

STATE_FOLDER = ".funcsmith"
CATALOG_SUFFIXES = frozenset({".py", ".json"})
# Editors' swap, backup and temporary files; most are also caught by the suffix rule, named here for clarity.
IGNORED_SUFFIXES = (".swp", ".swo", ".swx", "~", ".bak", ".tmp", ".orig", ".rej")
IGNORED_NAMES = frozenset({"4913"})  # vim's probe file

Status = Literal["published", "unverified", "stale", "invalid"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: the file, the function when there is one, what is wrong, and the line when known."""

    file: Path
    message: str
    function: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        function = f" function '{self.function}':" if self.function is not None else ""
        return f"{where}:{function} {self.message}"


@dataclass(frozen=True, slots=True)
class FunctionEntry:
    """A function that passed every check, with the exact source it was checked against (that is what runs)."""

    name: str
    module: str
    spec: Mapping[str, Any]
    source: str
    module_path: Path
    spec_path: Path

    def __hash__(self) -> int:
        # The spec is a dict, so the generated hash would fail; equal entries share these fields anyway.
        return hash((self.name, self.module, self.source, self.spec_path))

    @property
    def description(self) -> str:
        return self.spec["description"]

    @property
    def parameters(self) -> Mapping[str, Any]:
        return self.spec["parameters"]

    @property
    def responses(self) -> Sequence[Mapping[str, Any]]:
        return self.spec["responses"]

    @property
    def errors(self) -> Sequence[Mapping[str, Any]]:
        return self.spec.get("errors", [])

    @property
    def examples(self) -> Sequence[Mapping[str, Any]]:
        return self.spec.get("examples", [])

    @property
    def verified(self) -> bool:
        """Whether the spec has an example with an expected result or error: a check it was published on."""
        return any("result" in e or "error" in e for e in self.examples)


@dataclass(frozen=True, slots=True)
class FunctionStatus:
    """Where one function of one module stands, and the problems that concern it."""

    name: str
    module: str
    status: Status
    diagnostics: tuple[Diagnostic, ...]
    entry: FunctionEntry | None


@dataclass(frozen=True, slots=True)
class ModuleCheck:
    """The result of checking one module pair on its own (clashes between modules are the catalogue's job).

    `specified` is False when there is no spec file: then the module offers no function at all,
    and one it served goes (removing a spec removes its functions, even with the code left behind).
    """

    module: str
    entries: tuple[FunctionEntry, ...]
    diagnostics: tuple[Diagnostic, ...]
    failed: tuple[str, ...]
    specified: bool = True


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """Which tool names a load or refresh added, removed, or now serve from a different entry."""

    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def is_catalog_file(path: Path) -> bool:
    """True for a `.py`/`.json` file the catalogue reads; False for hidden, private, editor and state files."""
    name = path.name
    return not (
        name.startswith((".", "_", "#"))
        or name.endswith(IGNORED_SUFFIXES)
        or name in IGNORED_NAMES
        or STATE_FOLDER in path.parts
        or path.suffix not in CATALOG_SUFFIXES
    )


def module_name(path: Path) -> str | None:
    """The module stem of a catalogue file, None for an ignored file."""
    return path.stem if is_catalog_file(path) else None


def check_modules(folder: Path, modules: Iterable[str]) -> dict[str, ModuleCheck]:
    """Check these module stems on disk; a pure function of the files, so it can run in another process."""
    return {
        module: check_module(folder, module)
        if is_catalog_file(folder / f"{module}.json")
        else ModuleCheck(module, (), (), ())
        for module in set(modules)
    }


def check_module(folder: Path, module: str) -> ModuleCheck:
    """Check `<module>.json` against its schema and against `<module>.py`; reads both, never imports the code.

    A `.py` without its `.json` serves nothing and is one diagnostic (its `.py` is not
    even read): a function module cannot import it, and a pair being saved passes
    through this state only until its `.json` lands.
    """
    spec_path = folder / f"{module}.json"
    module_path = folder / f"{module}.py"
    spec_text, unreadable = _read(spec_path)
    if spec_text is None and unreadable is None:
        if not module_path.is_file():
            return ModuleCheck(module, (), (), ())
        message = (
            f"{spec_path.name} is missing: functions are served only with a spec next to their code "
            "(a file that is no function module can be named with a leading _ to be ignored)"
        )
        return ModuleCheck(module, (), (Diagnostic(module_path, message),), (), specified=False)
    diagnostics: list[Diagnostic] = []
    if unreadable is not None:
        diagnostics.append(unreadable)
        return ModuleCheck(module, (), tuple(diagnostics), ())
    spec_file = parse_spec_file(spec_text or "")
    diagnostics.extend(Diagnostic(spec_path, f.message, f.function, f.line) for f in spec_file.findings)

    source, unreadable = _read(module_path)
    entries: list[FunctionEntry] = []
    if unreadable is not None:
        diagnostics.append(unreadable)
    elif source is None:
        message = f"{module_path.name} is missing: the functions this spec names must be defined there"
        diagnostics.append(Diagnostic(spec_path, message))
    else:
        shape = inspect_module(source, str(module_path))
        diagnostics.extend(Diagnostic(module_path, f.message, f.function, f.line) for f in shape.findings)
        for spec in spec_file.specs if shape.parsed else ():
            findings = check_function(spec, shape, module_path.name)
            diagnostics.extend(Diagnostic(spec_path, f.message, f.function, f.line) for f in findings)
            if not findings and not shape.findings:
                entries.append(FunctionEntry(spec["name"], module, spec, source, module_path, spec_path))
    passed = {entry.name for entry in entries}
    failed = tuple(name for name in spec_file.names if name not in passed)
    return ModuleCheck(module, tuple(entries), tuple(diagnostics), failed)


def _read(path: Path) -> tuple[str | None, Diagnostic | None]:
    """The file's text; (None, None) when it does not exist; (None, diagnostic) when it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        return None, Diagnostic(path, "is a directory, not a file")
    except OSError as error:
        return None, Diagnostic(path, f"cannot be read: {error.strerror or error}")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        message = f"is not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); save it as UTF-8"
        return None, Diagnostic(path, message, line=line)


@dataclass(frozen=True, slots=True)
class _Slot:
    """What one module offers under one name: its current entry, its last served one (stale), or nothing."""

    entry: FunctionEntry | None
    stale: bool


class Catalog:
    """The functions folder as validated entries; also usable as a library without the server."""

    def __init__(self, folder: Path | str, *, reserved: Collection[str] = BUILTIN_TOOLS) -> None:
        self.folder = Path(folder)
        self._reserved = frozenset(reserved)
        self._checks: dict[str, ModuleCheck] = {}
        self._slots: dict[str, dict[str, _Slot]] = {}  # module -> function name -> slot
        self._claims: dict[str, set[str]] = {}  # function name -> modules that specify it
        self._owners: dict[str, str] = {}  # function name -> module whose entry is served
        self._conflicts: dict[str, tuple[Diagnostic, ...]] = {}  # function name -> clash / reserved-name problems
        self._published: MappingProxyType[str, FunctionEntry] = MappingProxyType({})

    def load(self) -> CatalogChange:
        """Scan the whole folder: every module on disk, and every known module (which may be gone)."""
        return self.refresh(self.every_module())

    def every_module(self) -> set[str]:
        """The module stems on disk and the known ones (which may be gone): what a full load checks."""
        if not self.folder.exists():
            raise FileNotFoundError(f"functions folder {self.folder} does not exist")
        if not self.folder.is_dir():
            raise NotADirectoryError(f"functions folder {self.folder} is not a directory")
        with os.scandir(self.folder) as found:
            on_disk = {stem for e in found if (stem := module_name(Path(e.name))) is not None and e.is_file()}
        return {*on_disk, *self._checks}

    def refresh(self, modules: Iterable[str]) -> CatalogChange:
        """Re-check only these module stems; everything else stays as it is."""
        return self.apply(self.check(modules))

    def check(self, modules: Iterable[str]) -> dict[str, ModuleCheck]:
        """Check these module stems on disk without changing the catalogue (so it may run elsewhere)."""
        return check_modules(self.folder, modules)

    def apply(self, checks: Mapping[str, ModuleCheck]) -> CatalogChange:
        """Serve the outcome of `check`: one swap of the published snapshot, fast (nothing is read from disk)."""
        old = self._published
        touched: set[str] = set()
        for module, check in checks.items():
            previous = self._slots.pop(module, {})
            slots = self._slots_for(check, previous)
            for name in previous:
                self._claims[name].discard(module)
            for name in slots:
                self._claims.setdefault(name, set()).add(module)
            if slots or check.diagnostics:
                self._slots[module], self._checks[module] = slots, check
            else:
                self._checks.pop(module, None)
            touched.update(previous, slots)
        published = old.copy()  # the dict behind the proxy, copied whole: dict(old) goes key by key (3 ms at 10,000)
        for name in touched:
            self._resolve(name, published)
        self._published = MappingProxyType(published)
        return CatalogChange(
            added=frozenset(n for n in touched if n in published and n not in old),
            removed=frozenset(n for n in touched if n in old and n not in published),
            changed=frozenset(
                n
                for n in touched
                if n in old and n in published and old[n] is not published[n] and old[n] != published[n]
            ),
        )

    def _slots_for(self, check: ModuleCheck, previous: Mapping[str, _Slot]) -> dict[str, _Slot]:
        """A module's functions after a check: new entries, else the last served entry of a failed function."""
        slots = {entry.name: _Slot(entry, stale=False) for entry in check.entries}
        failed: Iterable[str] = check.failed
        if check.specified and not check.entries and not check.failed and check.diagnostics:
            failed = previous  # the spec file could not be read as specs: its names are unknown, keep them all
        for name in failed:
            served = self._published.get(name) if self._owners.get(name) == check.module else None
            slots[name] = _Slot(served, stale=served is not None)
        return slots

    def _resolve(self, name: str, published: dict[str, FunctionEntry]) -> None:
        """Decide who serves `name` among the modules that specify it, and record clashes."""
        modules = sorted(self._claims.get(name, ()))
        owner = self._owners.get(name)
        winner = owner if owner in modules else (modules[0] if modules else None)
        if not modules:
            self._claims.pop(name, None)
            self._conflicts.pop(name, None)
        elif name in self._reserved:
            winner = None
            message = f"'{name}' is the name of a built-in tool; rename the function"
            self._conflicts[name] = tuple(Diagnostic(self._spec_path(m), message, name) for m in modules)
        elif len(modules) > 1 and winner is not None:
            self._conflicts[name] = tuple(self._clash(name, module, winner, modules) for module in modules)
        else:
            self._conflicts.pop(name, None)
        entry = self._slots[winner][name].entry if winner is not None else None
        if winner is not None and entry is not None:
            published[name] = entry
            self._owners[name] = winner
        else:
            published.pop(name, None)
            self._owners.pop(name, None)

    def _clash(self, name: str, module: str, winner: str, modules: list[str]) -> Diagnostic:
        """One side of a name clash, naming the other side(s) and who keeps the name."""
        if module == winner:
            others = ", ".join(f"'{m}' ({self._spec_path(m)})" for m in modules if m != module)
            why = "was published first" if self._owners.get(name) == module else "sorts first"
            message = f"name clash: also specified by module {others}; this module keeps the name ({why})"
        else:
            message = (
                f"name clash: module '{winner}' ({self._spec_path(winner)}) also specifies it and keeps the name; "
                "this one is not served; rename one of them"
            )
        return Diagnostic(self._spec_path(module), message, name)

    def _spec_path(self, module: str) -> Path:
        return self.folder / f"{module}.json"

    @property
    def published(self) -> Mapping[str, FunctionEntry]:
        """Name -> entry served as a tool; a snapshot replaced (never mutated) by each load or refresh."""
        return self._published

    def get(self, name: str) -> FunctionEntry | None:
        return self._published.get(name)

    def statuses(self) -> list[FunctionStatus]:
        """Every known function, one per (name, module), sorted by name then module."""
        result = []
        for module, slots in self._slots.items():
            check = self._checks[module]
            spec_path = self._spec_path(module)
            for name, slot in slots.items():
                served = self._owners.get(name) == module
                status: Status = "invalid"
                if served and slot.entry is not None:
                    status = "stale" if slot.stale else "published" if slot.entry.verified else "unverified"
                diagnostics = tuple(d for d in check.diagnostics if d.function in (name, None)) + tuple(
                    d for d in self._conflicts.get(name, ()) if d.file == spec_path
                )
                result.append(FunctionStatus(name, module, status, diagnostics, slot.entry if served else None))
        return sorted(result, key=lambda s: (s.name, s.module))

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Every current problem, clashes included, sorted by file then line."""
        every = [d for check in self._checks.values() for d in check.diagnostics]
        every.extend(d for conflicts in self._conflicts.values() for d in conflicts)
        return sorted(every, key=lambda d: (str(d.file), d.line or 0))

    @property
    def ok(self) -> bool:
        """True when the folder has no problem at all."""
        return not self._conflicts and not any(check.diagnostics for check in self._checks.values())


def load_catalog(folder: Path | str) -> Catalog:
    """A catalogue of `folder`, loaded."""
    catalog = Catalog(folder)
    catalog.load()
    return catalog
