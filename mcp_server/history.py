"""Earlier versions of catalogue modules, so that replacing or removing a function loses nothing.

Each version of a module is kept as a `.py` + `.json` pair under
`<functions>/.funcsmith/history/<module>/<timestamp>-<hash>/`, written once per
distinct content; `funcsmith history` lists them and `funcsmith restore` puts
one back through the same atomic write as publishing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_server.catalog import STATE_FOLDER, FunctionEntry


@dataclass(frozen=True, slots=True)
class Version:
    module: str
    folder: Path
    saved_at: float

    @property
    def id(self) -> str:
        return self.folder.name


def history_root(functions: Path) -> Path:
    return functions / STATE_FOLDER / "history"


def write_atomic(path: Path, text: str) -> None:
    """Write via a hidden temp file and rename, so no reader ever sees half a file."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def spec_text(specs: Sequence[Mapping[str, Any]]) -> str:
    document: Any = dict(specs[0]) if len(specs) == 1 else [dict(s) for s in specs]
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def save(functions: Path, module: str, source: str, spec_json: str) -> Version:
    """Keep one version of a module (a no-op when that exact content is already kept)."""
    digest = hashlib.sha256((source + "\0" + spec_json).encode()).hexdigest()[:12]
    root = history_root(functions) / module
    for existing in root.glob(f"*-{digest}") if root.exists() else ():
        return Version(module, existing, existing.stat().st_mtime)
    folder = root / f"{time.strftime('%Y%m%dT%H%M%S')}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"{module}.py", source)
    write_atomic(folder / f"{module}.json", spec_json)
    return Version(module, folder, time.time())


def save_files(functions: Path, module: str) -> Version | None:
    """Keep the module's current files, if it has both, before they are replaced."""
    py, js = functions / f"{module}.py", functions / f"{module}.json"
    try:
        return save(functions, module, py.read_text(encoding="utf-8"), js.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def save_served(functions: Path, module: str, entries: Iterable[FunctionEntry]) -> Version | None:
    """Keep the version of a module that was being served (from memory: its files may be gone)."""
    entries = list(entries)
    if not entries:
        return None
    return save(functions, module, entries[0].source, spec_text([e.spec for e in entries]))


def versions(functions: Path, module: str) -> list[Version]:
    """Kept versions of a module, oldest first."""
    root = history_root(functions) / module
    if not root.is_dir():
        return []
    found = [Version(module, d, d.stat().st_mtime) for d in root.iterdir() if d.is_dir()]
    return sorted(found, key=lambda v: (v.id, v.saved_at))


def modules(functions: Path) -> list[str]:
    root = history_root(functions)
    return sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []


def restore(functions: Path, version: Version) -> None:
    """Put a kept version back into the catalogue, keeping the current files first."""
    save_files(functions, version.module)
    source = (version.folder / f"{version.module}.py").read_text(encoding="utf-8")
    spec_json = (version.folder / f"{version.module}.json").read_text(encoding="utf-8")
    write_atomic(functions / f"{version.module}.py", source)
    write_atomic(functions / f"{version.module}.json", spec_json)
