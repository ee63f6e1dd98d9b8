"""Keep the served tools in step with the functions folder while the server runs.

The folder is the source of truth. A change re-checks only the modules whose
files changed; the catalogue swaps in a new snapshot at once (a call that
already started keeps the entry it began with), and every client is told.
Broken edits never take a working tool away: the catalogue keeps serving the
last good version and reports the problem.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

import anyio
from watchfiles import Change, awatch

from mcp_server import history
from mcp_server.catalog import Catalog, Diagnostic, FunctionEntry, is_catalog_file, module_name

logger = logging.getLogger(__name__)

# watchfiles yields once the folder has been quiet for STEP_MS (and at the latest after
# DEBOUNCE_MS of constant change): an editor's save dance or a .py written just before
# its .json lands in one batch, while a lone write is seen within a few tens of ms.
STEP_MS = 30
DEBOUNCE_MS = 400

OnReload = Callable[[list[Diagnostic]], Awaitable[None]]


def _relevant(change: Change, path: str) -> bool:
    return is_catalog_file(Path(path))


def changed_modules(changes: set[tuple[Change, str]]) -> set[str]:
    """The module stems a batch of file events touches."""
    return {module for _, path in changes if (module := module_name(Path(path))) is not None}


def keep_replaced(folder: Path, before: Mapping[str, FunctionEntry], names: Iterable[str]) -> None:
    """Keep the served version of every module whose functions were replaced or removed."""
    modules = {before[name].module for name in names if name in before}
    for module in modules:
        history.save_served(folder, module, [e for e in before.values() if e.module == module])


async def watch_catalog(
    catalog: Catalog,
    on_reload: OnReload,
    *,
    ready: anyio.Event | None = None,
) -> None:
    """Watch `catalog.folder` until cancelled; after each batch, refresh and call `on_reload` with new problems.

    `ready` is set once the watch is in place, so that nothing written after it is missed
    (watchfiles says so only by yielding, hence the empty yields every 100 ms when asked).
    """
    known = {str(d) for d in catalog.diagnostics}
    watcher = awatch(
        catalog.folder,
        watch_filter=_relevant,
        step=STEP_MS,
        debounce=DEBOUNCE_MS,
        recursive=False,
        yield_on_timeout=ready is not None,
        rust_timeout=100 if ready is not None else None,
    )
    async for changes in watcher:
        if ready is not None and not ready.is_set():
            ready.set()
        modules = changed_modules(changes)
        if not modules:
            continue
        before = catalog.published
        change = catalog.refresh(modules)
        keep_replaced(catalog.folder, before, change.changed | change.removed)
        diagnostics = catalog.diagnostics
        fresh = [d for d in diagnostics if str(d) not in known]
        known = {str(d) for d in diagnostics}
        for diagnostic in fresh:
            logger.warning("%s", diagnostic)
        if change:
            logger.info(
                "catalogue changed: %s",
                ", ".join(
                    f"{label} {', '.join(sorted(names))}"
                    for label, names in (
                        ("added", change.added),
                        ("changed", change.changed),
                        ("removed", change.removed),
                    )
                    if names
                ),
            )
        await on_reload(fresh)
