"""The modules that passed every check at the last load, kept on disk so that a start re-checks only what changed.

Checking a module (its spec against the schema, its code with `ast`) costs about a
millisecond a function: ten thousand functions would take seconds at every start.
A load records, in `<functions>/.funcsmith/checks.json`, a digest of the two files of
each module that passed every check with no problem at all; the next load takes such a
module as it is when its files still have that digest, and checks every other module.
The record holds digests only, never a verdict to trust on its own: the entries are
read again from the files themselves. It is void when anything a check depends on
changed (funcsmith's checking code, the spec schema, jsonschema, Python).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import json
import logging
import sys
from pathlib import Path
from typing import Any

from mcp_server import history
from mcp_server.catalog import STATE_FOLDER, Catalog, CatalogChange, FunctionEntry, ModuleCheck
from mcp_server.codecheck import check_function
from mcp_server.sandbox import SandboxGrant
from mcp_server.spec import parse_spec_file, schema

logger = logging.getLogger(__name__)

RECORD = "checks.json"
# What a module's check depends on besides its own two files: the code that checks it (the sandbox
# grant's parser included: a spec's `sandbox` field is checked with it), and the validators it uses.
_CHECKER_MODULES = tuple(sys.modules[c.__module__] for c in (Catalog, check_function, parse_spec_file, SandboxGrant))
_CHECKER_PACKAGES = ("jsonschema", "jsonschema-rs")


@functools.cache
def fingerprint() -> str:
    """A digest of everything besides a module's files that its check depends on."""
    digest = hashlib.sha256(sys.version.encode())
    for module in _CHECKER_MODULES:
        digest.update(Path(inspect.getfile(module)).read_bytes())
    digest.update(json.dumps(schema(), sort_keys=True).encode())
    for package in _CHECKER_PACKAGES:
        digest.update(importlib.metadata.version(package).encode())
    return digest.hexdigest()


def load(catalog: Catalog) -> CatalogChange:
    """`catalog.load()`, re-checking only the modules whose files changed since the last load recorded them."""
    folder = catalog.folder
    modules = catalog.every_module()
    recorded = _read_record(folder)
    checks: dict[str, ModuleCheck] = {}
    files: dict[str, tuple[tuple[bytes, bytes], str]] = {}
    for module in modules:
        pair = _pair(folder, module)
        if pair is None:
            continue
        files[module] = pair, _digest(pair)
        if recorded.get(module) == files[module][1] and (check := _take(folder, module, pair)) is not None:
            checks[module] = check
    taken = set(checks)
    checks.update(catalog.check(modules - taken))
    change = catalog.apply(checks)
    clean = {
        module: digest for module, (pair, digest) in files.items() if module in taken or _is_clean(checks[module], pair)
    }
    if clean != recorded:
        _write_record(folder, clean)
    return change


def _pair(folder: Path, module: str) -> tuple[bytes, bytes] | None:
    """The bytes of a module's `.py` and `.json`; None when either cannot be read (the check reports why)."""
    try:
        return (folder / f"{module}.py").read_bytes(), (folder / f"{module}.json").read_bytes()
    except OSError:
        return None


def _digest(pair: tuple[bytes, bytes]) -> str:
    digest = hashlib.sha256()
    for data in pair:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _specs(data: bytes) -> list[Any] | None:
    """The specs a spec file's bytes hold, as the check reads them; None when they do not read as JSON."""
    try:
        specs = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return [specs] if isinstance(specs, dict) else specs if isinstance(specs, list) else None


def _take(folder: Path, module: str, pair: tuple[bytes, bytes]) -> ModuleCheck | None:
    """The check of a module recorded clean: every spec in its file is an entry, with the code as it is."""
    try:
        source = pair[0].decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    module_path, spec_path = folder / f"{module}.py", folder / f"{module}.json"
    entries = []
    for spec in _specs(pair[1]) or ():
        if not isinstance(spec, dict) or not isinstance(name := spec.get("name"), str):
            return None
        entries.append(FunctionEntry(name, module, spec, source, module_path, spec_path))
    return ModuleCheck(module, tuple(entries), (), ()) if entries else None


def _is_clean(check: ModuleCheck, pair: tuple[bytes, bytes]) -> bool:
    """Whether the check passed every function of the module with no problem, on exactly these bytes.

    The files may change while they are checked: the check counts only when the code it
    read is `pair`'s and the specs it read are those `pair`'s spec file holds.
    """
    if not check.specified or check.diagnostics or check.failed or not check.entries:
        return False
    try:
        source = pair[0].decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return all(e.source == source for e in check.entries) and [e.spec for e in check.entries] == _specs(pair[1])


def _record_path(folder: Path) -> Path:
    return folder / STATE_FOLDER / RECORD


def _read_record(folder: Path) -> dict[str, str]:
    """The digests recorded by the last load, when they were recorded by a checker like this one."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(_record_path(folder).read_text(encoding="utf-8"))
        if isinstance(record, dict) and record.get("fingerprint") == fingerprint():
            modules = record.get("modules")
            if isinstance(modules, dict):
                return {str(m): d for m, d in modules.items() if isinstance(d, str)}
    return {}


def _write_record(folder: Path, clean: dict[str, str]) -> None:
    """Best effort: a read-only folder only means the next start checks everything again."""
    path = _record_path(folder)
    try:
        path.parent.mkdir(exist_ok=True)
        history.write_atomic(path, json.dumps({"fingerprint": fingerprint(), "modules": dict(sorted(clean.items()))}))
    except OSError as error:
        logger.info("could not record the checked modules in %s: %s", path, error.strerror or error)
