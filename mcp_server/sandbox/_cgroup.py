"""Per-call cgroups: the "pids" controller caps a call's tasks, the "memory" controller gives it one budget.

RLIMIT_NPROC counts per user and is ignored for root, so it cannot cap one call's
processes and threads. A pids cgroup per call can: `pids.max` caps the call's
tasks, and `cgroup.procs` lists every one of them for the final sweep, whatever
they did to escape their process group.

RLIMIT_AS is per process and never sees shared memory or memory files. A memory
cgroup per call counts all of it: every process of the call, the pages of its
tmpfs (its temp folder) and of its memfds. Going past the budget makes the kernel
kill a process of the call; the zygote hears of it on the slot's `oom` fd (an
eventfd on cgroup v1, `memory.events` on v2) and stops the whole call.

Cgroups are made once and reused call after call (a slot), with their limits
written only when they change: making and removing one per call would cost more
than the call.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

_MIB = 1 << 20
_SWEEP_S = 1.0  # how long a v2 sweep waits for the killed tasks of a slot to be gone
LEAF = "funcsmith.server"  # v2: where the processes of the server's own cgroup move, to let it have child groups


def controller(name: str) -> Path:
    """The directory of this process's cgroup in controller `name` (v1 or v2); OSError naming why not."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, options = right.split()[:3]
            if fstype == "cgroup" and name in options.split(","):
                mounts["v1"] = left.split()[4]
            elif fstype == "cgroup2":
                mounts.setdefault("v2", left.split()[4])
    with open("/proc/self/cgroup") as f:
        entries = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in entries:
        if "v1" in mounts and name in controllers.split(","):
            return Path(mounts["v1"] + path)
    for _, controllers, path in entries:
        if "v2" in mounts and controllers == "":
            where = Path(mounts["v2"] + path)
            if name in (where / "cgroup.controllers").read_text().split():
                return where.parent if where.name == LEAF else where
            raise OSError(f"the {name} controller is not delegated to {where} (not in its cgroup.controllers)")
    raise OSError(f"no cgroup {name} controller is mounted for this process")


@dataclass(eq=False)
class Slot:
    """One call's cgroups: its pids group, and its memory group where there is one (the same folder on v2)."""

    pids: Path
    memory: Path | None = None
    oom: int = -1  # readable (v1) or POLLPRI (v2) after the kernel killed a process of the slot for memory
    v2: bool = False
    written: dict[str, int] = field(default_factory=dict)  # the limits last written, to skip rewriting them
    oom_kills: int = 0  # the counts seen at the end of the slot's last call
    ooms: int = 0
    pending: bool = False  # an OOM event came during the current call
    procs: tuple[str, ...] = field(init=False)  # the cgroup.procs file of each of its groups

    def __post_init__(self) -> None:
        folders = (self.pids,) if self.memory in (None, self.pids) else (self.pids, self.memory)
        self.procs = tuple(str(folder / "cgroup.procs") for folder in folders)

    @property
    def oom_events(self) -> int:
        """The poll events that mean the `oom` fd has news."""
        return select.POLLPRI if self.v2 else select.POLLIN

    def limit(self, max_tasks: int, memory_mb: int) -> None:
        """Cap the slot at `max_tasks` processes and threads and `memory_mb` of memory, all its processes together."""
        if self.written.get("pids") != max_tasks:
            _write(self.pids / "pids.max", b"%d" % max_tasks)
            self.written["pids"] = max_tasks
        if self.memory is not None and self.written.get("memory") != memory_mb:
            size = b"%d" % (memory_mb * _MIB)
            if self.v2:
                _write(self.memory / "memory.max", size)
            else:  # with swap accounted, memory+swap must stay at or above memory: raising it, it goes first
                names = ["memory.limit_in_bytes"]
                if (self.memory / "memory.memsw.limit_in_bytes").exists():
                    names.append("memory.memsw.limit_in_bytes")
                try:
                    for name in names:
                        _write(self.memory / name, size)
                except OSError:
                    if len(names) == 1:
                        raise
                    for name in reversed(names):
                        _write(self.memory / name, size)
            self.written["memory"] = memory_mb

    def watch_oom(self) -> None:
        """Open the slot's `oom` fd (once: it serves the slot's every call)."""
        if self.memory is not None and self.oom < 0:
            self.oom = _oom_fd(self.memory, self.v2)

    def oom_event(self) -> bool:
        """The `oom` fd has news: whether it is an OOM of this slot (its kill follows), taking the news in."""
        if self.v2:  # memory.events changes for other events too; reading it through the fd re-arms POLLPRI
            ooms = _count(os.pread(self.oom, 4096, 0), "oom")
            news, self.ooms = ooms > self.ooms, ooms
        else:  # the v1 eventfd fires for an OOM only
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self.oom)
            news = True
        self.pending = self.pending or news
        return news

    def settle(self, *, killed: bool) -> bool:
        """At a call's end: whether it met the OOM killer; its counts are taken in for the slot's next call."""
        if self.memory is None:
            return False
        if self.oom >= 0 and _readable(self.oom, self.oom_events):
            self.oom_event()
        met = self.pending
        if killed or met:  # an OOM of the whole machine's raises no event on v1: ask the count
            name = "memory.events" if self.v2 else "memory.oom_control"
            kills = _count(_read(self.memory / name), "oom_kill")
            met, self.oom_kills = met or kills > self.oom_kills, kills
        self.pending = False
        return met


