"""Keep the served tools in step with the functions folder while the server runs.

The folder is the source of truth. A change re-checks only the modules whose
files changed, a large module in a worker thread (a huge one takes seconds to
check, and calls must not wait for it); the catalogue then swaps in a new
snapshot at once on the event loop (a call that already started keeps the entry it began with),
and every client is told. Batches are handled one at a time, in order.
Broken edits never take a working tool away: the catalogue keeps serving the
last good version and reports the problem.

When the folder itself goes away (deleted, or renamed away), the last loaded
functions keep serving; once a folder is back at that path it is watched again
and reloaded in full.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_process
import anyio.to_thread
from watchfiles import Change, awatch

from mcp_server import history
from mcp_server.catalog import (
    Catalog,
    CatalogChange,
    Diagnostic,
    FunctionEntry,
    check_modules,
    is_catalog_file,
    module_name,
)

logger = logging.getLogger(__name__)

# watchfiles yields once the folder has been quiet for STEP_MS (and at the latest after
# DEBOUNCE_MS of constant change): an editor's save dance or a .py written just before
# its .json lands in one batch, while a lone write is seen within one to two steps.
STEP_MS = 15
DEBOUNCE_MS = 400
# Modules whose files hold more than this are checked (and their replaced versions kept) in a worker
# thread, so that calls go on meanwhile: a 20,000-function module takes seconds. Smaller ones take a few
# ms and are checked inline, which also keeps the reloads of one burst of small writes back to back.
OFF_LOOP_BYTES = 64 * 1024
# How often to look whether a folder that went away is back.
RETURN_POLL_S = 0.25

T = TypeVar("T")
OnReload = Callable[[list[Diagnostic]], Awaitable[None]]


def changed_modules(changes: set[tuple[Change, str]]) -> set[str]:
    """The module stems a batch of file events touches."""
    return {module for _, path in changes if (module := module_name(Path(path))) is not None}


def keep_replaced(
    folder: Path, before: Mapping[str, FunctionEntry], names: Iterable[str], *, keep: int = history.DEFAULT_KEEP
) -> None:
    """Keep the served version of every module whose functions were replaced or removed.

    Best effort: a full disk or a read-only folder costs the kept copy (and says so), never the reload.
    """
    modules = {before[name].module for name in names if name in before}
    for module in sorted(modules):
        try:
            history.save_served(folder, module, [e for e in before.values() if e.module == module], keep=keep)
        except OSError as error:
            logger.warning(
                "could not keep the replaced version of module %s in %s: %s",
                module,
                history.history_root(folder),
                error.strerror or error,
            )


class _Reloader:
    """Checks modules (large ones off the event loop), swaps the result in on the loop, reports what changed."""

    def __init__(self, catalog: Catalog, on_reload: OnReload, keep: int) -> None:
        self.catalog = catalog
        self.on_reload = on_reload
        self.keep = keep
        self.known = {str(d) for d in catalog.diagnostics}

    async def reload(self, modules: Iterable[str], *, large: bool = False) -> None:
        """Re-check `modules`; off the event loop when they are `large` (or their files are)."""
        catalog = self.catalog
        modules = set(modules)
        large = large or _size(catalog.folder, modules) > OFF_LOOP_BYTES

        async def run(work: Callable[[], T]) -> T:
            return await anyio.to_thread.run_sync(work) if large else work()

        # Parsing a large module holds the GIL for seconds (ast.parse of 20,000 functions: about 3 s),
        # so in a thread it would still stall every call: a large check runs in a worker process.
        if large:
            checks = await anyio.to_process.run_sync(check_modules, catalog.folder, modules)
        else:
            checks = catalog.check(modules)
        before = catalog.published
        change = catalog.apply(checks)
        replaced = change.changed | change.removed
        if replaced:
            # Before clients hear of the change: once they have, the folder may be renamed or the
            # version restored at once, and the replaced version must already be kept.
            await run(lambda: keep_replaced(catalog.folder, before, replaced, keep=self.keep))
        diagnostics = catalog.diagnostics
        fresh = [d for d in diagnostics if str(d) not in self.known]
        self.known = {str(d) for d in diagnostics}
        for diagnostic in fresh:
            logger.warning("%s", diagnostic)
        if change:
            logger.info("catalogue changed: %s", _describe(change))
        await self.on_reload(fresh)


def _size(folder: Path, modules: Iterable[str]) -> int:
    """The bytes of the modules' files on disk (what their check costs is about proportional to)."""
    total = 0
    for module in modules:
        for suffix in (".py", ".json"):
            with contextlib.suppress(OSError):
                total += (folder / f"{module}{suffix}").stat().st_size
    return total


def _describe(change: CatalogChange) -> str:
    labelled = (("added", change.added), ("changed", change.changed), ("removed", change.removed))
    return ", ".join(f"{label} {', '.join(sorted(names))}" for label, names in labelled if names)


async def watch_catalog(
    catalog: Catalog,
    on_reload: OnReload,
    *,
    ready: anyio.Event | None = None,
    keep: int = history.DEFAULT_KEEP,
) -> None:
    """Watch `catalog.folder` until cancelled; after each batch, refresh and call `on_reload` with new problems.

    `ready` is set once the watch is in place, so that nothing written after it is missed.
    `keep` is how many versions of each module the history keeps.
    """
    folder = catalog.folder
    reloader = _Reloader(catalog, on_reload, keep)

    async def watching() -> None:
        if ready is not None:
            ready.set()

    async def back() -> None:
        await reloader.reload(catalog.every_module(), large=True)

    started = watching if ready is not None else None
    while True:
        with contextlib.suppress(FileNotFoundError):  # gone again before the new watch was in place
            await _watch(reloader, started)
        logger.warning(
            "functions folder %s is gone; its %d functions keep serving until it is back",
            folder,
            len(catalog.published),
        )
        while not folder.is_dir():
            await anyio.sleep(RETURN_POLL_S)
        logger.warning("functions folder %s is back; watching and reloading it", folder)
        started = back  # once the new watch is in place, so that no write after it is missed


async def _watch(reloader: _Reloader, started: Callable[[], Awaitable[None]] | None) -> None:
    """Refresh after each batch of changes; return when the folder itself was deleted or moved.

    `started` runs once the watch is in place (watchfiles says so only by yielding, hence the
    empty yields every 100 ms when it is given).
    """
    folder = reloader.catalog.folder
    itself = str(folder)

    def relevant(change: Change, path: str) -> bool:
        return path == itself or is_catalog_file(Path(path))

    async for changes in awatch(
        folder,
        watch_filter=relevant,
        step=STEP_MS,
        debounce=DEBOUNCE_MS,
        recursive=False,
        yield_on_timeout=started is not None,
        rust_timeout=100 if started is not None else None,
    ):
        if started is not None:
            await started()
            started = None
        if any(path == itself for _, path in changes):
            return
        modules = changed_modules(changes)
        if modules:
            await reloader.reload(modules)
