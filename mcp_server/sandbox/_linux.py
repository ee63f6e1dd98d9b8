"""Thin wrappers over the Linux calls the sandbox needs that Python 3.11's `os` lacks."""

from __future__ import annotations

import ctypes
import functools
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
CLONE_NEWUSER = 0x10000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x1000, 0x4000, 0x40000
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_PR_CAPBSET_READ, _PR_CAPBSET_DROP = 23, 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAPABILITY_VERSION_3 = 0x20080522
# What a root server without CAP_SYS_ADMIN (Docker's default capability set) is told about a namespace layer.
SYS_ADMIN_HINT = "a root server needs CAP_SYS_ADMIN for it: docker run --cap-add SYS_ADMIN"


def os_error(what: str) -> OSError:
    """An OSError for the last failed libc call, naming the call."""
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")


def unshare(flags: int) -> None:
    if libc.unshare(ctypes.c_int(flags)) != 0:
        raise os_error("unshare")


def setns(fd: int, kind: int) -> None:
    if libc.setns(ctypes.c_int(fd), ctypes.c_int(kind)) != 0:
        raise os_error("setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); OSError naming the target when it fails."""
    args = [None if a is None else os.fsencode(a) for a in (source, target, fstype)]
    options = None if data is None else data.encode()
    if libc.mount(*args, ctypes.c_ulong(flags), options) != 0:
        raise os_error(f"mount on {target}")


def private_mounts() -> None:
    """A mount namespace of this process's own, from which no mount propagates back to the host."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def fork_into_new_pid_namespace() -> int:
    """Like os.fork(), but the child is the first process (PID 1) of a new PID namespace: 0 in the child.

    The kernel kills every process of a namespace when its first one exits, so killing
    the child kills whatever it started, with no process in between. unshare(CLONE_NEWPID)
    puts the next child of this process in a new namespace; right after the fork this
    process sets its children's namespace back to its own, so that no later child joins that
    one. os.fork itself, not a raw clone() through ctypes: the child returns from it without
    first touching (and so copying) the pages of ctypes' call machinery.
    """
    unshare(CLONE_NEWPID)
    pid = -1
    try:
        pid = os.fork()
    finally:
        if pid != 0:
            setns(_own_pid_namespace(), CLONE_NEWPID)
    return pid


@functools.cache
def _own_pid_namespace() -> int:
    """An fd of this process's own PID namespace (opened before any unshare: /proc/self/ns/pid never changes)."""
    return os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)


def set_parent_death_signal(signum: int) -> None:
    """Have the kernel send `signum` to this process when its parent dies."""
    if libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signum), 0, 0, 0) != 0:
        raise os_error("prctl(PR_SET_PDEATHSIG)")


def set_name(name: str) -> None:
    """Set this process's name (its `comm`, at most 15 bytes): it shows in ps and /proc which role a process plays."""
    libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def effective_capabilities() -> int:
    """This process's effective capability set, as a bit mask (CapEff in /proc/self/status)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))


def no_new_privs() -> None:
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), 0, 0, 0) != 0:
        raise os_error("prctl(PR_SET_NO_NEW_PRIVS)")


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32))


def drop_bounding_set() -> None:
    """Empty the capability bounding set, so that no later exec can gain a capability; inherited by children.

    The zygote does this once for every call it forks; its own effective capabilities stay as they are.
    """
    cap = 0
    while libc.prctl(_PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) == 0:
        cap += 1


def drop_capabilities() -> None:
    """Give up every capability for good, so that running as root grants a function nothing extra."""
    if libc.prctl(_PR_CAPBSET_READ, ctypes.c_ulong(0), 0, 0, 0) == 1:  # not yet emptied by the zygote
        drop_bounding_set()
    libc.prctl(_PR_CAP_AMBIENT, ctypes.c_ulong(_PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise os_error("capset")


def map_user(uid: int, gid: int) -> None:
    """After unshare(CLONE_NEWUSER): map the (unprivileged) outside user to root inside the new namespace."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def enter_network_namespace() -> None:
    """Leave the host's network for a new, empty namespace (through a user namespace when not root)."""
    if os.geteuid() == 0:
        unshare(CLONE_NEWNET)
    else:
        uid, gid = os.geteuid(), os.getegid()
        unshare(CLONE_NEWUSER | CLONE_NEWNET)
        map_user(uid, gid)
