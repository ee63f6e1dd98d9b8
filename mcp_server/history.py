"""Earlier versions of catalogue modules, so that replacing or removing a function loses nothing.

Each version of a module is kept as a `.py` + `.json` pair under
`<functions>/.funcsmith/history/<module>/<timestamp>-<hash>/`, written once per
distinct content; at most `keep` versions per module are kept, the oldest going
first. `funcsmith history` lists them and `funcsmith restore` puts one back
through the same atomic write as publishing. Saving holds a lock file beside the
history: replicas serving one folder all see the same edit and all keep its
replaced version, and the lock lets only the first one write it.

This module also holds the project's one atomic write: funcsmith never lets a
reader see half a file, and the temp files a crash leaves behind carry a name
of funcsmith's own (`.<name>.<random>.funcsmith-tmp`), so that the next start
removes them and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from mcp_server.catalog import STATE_FOLDER, FunctionEntry

DEFAULT_KEEP = 20
TEMP_SUFFIX = ".funcsmith-tmp"
LOCK_NAME = "history.lock"
LOCK_TIMEOUT_S = 30.0


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


def temp_path(path: Path) -> Path:
    """A fresh hidden temp name beside `path`, of the kind the next start removes if a crash leaves it."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def write_atomic(path: Path, text: str) -> None:
    """Write a hidden temp file, flush it to disk and rename it over `path`: readers see the old or the new file.

    On failure (a full disk, a read-only folder) the temp file is removed and the OSError raised;
    `path` is untouched.
    """
    temp = temp_path(path)
    try:
        with temp.open("x", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def write_module(functions: Path, module: str, source: str, spec_json: str) -> None:
    """Write a module's `.py`, then its `.json` (the watcher serves a pair once its spec lands).

    If either write fails (OSError), the `.py` is put back as it was, so the folder never holds
    a new `.py` beside an old spec: a rename, which needs no free space.
    """
    py = functions / f"{module}.py"
    backup: Path | None = temp_path(py)
    try:
        os.link(py, backup)
    except FileNotFoundError:
        backup = None  # a new module: on failure, its new .py goes
    try:
        write_atomic(py, source)
        write_atomic(functions / f"{module}.json", spec_json)
    except BaseException:
        with contextlib.suppress(OSError):
            if backup is not None:
                os.replace(backup, py)
            else:
                py.unlink(missing_ok=True)
        raise
    finally:
        if backup is not None:
            backup.unlink(missing_ok=True)


def is_temp(name: str) -> bool:
    """True for the name of a temp file funcsmith's atomic write (or a shipped example) makes."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_stale_temps(folder: Path, *, older_than_s: float, recursive: bool = False) -> list[Path]:
    """Remove funcsmith's temp files (and half-saved versions) in `folder` older than `older_than_s`.

    Only what no write still running can own: a write finishes (or its call is killed) within that age.
    """
    removed = []
    cutoff = time.time() - older_than_s
    for entry in _entries(folder, recursive):
        with contextlib.suppress(OSError):
            if is_temp(entry.name) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _entries(folder: Path, recursive: bool) -> Iterator[os.DirEntry[str]]:
    """The entries of `folder` (and of its subfolders, not following links, when `recursive`); any depth."""
    pending = [str(folder)]
    while pending:
        try:
            with os.scandir(pending.pop()) as scan:
                entries = list(scan)
        except OSError:
            continue
        for entry in entries:
            yield entry
            if recursive and not is_temp(entry.name) and entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)


def spec_text(specs: Sequence[Mapping[str, Any]]) -> str:
    document: Any = dict(specs[0]) if len(specs) == 1 else [dict(s) for s in specs]
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def save(functions: Path, module: str, source: str, spec_json: str, *, keep: int = DEFAULT_KEEP) -> Version:
    """Keep one version of a module, then drop the oldest beyond `keep`.

    Content already kept is not written again (by this process or another one): its version becomes
    the newest. Raises OSError (disk full, read-only folder, the lock not free within
    LOCK_TIMEOUT_S) with nothing half-written left behind.
    """
    root = history_root(functions) / module
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(functions / STATE_FOLDER / LOCK_NAME, timeout=LOCK_TIMEOUT_S, thread_local=False):
        return _save_locked(functions, root, module, source, spec_json, keep)


def _save_locked(functions: Path, root: Path, module: str, source: str, spec_json: str, keep: int) -> Version:
    digest = hashlib.sha256((source + "\0" + spec_json).encode()).hexdigest()[:12]
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}"
    folder = root / f"{stamp}-{digest}"
    existing = next(iter(root.glob(f"*-{digest}")), None)
    if existing is not None:
        existing.rename(folder)
    else:
        staging = root / f".{folder.name}{TEMP_SUFFIX}"
        staging.mkdir()
        try:
            write_atomic(staging / f"{module}.py", source)
            write_atomic(staging / f"{module}.json", spec_json)
            staging.rename(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    for old in versions(functions, module)[:-keep] if keep > 0 else ():
        shutil.rmtree(old.folder, ignore_errors=True)
    return Version(module, folder, now)


def save_files(functions: Path, module: str, *, keep: int = DEFAULT_KEEP) -> Version | None:
    """Keep the module's current files, if it has both, before they are replaced."""
    py, js = functions / f"{module}.py", functions / f"{module}.json"
    try:
        source, spec_json = py.read_text(encoding="utf-8"), js.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return save(functions, module, source, spec_json, keep=keep)


def save_served(
    functions: Path, module: str, entries: Iterable[FunctionEntry], *, keep: int = DEFAULT_KEEP
) -> Version | None:
    """Keep the version of a module that was being served (from memory: its files may be gone)."""
    entries = list(entries)
    if not entries:
        return None
    return save(functions, module, entries[0].source, spec_text([e.spec for e in entries]), keep=keep)


def versions(functions: Path, module: str) -> list[Version]:
    """Kept versions of a module, oldest first."""
    root = history_root(functions) / module
    if not root.is_dir():
        return []
    found = [Version(module, d, d.stat().st_mtime) for d in root.iterdir() if d.is_dir() and not is_temp(d.name)]
    return sorted(found, key=lambda v: v.id)


def modules(functions: Path) -> list[str]:
    root = history_root(functions)
    return sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []


def restore(functions: Path, version: Version, *, keep: int = DEFAULT_KEEP) -> None:
    """Put a kept version back into the catalogue, keeping the current files first (OSError if either fails)."""
    source = (version.folder / f"{version.module}.py").read_text(encoding="utf-8")
    spec_json = (version.folder / f"{version.module}.json").read_text(encoding="utf-8")
    save_files(functions, version.module, keep=keep)
    write_module(functions, version.module, source, spec_json)
