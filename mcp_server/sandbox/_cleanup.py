"""Removing what calls leave behind, however deep or large, and the scratch folders of dead sandboxes.

A call's temp folder can hold anything the call could make: a folder chain
thousands deep (its full path far beyond PATH_MAX, and beyond the recursion of
shutil.rmtree), or hundreds of thousands of files. `remove_tree` walks it with
one folder open at a time, never recursing and never following a link, and
reports what it could not remove instead of raising. The zygote runs it in a
forked process of its own (`start_cleaner`), so its poll loop never waits on it.

Each live sandbox holds an exclusive flock on its scratch folder (named for its
pid). A scratch folder is stale only when its lock can be taken *and* no process
has its pid (older sandboxes took no lock); it is claimed by renaming it into the
claimer's own scratch folder, so two sandboxes never remove the same one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mcp_server.sandbox import _linux

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PREFIX = "funcsmith-"


def own_name(pid: int) -> str:
    """The name a zygote gives what it leaves on the machine (its scratch folder, its cgroups): it names its pid."""
    return f"{PREFIX}{pid}"


def temp_prefix(kind: str) -> str:
    """The prefix of a temp folder this process makes: it names the pid, so that what a process killed
    mid-way leaves is removed by the next zygote (`claim_stale`), and what a live one uses is left alone."""
    return f"{own_name(os.getpid())}-{kind}-"


def dead_owner(name: str) -> bool:
    """Whether `name` was given by `own_name` to a process that is no longer alive (so what it names is stale)."""
    pid = name.removeprefix(PREFIX).split("-")[0]
    return name.startswith(PREFIX) and pid.isdigit() and not Path(f"/proc/{pid}").exists()


def remove_tree(path: str | os.PathLike[str]) -> list[str]:
    """Remove a folder tree of any depth and size; the problems met (each naming a path), never an exception."""
    problems: list[str] = []
    try:
        fd = os.open(path, _DIR)
    except FileNotFoundError:
        return problems
    except OSError as exc:
        return [f"{path}: {exc.strerror}"]
    above: list[tuple[str, set[str], tuple[int, int]]] = []  # for each open level: its name, what to skip above it
    skip: set[str] = set()
    while True:
        child = _empty_files(fd, skip, problems, where=path)
        if child is not None:
            try:
                sub = os.open(child, _DIR, dir_fd=fd)
            except OSError as exc:
                problems.append(f"{path}/…/{child}: {exc.strerror}")
                skip.add(child)
                continue
            with contextlib.suppress(OSError):
                os.fchmod(sub, 0o700)  # a folder the call made unreadable or read-only is still ours to empty
            here = os.fstat(fd)
            above.append((child, skip, (here.st_dev, here.st_ino)))
            os.close(fd)
            fd, skip = sub, set()
            continue
        if not above:
            os.close(fd)
            break
        name, skip, parent_id = above.pop()
        parent = os.open("..", _DIR, dir_fd=fd)
        os.close(fd)
        fd = parent
        found = os.fstat(fd)
        if (found.st_dev, found.st_ino) != parent_id:
            os.close(fd)
            problems.append(f"{path}: the tree changed while it was being removed")
            return problems
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError as exc:
            problems.append(f"{path}/…/{name}: {exc.strerror}")
            skip.add(name)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        problems.append(f"{path}: {exc.strerror}")
    return problems


def _empty_files(fd: int, skip: set[str], problems: list[str], *, where: str | os.PathLike[str]) -> str | None:
    """Unlink every non-folder in the folder `fd`; the name of a subfolder to descend into next, if any."""
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.name in skip:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    return entry.name
                os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                problems.append(f"{where}/…/{entry.name}: {exc.strerror}")
                skip.add(entry.name)
    return None


def remove_all(paths: Iterable[Path]) -> None:
    """Remove each tree, writing every problem to stderr (the server's log)."""
    for path in paths:
        for problem in remove_tree(path):
            sys.stderr.write(f"funcsmith sandbox: could not remove {problem}\n")


def start_cleaner(paths: list[Path]) -> int:
    """Fork a process that removes `paths` and exits; its pid, for the caller to reap.

    It dies with its parent: what it leaves is in the parent's scratch folder, which the next sandbox claims.
    """
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            _linux.set_parent_death_signal(signal.SIGKILL)
            if os.getppid() != parent:  # it died before that took hold
                os._exit(0)
            os.closerange(3, 1 << 20)  # hold no call's socket or pipe open: their ends must see the call end
            remove_all(paths)
        finally:
            os._exit(0)
    return pid


def make_scratch() -> tuple[Path, int]:
    """A new scratch folder for this process and the fd holding its lock (held for as long as the fd is open)."""
    scratch = Path(tempfile.mkdtemp(prefix=f"{own_name(os.getpid())}-"))
    fd = os.open(scratch, _DIR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return scratch, fd


def claim_stale(scratch: Path) -> list[Path]:
    """Move every dead sandbox's scratch folder into `scratch`; where they now are, to be removed."""
    claimed = []
    for number, folder in enumerate(scratch.parent.glob(f"{PREFIX}*-*")):
        if folder == scratch or not dead_owner(folder.name) or folder.is_symlink():
            continue
        try:
            fd = os.open(folder, _DIR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_uid != os.geteuid():
                continue
            target = scratch / f"stale-{number}"
            os.rename(folder, target)
            claimed.append(target)
        except OSError:  # alive (locked), or claimed by another sandbox first
            continue
        finally:
            os.close(fd)
    return claimed