def gaps(slot: Slot) -> list[str]:
    """What this kernel's cgroups lack for a slot to hold its call whole, each saying what it costs (for doctor)."""
    found = []
    if slot.memory is not None and _swap_on():
        capped = "memory.swap.max" if slot.v2 else "memory.memsw.limit_in_bytes"
        if not (slot.memory / capped).exists():
            found.append(f"swap is not accounted (no {capped}): a call can swap past its budget")
    if slot.v2 and not (slot.pids / "cgroup.kill").exists():
        found.append("no cgroup.kill (Linux 5.14+): what a call leaves is killed one signal at a time")
    return found


def _swap_on() -> bool:
    with open("/proc/swaps") as f:
        return len(f.readlines()) > 1  # a header line, then one line per swap area


def _count(data: bytes, key: str) -> int:
    """One counter of a cgroup's flat-keyed file (memory.events, memory.oom_control)."""
    for line in data.decode().splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def _readable(fd: int, events: int) -> bool:
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(0))


class CallGroups:
    """The folders of per-call cgroups under this process's cgroups, owned by one zygote."""

    def __init__(self, base: Path, memory_base: Path | None = None, *, v2: bool = False) -> None:
        self.base = base
        self.memory_base = memory_base
        self.memory_error = ""  # why there is no memory_base, when there is none
        self.v2 = v2
        self.free: list[Slot] = []
        self.made = 0

    @classmethod
    def create(cls, name: str) -> CallGroups:
        """Make (and check we may use) child cgroups `name`; OSError naming the cause if the pids one fails.

        A memory controller that cannot be used leaves `memory_base` None and says why in `memory_error`.
        """
        parent = controller("pids")
        base = parent / name
        v2 = not (parent / "tasks").exists()  # every v1 cgroup has a tasks file, no v2 one has
        if v2:
            _enable(parent, "pids")
        base.mkdir(exist_ok=True)
        if v2:
            _enable(base, "pids")
        groups = cls(base, v2=v2)
        try:
            if v2:
                _enable(parent, "memory")
                _enable(base, "memory")
            groups.memory_base = base if v2 else controller("memory") / name
            groups.memory_base.mkdir(exist_ok=True)
        except OSError as exc:
            groups.memory_error = str(exc)
        return groups

    def acquire(self) -> Slot:
        """An empty call slot: a reused one when free (cheaper than mkdir/rmdir per call), else a new one."""
        if self.free:
            return self.free.pop()
        self.made += 1
        name = f"slot-{self.made}"
        slot = Slot(self.base / name, None if self.memory_base is None else self.memory_base / name, v2=self.v2)
        slot.pids.mkdir(exist_ok=True)
        if slot.memory is not None:
            slot.memory.mkdir(exist_ok=True)
            if self.v2:  # v2's memory.max leaves swap out: without this a call could swap past its budget
                with contextlib.suppress(FileNotFoundError):  # a kernel without swap accounting
                    _write(slot.memory / "memory.swap.max", b"0")
            slot.watch_oom()
        return slot

    def release(self, slot: Slot) -> None:
        """Kill whatever is left in a call's slot; reuse it only once it is empty."""
        if _empty(slot.procs[0]):
            self.free.append(slot)
            return
        slot.written.pop("pids", None)  # a sweep lets no task fork: the next limit is written again
        if sweep(slot.pids):
            self.free.append(slot)
        elif slot.oom >= 0:
            os.close(slot.oom)
            slot.oom = -1

    def remove(self) -> None:
        """Kill what is left in every call cgroup and remove them all, then the bases."""
        for slot in self.free:
            if slot.oom >= 0:
                os.close(slot.oom)
        self.free.clear()
        for base in dict.fromkeys(b for b in (self.base, self.memory_base) if b is not None):
            for group in base.iterdir() if base.exists() else ():
                if group.is_dir():
                    sweep(group)
                    for _ in range(200):  # busy until the killed tasks are reaped
                        try:
                            group.rmdir()
                            break
                        except OSError:
                            os.sched_yield()
            with contextlib.suppress(OSError):
                base.rmdir()

    @classmethod
    def stale(cls, name: str) -> list[CallGroups]:
        """The slots folders named `name`-prefixed under this process's cgroups, as groups to remove."""
        found = []
        with contextlib.suppress(OSError):
            found += [cls(base) for base in controller("pids").glob(f"{name}*")]
        with contextlib.suppress(OSError):
            memory = controller("memory")
            found += [cls(base) for base in memory.glob(f"{name}*") if not (base / "pids.max").exists()]
        return found


