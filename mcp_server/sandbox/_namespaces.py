"""Namespaces for calls: an IPC namespace per call, and (root server) a mount view the call user can walk.

IPC: SysV shared memory, semaphores and message queues, and POSIX message queues, are per IPC namespace;
in its own, a call sees none of the host's, and whatever it creates dies with it.

Mount view (root server only): the call user must reach the Python installation, its data folder and its
temp folder, but a folder on the way may be closed to other users (a Python under /root, a 0700 temp
folder). Such a folder is covered with a small tmpfs holding only the path down to what calls need, bound
in from the real tree: the rest of the closed folder is simply not there. The zygote builds this view once,
in a mount namespace of its own that its call processes share; a call that needs more (a granted path, a
data folder elsewhere) goes back to the server's mount namespace and makes its own view from there, in a
namespace of its own. Nothing propagates back to the host.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path

from mcp_server.sandbox import _calluser, _linux

_COVER = "mode=0755,size=1m,nr_inodes=4096"  # the options of a cover: it holds only folders leading on

_shared: tuple[list[str], int] | None = None  # the zygote's view: the trees it exposes, and the server's namespace
no_view: str | None = None  # why the zygote could make no mount view (calls then need the real tree open to them)


@functools.cache
def available() -> bool | str:
    """Whether a call may get its own IPC namespace here, tried in a throwaway child; or why not.

    The zygote asks before forking anything, so its call processes inherit the answer.
    """
    pid = os.fork()
    if pid == 0:
        try:
            _unshare_ipc()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return True
    return "unshare(CLONE_NEWIPC) was refused" + (f" ({_linux.SYS_ADMIN_HINT})" if os.geteuid() == 0 else "")


def share(trees: Iterable[str], scratch: Path) -> bool | str:
    """In the zygote: its own mount namespace, where the call user can reach `trees` and `scratch`; or why calls
    cannot run here.

    Without a mount namespace (a root server without CAP_SYS_ADMIN) the call user works on the real tree, as long
    as no folder on the way is closed to it. What else is in a covered folder is out of the zygote's sight too:
    it looks for dead sandboxes' leftovers first.
    """
    global _shared, no_view
    if not _calluser.applies():
        return True
    if missing := _calluser.missing_capabilities():
        fix = " ".join(f"--cap-add {name.removeprefix('CAP_')}" for name in missing)
        needs = ", ".join(missing)
        return f"calls of a root server run as uid {_calluser.CALL_UID}, which needs {needs}: docker run {fix}"
    exposed = [*trees, str(scratch)]
    try:
        os.chmod(scratch, 0o711)  # the call user passes through to its own temp folder, without listing the others
        host = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _linux.private_mounts()
        except PermissionError as exc:
            os.close(host)
            no_view = f"no mount namespace ({exc}; {_linux.SYS_ADMIN_HINT})"
            return _reachable(exposed)
        expose(exposed)
    except OSError as exc:
        return f"the calls' mount view could not be made: {exc}"
    _shared = (_outermost(exposed), host)
    return True


def enter(trees: Iterable[str], tmp: str) -> None:
    """Give this call process its own IPC namespace, and for a call user a view that reaches `trees` and `tmp`.

    Unreachable when there can be no view and a folder on the way is closed to the call user.
    """
    if available() is True:
        _unshare_ipc()
    if not _calluser.applies():
        return
    wanted = [*trees, tmp]
    if no_view is not None:
        if (problem := _reachable(wanted)) is not True:
            raise Unreachable(problem)
    elif _shared is None or not all(_inside(tree, _shared[0]) for tree in wanted):
        if _shared is not None:  # back to the server's mount namespace, to make a view of its own from there
            _linux.setns(_shared[1], _linux.CLONE_NEWNS)
        _linux.private_mounts()
        expose(wanted)


class Unreachable(PermissionError):
    """The call user cannot reach what a call needs, and no mount view can bring it in: the call cannot start."""


def _reachable(trees: Iterable[str]) -> bool | str:
    """True if the call user may pass every folder on the way to each of `trees`; or the first one it may not."""
    for tree in trees:
        if os.path.exists(tree) and (closed := _first_closed(os.path.realpath(tree))) is not None:
            return (
                f"{closed} is closed to the call user (uid {_calluser.CALL_UID}) on the way to {tree}, and there is "
                f"{no_view}; or let other users pass the folder (chmod o+x {closed})"
            )
    return True


def leave() -> None:
    """The zygote, at its end: back to the server's mount namespace, where its scratch folder is no mount point."""
    if _shared is not None:
        _linux.setns(_shared[1], _linux.CLONE_NEWNS)


