"""Per-call process groups in the cgroup "pids" controller.

RLIMIT_NPROC counts per user and is ignored for root, so it cannot cap one call's
processes and threads. A pids cgroup per call can: `pids.max` caps the call's
tasks, and `cgroup.procs` lists every one of them for the final sweep, whatever
they did to escape their process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def pids_controller() -> Path:
    """The directory of this process's cgroup in the pids controller (v1 or v2); OSError naming why not."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, options = right.split()[:3]
            if fstype == "cgroup" and "pids" in options.split(","):
                mounts["v1"] = left.split()[4]
            elif fstype == "cgroup2":
                mounts.setdefault("v2", left.split()[4])
    with open("/proc/self/cgroup") as f:
        entries = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in entries:
        if "v1" in mounts and "pids" in controllers.split(","):
            return Path(mounts["v1"] + path)
    for _, controllers, path in entries:
        if "v2" in mounts and controllers == "":
            where = Path(mounts["v2"] + path)
            if "pids" in (where / "cgroup.controllers").read_text().split():
                return where
    raise OSError("no cgroup pids controller is mounted for this process")


class CallGroups:
    """A folder of per-call pids cgroups under this process's cgroup, owned by one zygote."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.free: list[Path] = []
        self.made = 0

    @classmethod
    def create(cls, name: str) -> CallGroups:
        """Make (and check we may use) a child cgroup `name`; OSError naming the cause if we may not."""
        parent = pids_controller()
        base = parent / name
        base.mkdir(exist_ok=True)
        if not (base / "pids.max").exists():
            with contextlib.suppress(OSError):
                (parent / "cgroup.subtree_control").write_text("+pids")
            (base / "cgroup.subtree_control").write_text("+pids")
        return cls(base)

    def acquire(self) -> Path:
        """An empty call cgroup: a reused one when free (cheaper than mkdir/rmdir per call), else a new one."""
        if self.free:
            return self.free.pop()
        self.made += 1
        group = self.base / f"slot-{self.made}"
        group.mkdir(exist_ok=True)
        return group

    def release(self, group: Path) -> None:
        """Kill whatever is left in a call's cgroup; reuse the cgroup only once it is empty."""
        if sweep(group):
            self.free.append(group)

    def remove(self) -> None:
        """Kill what is left in every call cgroup and remove them all, then the base."""
        for group in self.base.iterdir() if self.base.exists() else ():
            if group.is_dir():
                sweep(group)
                for _ in range(200):  # busy until the killed tasks are reaped
                    try:
                        group.rmdir()
                        break
                    except OSError:
                        os.sched_yield()
        with contextlib.suppress(OSError):
            self.base.rmdir()


def limit(group: Path, max_tasks: int) -> None:
    """Cap a call cgroup at `max_tasks` processes and threads."""
    _write(group / "pids.max", b"%d" % max_tasks)


def sweep(group: Path) -> bool:
    """SIGKILL every task in a call cgroup until it is empty; True when it is (False: gone or still busy)."""
    for _ in range(100):
        try:
            pids = [int(p) for p in _read(group / "cgroup.procs").split()]
        except FileNotFoundError:
            return False
        if not pids:
            return True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.sched_yield()
    return False


def enter(group: Path) -> None:
    """Move the calling process into a call's cgroup (before it runs anything of the function's)."""
    _write(group / "cgroup.procs", b"%d" % os.getpid())


# Plain fd reads and writes: a call's cgroup files are touched on every call, by processes that have
# just been forked, where each Python object first used costs a copied page (file objects use many).
def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = b""
        while chunk := os.read(fd, 1 << 16):
            data += chunk
        return data
    finally:
        os.close(fd)