def _oom_fd(memory: Path, v2: bool) -> int:
    """An fd that tells of OOM kills in a memory group: its memory.events (v2, POLLPRI), or a v1 eventfd."""
    if v2:
        with contextlib.suppress(OSError):
            _write(memory / "memory.oom.group", b"1")  # one OOM kill takes the whole call
        return os.open(memory / "memory.events", os.O_RDONLY | os.O_CLOEXEC)
    event = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    control = os.open(memory / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _write(memory / "cgroup.event_control", b"%d %d" % (event, control))
    except OSError:
        os.close(event)
        raise
    finally:
        os.close(control)
    return event


def _enable(folder: Path, name: str) -> None:
    """Let the child groups of v2 cgroup `folder` use controller `name`; OSError naming why not.

    v2 lets no cgroup but the root hold processes and hand controllers to children ("no internal
    processes"), so where `folder` holds some (the server's own cgroup, say a systemd service's with
    Delegate=yes) they all move to its child LEAF first: still below `folder`, so every limit set on
    it or above still counts them. First, not on EBUSY: pids, a threaded controller, is let in beside
    processes, and makes the cgroup a thread root where memory is then refused (EOPNOTSUPP).
    """
    if name in _read(folder / "cgroup.subtree_control").decode().split():
        return
    if name not in _read(folder / "cgroup.controllers").decode().split():
        raise OSError(f"the {name} controller is not delegated to {folder} (not in its cgroup.controllers)")
    if (folder / "cgroup.type").exists():  # any cgroup but the root (which may hold processes)
        _move_to_leaf(folder)
    try:
        _write(folder / "cgroup.subtree_control", b"+" + name.encode())
    except OSError as exc:
        raise OSError(f"cannot enable the {name} controller below {folder}: {exc.strerror}") from exc


def _move_to_leaf(folder: Path) -> None:
    """Move every process of v2 cgroup `folder` to its child LEAF, including those forked meanwhile."""
    leaf = folder / LEAF
    for _ in range(100):
        pids = _read(folder / "cgroup.procs").split()
        if not pids:
            return
        leaf.mkdir(exist_ok=True)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                _write(leaf / "cgroup.procs", pid)
    raise OSError(errno.EBUSY, f"processes keep appearing in {folder}, which must be empty to have child groups")


def _empty(procs: str) -> bool:
    """Whether a cgroup.procs file lists no task, the usual case at a call's end (False when it is gone)."""
    try:
        return not _read(procs).strip()
    except FileNotFoundError:
        return False


def sweep(group: Path) -> bool:
    """SIGKILL every task in a call cgroup until it is empty; True when it is (False: gone or still busy).

    Without cgroup.kill, a task may fork a successor between the read of the list and the kill, and a
    sweeper that loses its core there falls behind for good; so a pids group first lets no task fork
    (pids.max 0, which the next call's `Slot.limit` raises again).
    """
    stopped = False
    for _ in range(100):
        try:
            pids = [int(p) for p in _read(group / "cgroup.procs").split()]
        except FileNotFoundError:
            return False
        if not pids:
            return True
        if (group / "cgroup.kill").exists():  # v2 (5.14+): one write kills them all, and what they fork meanwhile
            return _kill_all(group)
        if not stopped and (group / "pids.max").exists():
            _write(group / "pids.max", b"0")
            stopped = True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.sched_yield()
    return False


def _kill_all(group: Path) -> bool:
    """Kill every task of v2 cgroup `group` and wait (a while) for cgroup.events to say none is left."""
    events = os.open(group / "cgroup.events", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _write(group / "cgroup.kill", b"1")
        deadline = time.monotonic() + _SWEEP_S
        while _count(os.pread(events, 4096, 0), "populated"):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller = select.poll()
            poller.register(events, select.POLLPRI)
            poller.poll(left * 1000)
        return True
    finally:
        os.close(events)


def enter(slot: Slot) -> None:
    """Move the calling process into a call's cgroups (before it runs anything of the function's).

    By paths made in the zygote: in a process just forked, pathlib's machinery costs copied pages.
    """
    me = b"%d" % os.getpid()
    for procs in slot.procs:
        _write(procs, me)


# Plain fd reads and writes: a call's cgroup files are touched on every call, by processes that have
# just been forked, where each Python object first used costs a copied page (file objects use many).
def _write(path: str | Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _read(path: str | Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = b""
        while chunk := os.read(fd, 1 << 16):
            data += chunk
        return data
    finally:
        os.close(fd)
