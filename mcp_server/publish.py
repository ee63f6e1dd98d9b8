"""Put a verified module into the functions folder, and make sure it is what the catalogue serves.

Publishing holds a lock file in the folder's state directory, so two processes
(two `funcsmith generate` runs, or a server and a CLI) never publish at the same
moment. Under the lock the catalogue first reads any module that appeared on disk
since it last looked, names are checked against that, the files are written
atomically (spec last) after the replaced version is kept in history, and the
catalogue is refreshed on the new module. The result is the catalogue change that
caused, so a server can serve it and tell its clients at once. A module that does
not end up served is taken back out, and is never reported as published.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from filelock import FileLock, Timeout

from mcp_server import history
from mcp_server.catalog import STATE_FOLDER, Catalog, CatalogChange, module_name
from mcp_server.sandbox import temp_prefix
from mcp_server.tools import Runner, run_tool, serve

LOCK_NAME = "publish.lock"


@dataclass(frozen=True, slots=True)
class Publication:
    """What one publish did: the served names and the catalogue change, or the problems that stopped it."""

    module: str | None
    names: tuple[str, ...] = ()
    replaced: str | None = None
    change: CatalogChange = field(default_factory=CatalogChange)
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return bool(self.names) and not self.problems


class Publisher:
    """Writes modules into one catalogue's folder, one process at a time."""

    def __init__(self, catalog: Catalog, runner: Runner, *, lock_timeout_s: float = 60.0) -> None:
        self.catalog = catalog
        self.runner = runner
        self.lock_timeout_s = lock_timeout_s

    async def publish(self, code: str, specs: Sequence[Mapping[str, Any]], *, overwrite: bool) -> Publication:
        """Publish `code` with `specs` as a new module (or, with overwrite, over the module owning the names)."""
        folder = self.catalog.folder
        try:
            (folder / STATE_FOLDER).mkdir(exist_ok=True)
        except OSError as exc:
            return Publication(None, problems=(f"cannot write to the functions folder {folder}: {exc.strerror}",))
        lock = FileLock(folder / STATE_FOLDER / LOCK_NAME, thread_local=False)
        try:
            await anyio.to_thread.run_sync(lambda: lock.acquire(timeout=self.lock_timeout_s))
        except Timeout:
            message = f"another process has been publishing into {folder} for {self.lock_timeout_s:.0f} s; try again"
            return Publication(None, problems=(message,))
        except OSError as exc:
            return Publication(None, problems=(f"cannot take the publishing lock in {folder}: {exc.strerror}",))
        try:
            return await self._publish_locked(code, specs, overwrite)
        finally:
            lock.release()

    async def _publish_locked(self, code: str, specs: Sequence[Mapping[str, Any]], overwrite: bool) -> Publication:
        change = self._catch_up()
        names = [str(s["name"]) for s in specs]
        replacing, problems = self._clashes(names, overwrite)
        if problems:
            return Publication(None, change=change, problems=tuple(problems))
        module = replacing or fresh_module(names[0], self.catalog.folder)
        folder = self.catalog.folder
        try:
            kept = history.save_files(folder, replacing) if replacing else None
        except OSError as exc:
            problem = f"cannot keep the version of module {module} it would replace ({exc.strerror}); nothing changed"
            return Publication(module, change=change, problems=(problem,))
        try:  # the .py, then the spec that makes the module visible; on failure the folder is as it was
            history.write_module(folder, module, code, history.spec_text(specs))
        except OSError as exc:
            problem = f"cannot write module {module} ({exc.strerror}); nothing changed"
            return Publication(module, change=change, problems=(problem,))
        change = _merge(change, self.catalog.refresh([module]))
        problem = await self._served(module, code, names)
        if problem is not None:
            self._take_back(module, kept)
            return Publication(module, change=_merge(change, self.catalog.refresh([module])), problems=(problem,))
        return Publication(module, tuple(names), replacing if kept else None, change)

    def _catch_up(self) -> CatalogChange:
        """Read modules that appeared on (or vanished from) disk since the catalogue last looked.

        Another process may have published a moment ago; names must be checked against that.
        """
        with os.scandir(self.catalog.folder) as found:
            on_disk = {stem for e in found if (stem := module_name(Path(e.name))) is not None and e.is_file()}
        known = {s.module for s in self.catalog.statuses()} | {d.file.stem for d in self.catalog.diagnostics}
        new = {m for m in on_disk - known if (self.catalog.folder / f"{m}.json").exists()}
        return self.catalog.refresh(new | (known - on_disk)) if new or known - on_disk else CatalogChange()

    def _clashes(self, names: Iterable[str], overwrite: bool) -> tuple[str | None, list[str]]:
        """The one module being replaced (with overwrite), and problems for names taken in the catalogue."""
        owners = {s.name: s.module for s in self.catalog.statuses()}
        problems: list[str] = []
        replaced: set[str] = set()
        for name in names:
            module = owners.get(name)
            if module is None:
                continue
            if overwrite:
                replaced.add(module)
            else:
                problems.append(
                    f"a function named {name!r} already exists in the catalogue (module {module}): choose another name"
                )
        if len(replaced) > 1:
            problems.append(
                f"these names belong to several modules ({', '.join(sorted(replaced))}); overwrite replaces one module"
            )
        return (next(iter(replaced)) if len(replaced) == 1 else None), problems

    async def _served(self, module: str, code: str, names: Sequence[str]) -> str | None:
        """None when every name is served from the new code and answers as a tool (on scratch data)."""
        published = self.catalog.published
        missing = [n for n in names if (e := published.get(n)) is None or e.source != code or e.module != module]
        if missing:
            found = [d.message for d in self.catalog.diagnostics if d.file.stem == module]
            why = "; ".join(found) or "the catalogue does not serve it"
            return f"module {module} was written but {', '.join(missing)} is not served: {why}"
        with tempfile.TemporaryDirectory(prefix=temp_prefix("served")) as scratch:
            for name in names:
                entry = published[name]
                example = next((e for e in entry.examples if "result" in e), None)
                if example is None:
                    continue
                answer = await run_tool(
                    self.runner, serve(entry), example.get("parameters", {}), data_dir=Path(scratch)
                )
                if answer.is_error:
                    return f"{name} was published but its first example failed when called as a tool"
        return None

    def _take_back(self, module: str, kept: history.Version | None) -> None:
        """Undo a write that did not end up served: put the replaced version back, or remove the new files."""
        folder = self.catalog.folder
        if kept is not None:
            history.restore(folder, kept)
            return
        for suffix in (".json", ".py"):
            (folder / f"{module}{suffix}").unlink(missing_ok=True)


def module_stem(name: str) -> str:
    """A module stem made from a function name."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_") or "generated"


def fresh_module(name: str, folder: Path) -> str:
    """A module stem for new code: the first function's name, made unique among the files on disk."""
    base = module_stem(name)
    stem, n = base, 2
    while (folder / f"{stem}.py").exists() or (folder / f"{stem}.json").exists():
        stem, n = f"{base}_{n}", n + 1
    return stem


def _merge(first: CatalogChange, second: CatalogChange) -> CatalogChange:
    """Two changes in a row as one (a name added then changed is added)."""
    added = (first.added | second.added) - second.removed
    removed = (first.removed | second.removed) - second.added
    changed = (first.changed | second.changed) - added - removed
    return CatalogChange(added=frozenset(added), removed=frozenset(removed), changed=frozenset(changed))
