"""isolation_report(): which isolation layers really work on this machine, found by trying them."""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mcp_server.sandbox import _wire
from mcp_server.sandbox._calluser import CALL_UID
from mcp_server.sandbox._cleanup import temp_prefix
from mcp_server.sandbox._linux import SYS_ADMIN_HINT
from mcp_server.sandbox._model import Layer
from mcp_server.sandbox._paths import python_read_paths
from mcp_server.sandbox._seccomp import DENIED
from mcp_server.sandbox._wire import Facts, Findings

logger = logging.getLogger("funcsmith.sandbox")
ROOT = str(Path(__file__).resolve().parents[2])
_PROBE = "import sys; sys.path.insert(0, sys.argv[1]); from mcp_server.sandbox._probe import probe_main; probe_main()"


def probe_main() -> None:
    """Run in a throwaway interpreter: try each layer for real and print the Findings."""
    from mcp_server.sandbox import _cgroup, _landlock, _linux, _namespaces, _seccomp, _tmpfs, _zygote
    from mcp_server.sandbox._cgroup import CallGroups

    pid = os.fork()
    if pid == 0:
        try:
            _linux.enter_network_namespace()
        except OSError:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    netns = True if os.waitstatus_to_exitcode(status) == 0 else "unshare(CLONE_NEWNET) was refused"
    pidns = _zygote._try(_zygote.probe_pid_namespace)
    cgroup: bool | str
    memory: bool | str
    cgroup_gaps: list[str] = []
    try:
        groups = CallGroups.create(f"funcsmith-probe-{os.getpid()}")
        cgroup, memory = True, True if groups.memory_base is not None else groups.memory_error
        try:
            cgroup_gaps = _cgroup.gaps(groups.acquire())
        finally:
            groups.remove()
    except OSError as exc:
        cgroup = memory = str(exc)
    call_user, view = _try_call_user() if os.geteuid() == 0 else (False, False)
    findings = Findings(
        euid=os.geteuid(),
        landlock_abi=_landlock.abi_version(),
        netns=netns,
        pidns=pidns,
        cgroup=cgroup,
        memory_cgroup=memory,
        tmpfs=_zygote._try(_tmpfs.probe),
        ipcns=_namespaces.available(),
        seccomp=_seccomp.prepare(),
        call_user=call_user,
        view=view,
        cgroup_gaps=tuple(cgroup_gaps),
    )
    sys.stdout.write(_wire.encode(findings).decode())


