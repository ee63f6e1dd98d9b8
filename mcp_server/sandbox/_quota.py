"""Each module's data-folder quota: the disk space and the file count of its folder, all calls together.

No kernel quota covers one plain folder on an ordinary file system, so the sandbox
measures the folder (off the event loop) and has the kernel enforce what follows:

- before a call, the room left is known (from the last measurement; a folder seen for
  the first time is measured then); no file the call writes may pass that room
  (RLIMIT_FSIZE);
- a folder at or past its quota is only readable and prunable for the call (Landlock:
  read, remove and truncate; no new files, no writes), so what it holds stays intact;
- while a call runs longer than WATCH_S, its folder is measured every WATCH_S, and a
  call that passes the quota is stopped there (what it wrote by then stays; the next
  calls find the folder full);
- after the call, once its whole tree is dead, the folder is measured again.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from mcp_server.sandbox._model import Limits
from mcp_server.sandbox._wire import DataRoom

WATCH_S = 0.25
_SOONEST_S = 0.01  # the most often a growing folder is measured while its call runs
_INLINE_ENTRIES = 64  # a folder tree this small is measured on the event loop: cheaper than a thread
_MIB = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Usage:
    """What a data folder holds: its disk space (allocated blocks) and its files and folders."""

    bytes: int
    files: int

    def passes(self, limits: Limits) -> bool:
        return self.bytes > limits.data_quota_mb * _MIB or self.files > limits.data_files

    def describe(self) -> str:
        return f"{self.bytes / _MIB:.1f} MiB in {self.files} files"


def measure(folder: Path, *, stop_past: Limits | None = None, budget: float = math.inf) -> Usage | None:
    """The usage of a folder tree, walked by folder handles (any depth, no links followed, one handle per level).

    With `stop_past`, counting stops as soon as the quota is passed; past `budget` entries, it gives
    up (None). A tree too deep to walk with the open files this process may have counts as past any quota.
    """
    counted = [0, 0]
    try:
        first = _scan_into(counted, folder, budget)
        if first is None:
            return None
        levels = [(os.open(folder, _DIR), first)]
    except OSError:
        return Usage(0, 0)
    try:
        while levels:
            fd, pending = levels[-1]
            if not pending:
                os.close(levels.pop()[0])
                continue
            name = pending.pop()
            try:
                child = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.EMFILE:
                    return Usage(1 << 62, 1 << 62)
                continue
            found = _scan_into(counted, child, budget)
            levels.append((child, found or []))
            if found is None:
                return None
            if stop_past is not None and Usage(*counted).passes(stop_past):
                break
    finally:
        for fd, _ in levels:
            os.close(fd)
    return Usage(*counted)


def _scan_into(counted: list[int], where: int | Path, budget: float) -> list[str] | None:
    """Add one folder's entries to `counted` (bytes, files); the names of its subfolders (None: past `budget`)."""
    folders = []
    try:
        with os.scandir(where) as entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                counted[0] += info.st_blocks * 512
                counted[1] += 1
                if counted[1] > budget:
                    return None
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
    except OSError:
        pass
    return folders


class DataQuotas:
    """The last known usage of every data folder the sandbox has run calls on."""

    def __init__(self) -> None:
        self.usage: dict[Path, Usage] = {}

    async def room(self, home: Path, limits: Limits) -> DataRoom:
        """What a call may still add: the bytes of one file, and whether the folder is full."""
        usage = self.usage.get(home)
        if usage is None:
            usage = self.usage[home] = await self._measure(home, limits)
        room = limits.data_quota_mb * _MIB - usage.bytes
        return DataRoom(room_bytes=max(room, 0), full=room <= 0 or usage.files >= limits.data_files)

    def remeasure(self, home: Path, limits: Limits) -> Awaitable[None] | None:
        """Measure a folder after a call: right here when it is small (the usual case), else off the loop."""
        usage = measure(home, stop_past=limits, budget=_INLINE_ENTRIES)
        if usage is not None:
            self.usage[home] = usage
            return None
        return self._remeasure(home, limits)

    async def _remeasure(self, home: Path, limits: Limits) -> None:
        self.usage[home] = await self._measure(home, limits)

    async def _measure(self, home: Path, limits: Limits) -> Usage:
        usage = await asyncio.to_thread(measure, home, stop_past=limits)
        assert usage is not None
        return usage

    def watch(self, home: Path, limits: Limits, stop: Callable[[], None]) -> Watch:
        return Watch(self, home, limits, stop)


class Watch:
    """Measures a call's data folder while the call runs past WATCH_S; stops the call once it passes its quota."""

    def __init__(self, quotas: DataQuotas, home: Path, limits: Limits, stop: Callable[[], None]) -> None:
        self.quotas, self.home, self.limits, self.stop = quotas, home, limits, stop
        self.passed: Usage | None = None
        self.stopped = False
        self.loop = asyncio.get_running_loop()
        self.began = self.loop.time()
        self.task: asyncio.Task[None] | None = None
        self.timer = self.loop.call_later(WATCH_S, self._start)

    def _start(self) -> None:
        self.task = self.loop.create_task(self._run())

    async def _run(self) -> None:
        last, then = self.quotas.usage.get(self.home), self.began
        while True:
            usage = await self.quotas._measure(self.home, self.limits)
            self.quotas.usage[self.home] = usage
            if usage.passes(self.limits):
                self.passed, self.stopped = usage, True
                self.stop()
                return
            now = self.loop.time()
            await asyncio.sleep(_next_look(last, usage, now - then, self.limits))
            last, then = usage, now

    async def settle(self) -> None:
        """After the call: one last look at a folder watched while it ran, so a call passing between looks is told."""
        if self.task is None or self.passed is not None:
            return
        usage = await self.quotas._measure(self.home, self.limits)
        self.quotas.usage[self.home] = usage
        if usage.passes(self.limits):
            self.passed = usage

    def close(self) -> None:
        self.timer.cancel()
        if self.task is not None:
            self.task.cancel()

    def message(self) -> str:
        assert self.passed is not None
        return (
            f"the call passed its data folder's quota of {self.limits.data_quota_mb} MiB in "
            f"{self.limits.data_files} files (it holds {self.passed.describe()})"
            + (" and was stopped" if self.stopped else "")
        )


def _next_look(before: Usage | None, now: Usage, seconds: float, limits: Limits) -> float:
    """When to measure a growing folder again: halfway to when, at its last rate, it would pass the quota.

    A call writing fast is looked at more often as it nears its quota (down to every 10 ms), so it is
    stopped close to it; a folder that does not grow is looked at every WATCH_S.
    """
    if before is None or seconds <= 0:
        return WATCH_S
    ahead = [WATCH_S]
    for held, was, quota in (
        (now.bytes, before.bytes, limits.data_quota_mb * _MIB),
        (now.files, before.files, limits.data_files),
    ):
        if held > was:
            ahead.append((quota - held) / ((held - was) / seconds) / 2)
    return max(_SOONEST_S, min(ahead))
