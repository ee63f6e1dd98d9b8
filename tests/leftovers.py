"""What sandboxes leave on the machine, taken before and after the whole suite: it must leave nothing new.

Processes are this test run's own descendants (an orphaned call or zygote dies with its parent by design),
so a suite running beside this one is not blamed for its live ones. Cgroups and temp folders named after a
process count once it is dead (a live one is using them) or when it is this one, mounts and IPC objects once
they are new.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mcp_server.sandbox._cleanup import PREFIX, dead_owner

_CGROUP_ROOT = Path("/sys/fs/cgroup")
# The generation checks' input cache (mcp_server.verify's), kept on purpose. Spelled here rather than imported, so
# that the suite's start imports no generation code (two fresh-clone runs with that import each failed a reload test).
_HYPOTHESIS_HOME = Path(tempfile.gettempdir()) / f"{PREFIX}hypothesis"


@dataclass(frozen=True)
class Traces:
    """What is on the machine now that a sandbox may have left: one line per thing."""

    processes: frozenset[str]
    cgroups: frozenset[str]
    mounts: frozenset[str]
    ipc: frozenset[str]
    temp: frozenset[str]

    @classmethod
    def take(cls) -> Traces:
        """The traces now; processes are those below this one."""
        return cls(
            processes=frozenset(_descendants(os.getpid())),
            cgroups=frozenset(str(p) for p in _cgroups() if dead_owner(p.name)),
            mounts=frozenset(_mounts()),
            ipc=frozenset(_ipc()),
            temp=frozenset(str(p) for p in Path(tempfile.gettempdir()).glob(f"{PREFIX}*") if _left(p)),
        )

    def since(self, before: Traces) -> list[str]:
        """What is here now and was not `before`, each named by its kind; processes are listed whenever left."""
        lines = [f"process {p}" for p in sorted(self.processes)]
        for kind in ("cgroups", "mounts", "ipc", "temp"):
            new = getattr(self, kind) - getattr(before, kind)
            lines += [f"{kind} {item}" for item in sorted(new)]
        return lines


def _left(path: Path) -> bool:
    """Whether a funcsmith temp folder is one nobody uses: a dead process's (each names its maker), this run's own
    (its maker is alive: it is this process), or one named for no process; not the generation checks' input
    cache, which is kept on purpose. A bench running beside the suite makes folders named for itself."""
    if path == _HYPOTHESIS_HOME:
        return False
    maker = path.name.removeprefix(PREFIX).split("-")[0]
    return dead_owner(path.name) or not maker.isdigit() or int(maker) == os.getpid()


def _descendants(root: int) -> Iterator[str]:
    """Every live (not zombie) process below `root`: its pid, name and command line."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, _, rest = (entry / "stat").read_text().partition(" (")[2].rpartition(")")
            state, ppid = rest.split()[:2]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # it ended meanwhile
            continue
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(entry.name))
            names[int(entry.name)] = f"{entry.name} {name}: {command[:200]}"
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        yield names[pid]


def _cgroups() -> Iterator[Path]:
    """Every cgroup named like a zygote's, in every hierarchy (not looking inside them)."""
    for top, folders, _ in os.walk(_CGROUP_ROOT):
        for folder in list(folders):
            if folder.startswith(PREFIX):
                folders.remove(folder)
                yield Path(top) / folder
        if len(Path(top).relative_to(_CGROUP_ROOT).parts) >= 6:
            folders.clear()


def _mounts() -> Iterator[str]:
    """This mount namespace's mounts of a sandbox's: its tmpfs mounts are named for it."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if "funcsmith" in line:
            yield line


def _ipc() -> Iterator[str]:
    """SysV shared memory, semaphores and message queues (by kind and id), and POSIX message queues."""
    for kind in ("shm", "sem", "msg"):
        table = Path(f"/proc/sysvipc/{kind}")
        if table.exists():
            for row in table.read_text().splitlines()[1:]:
                yield f"{kind} {row.split()[1]}"
    queues = Path("/dev/mqueue")
    if queues.is_dir():
        yield from (f"mqueue {q.name}" for q in queues.iterdir())