def _try_call_user() -> tuple[bool | str, bool | str]:
    """As a call of this root server would: the mount view, then the call user, then read Python.

    True or why not, for the call user and for its mount view.
    """
    from mcp_server.sandbox import _calluser, _namespaces

    if not _calluser.applies():
        return f"uid {CALL_UID} does not exist in this user namespace; calls run as root without capabilities", False
    trees = list(python_read_paths())
    with tempfile.TemporaryDirectory(prefix=temp_prefix("probe")) as scratch:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            made = _namespaces.share(trees, Path(scratch))
            if made is True:
                _calluser.become()
                closed = [t for t in trees if not os.access(t, os.R_OK)]
                made = f"cannot read {closed[0]}" if closed else ""
            os.write(write, f"{made}\n{_namespaces.no_view or ''}".encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as answer:
            problem, _, no_view = answer.read().decode().partition("\n")
        os.waitpid(pid, 0)
    return f"the call user cannot work here: {problem}" if problem else True, no_view or True


@functools.cache
def probe() -> Findings | str:
    """The findings of one probe run (cached for the life of the process), or why there are none."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox's isolation needs Linux, this is {sys.platform}"
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _PROBE, ROOT],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            check=False,
        )
        return _wire.decode(done.stdout.encode(), Findings)
    except (OSError, _wire.ProtocolError, subprocess.TimeoutExpired) as exc:
        return f"the isolation probe failed: {exc}"


def isolation_report() -> list[Layer]:
    """Every isolation layer, whether it is active here, and why not where it is not."""
    found = probe()
    if isinstance(found, str):
        return [Layer("isolation", False, found)]
    abi, root = found.landlock_abi, found.euid == 0
    cgroup, netns, pidns = found.cgroup, found.netns, found.pidns
    memory, temp = found.memory_cgroup, found.tmpfs
    ipcns, filtered, call_user, view = found.ipcns, found.seccomp, found.call_user, found.view
    if root:  # each namespace layer a root server lacks, it lacks for want of CAP_SYS_ADMIN (Docker's default set)
        pidns, temp, netns = (_needs_sys_admin(v) for v in (pidns, temp, netns))
    no_landlock = "the kernel has no Landlock (Linux 5.13+ with landlock in the LSM list)"
    layers = [
        Layer("rlimits", True, "CPU time, address space, file size, open files, no core dumps; per call process"),
        Layer("fresh process", True, "every call is forked from a pre-started zygote; no function code runs in it"),
        Layer(
            "process-tree kill",
            pidns is True,
            "each call runs as the first process of its own PID namespace; its end kills all it started"
            if pidns is True
            else f"no PID namespace ({pidns}); the call's session and cgroup are swept instead",
        ),
        Layer(
            "process limit",
            cgroup is True or not root,
            "a pids cgroup per call caps processes and threads"
            if cgroup is True
            else f"no pids cgroup ({cgroup}); "
            + ("RLIMIT_NPROC is ignored for root" if root else "RLIMIT_NPROC applies, counted per user"),
        ),
        Layer(
            "memory budget",
            memory is True,
            "; ".join(
                [
                    "a memory cgroup per call: one budget for all its processes, shared memory and memory files",
                    *found.cgroup_gaps,
                ]
            )
            if memory is True
            else f"no memory cgroup ({memory}); RLIMIT_AS caps each process on its own",
        ),
        Layer(
            "temp folder limit",
            temp is True,
            "each call's temp folder is a tmpfs of its own, capped in size and files, gone with the call"
            if temp is True
            else f"no tmpfs of its own ({temp}); the temp folder is on disk, each file capped by RLIMIT_FSIZE",
        ),
        Layer(
            "network namespace", netns is True, "calls run in an empty network namespace" if netns is True else netns
        ),
        Layer(
            "landlock filesystem",
            abi >= 1,
            f"Landlock ABI {abi}: read Python + own folders, write data + temp only; no exec" if abi else no_landlock,
        ),
        Layer(
            "landlock tcp", abi >= 4, "TCP bind/connect refused" if abi >= 4 else f"needs Landlock ABI 4, have {abi}"
        ),
        Layer(
            "landlock scoping",
            abi >= 6,
            "signals and abstract unix sockets cannot leave the call"
            if abi >= 6
            else f"needs Landlock ABI 6, have {abi}",
        ),
        Layer(
            "ipc namespace",
            ipcns is True,
            "each call has its own SysV IPC and POSIX queues: none of the host's, and its own die with it"
            if ipcns is True
            else f"{ipcns}; calls share the server's SysV IPC",
        ),
        Layer(
            "seccomp filter",
            filtered is True,
            "refused with EPERM: unix and other non-IP sockets, datagram socketpairs, new namespaces (clone flags), "
            f"personality changes, {', '.join(DENIED)}"
            if filtered is True
            else f"{filtered}; unix sockets, keyrings and the calls listed in the seccomp deny-list stay open to calls",
        ),
        Layer("capabilities", True, "root's capabilities are dropped in every call" if root else "runs unprivileged"),
        Layer(
            "not root",
            call_user is True or not root,
            (
                f"calls of this root server run as uid {CALL_UID}, in a mount namespace that covers the folders it "
                "cannot pass on the way to Python and its own folders"
                if view is True
                else f"calls of this root server run as uid {CALL_UID}, with no mount view ({view}); "
                "no folder on the way to Python is closed to it"
            )
            if call_user is True
            else call_user
            if root
            else "calls run as the server's own user, which is not root",
        ),
        Layer("environment scrubbing", True, "only PATH, HOME, TMPDIR and LANG reach a call"),
    ]
    return layers


def _needs_sys_admin(found: bool | str) -> bool | str:
    return found if found is True or "CAP_SYS_ADMIN" in found else f"{found}; {SYS_ADMIN_HINT}"


def warn_missing(facts: Facts) -> None:
    """Log, once per process, each layer a starting zygote could not set up."""
    layers = {"pidns": facts.pidns, "ipcns": facts.ipcns, "seccomp": facts.seccomp, "view": facts.view}
    if not facts.network:
        layers["netns"] = facts.netns
    for key, value in layers.items():
        if value is not True and key not in _warned:
            _warned.add(key)
            logger.warning("sandbox: %s unavailable: %s", key, value)
    if facts.cgroup_error and "cgroup" not in _warned:
        _warned.add("cgroup")
        logger.warning("sandbox: no per-call pids cgroup: %s", facts.cgroup_error)
    if facts.memory_cgroup_error and "memory" not in _warned:
        _warned.add("memory")
        logger.warning("sandbox: no per-call memory cgroup: %s", facts.memory_cgroup_error)
    if facts.landlock_abi < 4 and "landlock" not in _warned:
        _warned.add("landlock")
        logger.warning("sandbox: Landlock ABI %s: file-system and/or TCP rules are not enforced", facts.landlock_abi)


_warned: set[str] = set()
