"""Who a call runs as: never root. A root server runs its calls as an unprivileged user (nobody, 65534).

Landlock decides which files a call may touch; running as another user puts everything root-only (files,
sockets, SysV objects, keyrings, processes) out of reach by plain file permissions as well, even where a
rule is missed or a grant is wide. The call user owns what calls write: the server hands it each data
folder (with what an older, root-run call left there) and each call process its temp folder.
A server that is not root runs calls as itself, which already is an unprivileged user.
"""

from __future__ import annotations

import functools
import os
import signal
import stat
from collections.abc import Iterable
from pathlib import Path

from mcp_server.sandbox import _linux

CALL_UID = CALL_GID = 65534
_NEEDED = {"CAP_CHOWN": 0, "CAP_SETGID": 6, "CAP_SETUID": 7}  # hand a call its folders, then become the call user


@functools.cache
def applies() -> bool:
    """Whether calls change user: this process is root and the call user exists in its user namespace."""
    return os.geteuid() == 0 and _mapped("/proc/self/uid_map", CALL_UID) and _mapped("/proc/self/gid_map", CALL_GID)


def become() -> None:
    """Switch this process to the call user for good (no groups); its capabilities go with root."""
    if applies():
        os.setgroups([])
        os.setresgid(CALL_GID, CALL_GID, CALL_GID)
        os.setresuid(CALL_UID, CALL_UID, CALL_UID)
        _linux.set_parent_death_signal(signal.SIGKILL)  # the kernel clears it when the credentials change


def missing_capabilities() -> list[str]:
    """The capabilities this root process lacks to switch a call to the call user."""
    have = _linux.effective_capabilities()
    return [name for name, bit in _NEEDED.items() if not have >> bit & 1]


def hand_over(folder: str | Path) -> None:
    """Give a call's folder, and everything in it, to the call user (no-op when calls keep this process's user).

    The folder itself goes last, and only a folder not yet the call user's is walked: once handed over, this
    costs one stat.
    """
    if not applies() or _owned(os.lstat(folder)):
        return
    pending = [str(folder)]
    while pending:  # a loop, not recursion: a call may have left a folder chain thousands deep
        path = pending.pop()
        try:
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                with os.scandir(path) as entries:
                    pending.extend(entry.path for entry in entries)
            if not _owned(info) and path != str(folder):
                os.lchown(path, CALL_UID, CALL_GID)
        except FileNotFoundError:
            continue
    os.lchown(folder, CALL_UID, CALL_GID)


def _owned(info: os.stat_result) -> bool:
    return (info.st_uid, info.st_gid) == (CALL_UID, CALL_GID)


def open_to_calls(root: Path) -> None:
    """Let the call user pass through `root` (the data root) to its own folders, without listing it."""
    if applies():
        mode = os.stat(root).st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(root, stat.S_IMODE(mode) | stat.S_IXOTH)


def closed(*, read: Iterable[str], write: Iterable[str]) -> list[str]:
    """Granted paths the call user may not use as granted, as problems to report (asked as the call user)."""
    if not applies():
        return []
    wanted = [(p, os.R_OK, "readable") for p in read] + [(p, os.W_OK, "writable") for p in write]
    return [
        f"granted path {path} is not {what} by the call user (uid {CALL_UID}): give it to that user"
        for path, mode, what in wanted
        if os.path.exists(path) and not os.access(path, mode | (os.X_OK if os.path.isdir(path) else 0))
    ]


def can_pass(info: os.stat_result) -> bool:
    """Whether the call user may look up names in a folder (`info`: its stat), by its mode bits."""
    if info.st_uid == CALL_UID:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == CALL_GID:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _mapped(map_file: str, wanted: int) -> bool:
    try:
        with open(map_file) as f:
            ranges = [tuple(int(n) for n in line.split()) for line in f]
    except OSError:
        return False
    return any(inside <= wanted < inside + count for inside, _, count in ranges)