def _unshare_ipc() -> None:
    try:
        _linux.unshare(_linux.CLONE_NEWIPC)
    except PermissionError:  # no capability here: an unprivileged server gets it with a user namespace of its own
        if os.geteuid() == 0:  # a root server's call user would not be mapped in such a namespace
            raise
        uid, gid = os.geteuid(), os.getegid()
        _linux.unshare(_linux.CLONE_NEWUSER | _linux.CLONE_NEWIPC)
        _linux.map_user(uid, gid)


def expose(trees: Iterable[str]) -> None:
    """Cover each folder the call user cannot pass on the way to a tree with a tmpfs leading only to the trees.

    A tree beneath another one that a cover brings in waits for the next round, which covers the closed
    folders left inside that one (stubs are only ever made inside a fresh cover, never in a real tree).
    """
    pending = sorted({os.path.realpath(t) for t in trees if os.path.exists(t)})
    handles = {tree: os.open(tree, os.O_PATH | os.O_CLOEXEC) for tree in pending}  # before any of them hides
    try:
        while pending:
            closed = {tree: _first_closed(tree) for tree in pending}
            covers: dict[str, list[str]] = {}
            later = []
            for tree, cover in closed.items():
                if cover is None:
                    continue
                if any(other != tree and closed[other] == cover and _inside(tree, [other]) for other in pending):
                    later.append(tree)
                else:
                    covers.setdefault(cover, []).append(tree)
            for cover, inner in covers.items():
                _linux.mount("funcsmith", cover, "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC, _COVER)
                for tree in inner:
                    source = f"/proc/self/fd/{handles[tree]}"
                    _stub(cover, tree, is_dir=os.path.isdir(source))
                    _linux.mount(source, tree, None, _linux.MS_BIND | _linux.MS_REC)
            pending = later
    finally:
        for handle in handles.values():
            os.close(handle)


def _inside(path: str, trees: Iterable[str]) -> bool:
    return any(path == tree or path.startswith(tree.rstrip("/") + "/") for tree in trees)


def _outermost(trees: Iterable[str]) -> list[str]:
    """The existing trees (real paths), without those inside another one."""
    kept: list[str] = []
    for tree in sorted({os.path.realpath(t) for t in trees if os.path.exists(t)}):
        if not _inside(tree, kept):
            kept.append(tree)
    return kept


def _first_closed(tree: str) -> str | None:
    """The outermost folder above `tree` that the call user may not pass, if any."""
    parts = Path(tree).parts
    for depth in range(1, len(parts)):
        folder = os.path.join(*parts[:depth])
        if not _calluser.can_pass(os.stat(folder)):
            return folder
    return None


def _stub(cover: str, tree: str, *, is_dir: bool) -> None:
    """The folders from `cover` down to `tree`, and `tree` itself (a folder or an empty file), in the cover."""
    path = cover
    for part in Path(tree).relative_to(cover).parts[:-1]:
        path = os.path.join(path, part)
        if not os.path.isdir(path):
            os.mkdir(path, 0o755)
    if is_dir:
        os.mkdir(tree, 0o755)
    else:
        os.close(os.open(tree, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
