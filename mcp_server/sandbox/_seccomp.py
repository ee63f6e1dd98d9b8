"""A seccomp filter for calls: the system calls no function needs are refused with EPERM.

Built with libseccomp (through `pyseccomp`, ctypes over the system's libseccomp.so.2) once per zygote, in a
throwaway child that hands back the raw BPF: the zygote never maps libseccomp or pyseccomp, so none of the
call processes it forks copies or unmaps them, and each call only hands the ready program to the kernel
(one prctl). EPERM rather than a
kill, so that a function that tries one of these gets a clear PermissionError instead of a mystery crash.
Beyond the deny-list it closes the two ways out that no other layer sees: unix sockets (socket() is allowed
for AF_INET and AF_INET6 only; a socketpair may be made, but not a datagram one, whose ends can send to any
path-named socket) and the keyrings of the server's user (add_key, request_key, keyctl).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket

from mcp_server.sandbox._linux import libc, no_new_privs, os_error
from mcp_server.sandbox._wire import write_all

#: System calls refused outright: namespaces and mounts, keyrings, io_uring (it would bypass this filter),
#: kernel extension points (bpf, modules, perf), other processes' memory, the clock, and obsolete interfaces.
DENIED = (
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "unshare", "setns",
    "add_key", "request_key", "keyctl",
    "bpf", "perf_event_open", "userfaultfd", "fanotify_init", "lookup_dcookie",
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module",
    "query_module", "get_kernel_syms", "swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd",
    "nfsservctl", "syslog", "sethostname", "setdomainname", "vhangup", "uselib", "_sysctl", "sysfs", "ustat",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
    "iopl", "ioperm", "modify_ldt", "vm86", "vm86old",
)  # fmt: skip
_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
_PERSONALITY_QUERY = 0xFFFFFFFF
_SOCK_TYPE_MASK = 0xF
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_SCMP_ERROR = -1  # what libseccomp resolves a name it does not know to


class _Program(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class _Filter:
    """The BPF program and the header the kernel reads it through, made once so that loading costs one prctl."""

    def __init__(self, program: bytes) -> None:
        self.program = program
        self.buffer = ctypes.create_string_buffer(program, len(program))
        self.header = _Program(len(program) // 8, ctypes.addressof(self.buffer))

    def load(self) -> None:
        no_new_privs()  # an unprivileged process may add a filter only once it can gain no privileges
        if libc.prctl(_PR_SET_SECCOMP, ctypes.c_ulong(_SECCOMP_MODE_FILTER), ctypes.byref(self.header), 0, 0) != 0:
            raise os_error("prctl(PR_SET_SECCOMP)")


_prepared: _Filter | str | None = None
_OK, _FAILED, _REFUSED, _NOT_REFUSED = b"P", b"E", b"R", b"N"  # what the building child reports first


def prepare() -> bool | str:
    """Build the filter once, in a throwaway child that also checks that the kernel applies it; True, or why not.

    The zygote calls it before forking anything, so every call process inherits the ready program.
    """
    global _prepared
    if _prepared is None:
        try:
            _prepared = _Filter(_build())
        except OSError as exc:
            _prepared = f"no seccomp filter: {exc}"
    return True if isinstance(_prepared, _Filter) else _prepared


def install() -> None:
    """Apply the prepared filter to this process and all it starts (nothing when this machine has none)."""
    prepare()
    if isinstance(_prepared, _Filter):
        _prepared.load()


def _build() -> bytes:
    """The filter as raw BPF, made and tried in a child: it loads the program and sees a refused call come back
    as EPERM before it sends the program; OSError naming what failed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            write_all(write, _build_in_child())
        finally:
            os._exit(0)
    os.close(write)
    try:
        report = bytearray()
        while chunk := os.read(read, 1 << 16):
            report += chunk
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    kind, body = bytes(report[:1]), bytes(report[1:])
    if kind == _OK and body and len(body) % 8 == 0:
        return body
    if kind == _REFUSED:
        why = body.decode(errors="replace")
        raise OSError(f"the kernel refused to load it (it needs CONFIG_SECCOMP_FILTER): {why}")
    if kind == _NOT_REFUSED:
        raise OSError("a filtered call was not refused")
    raise OSError(body.decode(errors="replace") if kind == _FAILED else "the child that builds it died")


def _build_in_child() -> bytes:
    """In the throwaway child: compile, load, check; the report (a kind byte, then the program or why not)."""
    try:
        program, keyctl = _compile()
    except (OSError, RuntimeError, ImportError) as exc:
        return _FAILED + str(exc).encode()
    try:
        program.load()
    except OSError as exc:
        return _REFUSED + str(exc).encode()
    refused = libc.syscall(ctypes.c_long(keyctl), 0, -4, 0) == -1 and ctypes.get_errno() == errno.EPERM
    return _OK + program.program if refused else _NOT_REFUSED


def _compile() -> tuple[_Filter, int]:
    """The filter as raw BPF (an array of struct sock_filter) for this machine's architecture, and the number
    of keyctl here (to check it with). pyseccomp is imported only here, in the building child: its import runs
    ldconfig to find the library."""
    import pyseccomp

    deny, arg = pyseccomp.ERRNO(errno.EPERM), pyseccomp.Arg
    rules = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED:
        number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
        if number != _SCMP_ERROR:  # a call newer than this libseccomp: the kernel may lack it too
            rules.add_rule(deny, number)
    for flag in _NAMESPACE_FLAGS:
        rules.add_rule(deny, "clone", arg(0, pyseccomp.MASKED_EQ, flag, flag))
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")  # its flags are out of reach: libc falls back to clone
    rules.add_rule(deny, "personality", arg(0, pyseccomp.NE, _PERSONALITY_QUERY))
    inet, inet6 = int(socket.AF_INET), int(socket.AF_INET6)
    rules.add_rule(deny, "socket", arg(0, pyseccomp.LT, inet))  # AF_UNSPEC, AF_UNIX
    rules.add_rule(deny, "socket", arg(0, pyseccomp.GT, inet6))  # also any value with high bits set
    for family in range(inet + 1, inet6):
        rules.add_rule(deny, "socket", arg(0, pyseccomp.EQ, family))
    unix = int(socket.AF_UNIX)
    rules.add_rule(deny, "socketpair", arg(0, pyseccomp.NE, unix))
    dgram = int(socket.SOCK_DGRAM)
    rules.add_rule(deny, "socketpair", arg(1, pyseccomp.MASKED_EQ, _SOCK_TYPE_MASK, dgram))
    fd = os.memfd_create("seccomp", os.MFD_CLOEXEC)
    try:
        rules.export_bpf(_Fd(fd))
        program = os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)
    return _Filter(program), int(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "keyctl"))


class _Fd:
    """What pyseccomp's export wants: an object with fileno()."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd
