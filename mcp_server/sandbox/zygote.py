"""The zygote: a pre-started, single-threaded interpreter that forks one supervisor per call.

Started once per Sandbox (and once more, lazily, for functions granted the
network), it has the worker code and the stdlib modules functions commonly use
already imported, but never any function code. The offline zygote unshares a
network namespace for itself at start, so it and every process it forks have
no network at all, at no per-call cost.

The offline zygote also keeps a warm pool: supervisors whose call process is
already forked and locked down with the pool's limits, each waiting for one
request. Their sockets go to the server as `{"op": "pooled", "pid": p}` with
the socket attached; each serves one call and exits, and the zygote forks a
replacement when it reaps one, after the call's reply is already on its way.

Control messages from the server arrive on the same SOCK_SEQPACKET socket:
`{"op": "run", "id": n}` with the call's socket attached (a cold call), and
`{"op": "kill", "id": n}` or `{"op": "kill", "pid": p}` (a pooled call).
The server closing the socket shuts the zygote down, with every call it started.
"""

from __future__ import annotations

import array
import contextlib
import gc
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp_server.sandbox import landlock, linux, protocol, supervisor
from mcp_server.sandbox.cgroup import CallGroups, pids_controller

# Preloaded so that calls do not pay for importing them (imported for their side effect only).
PRELOAD = (
    "base64", "collections", "csv", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools",
    "hashlib", "heapq", "itertools", "json", "math", "pickle", "random", "re", "statistics", "string",
    "textwrap", "typing", "uuid", "zoneinfo",
)  # fmt: skip


class Zygote:
    """The zygote's state: its control socket, its live supervisors, and what isolation it set up."""

    def __init__(self, control: socket.socket, *, network: bool, pool: dict[str, Any] | None = None) -> None:
        self.control = control
        self.calls: dict[int, tuple[int, Path | None]] = {}  # supervisor pid -> call id (0 if pooled), its cgroup
        self.pool = pool if pool and pool["size"] > 0 else None
        self.pooled: set[int] = set()  # the pooled supervisors alive, idle or serving their call
        self.closing = False
        self.facts: dict[str, Any] = {"network": network}
        self.groups: CallGroups | None = None
        self.scratch = Path(tempfile.mkdtemp(prefix=f"funcsmith-{os.getpid()}-"))
        self.landlock_abi = landlock.abi_version()
        self.facts["landlock_abi"] = self.landlock_abi

    def isolate(self) -> None:
        """Set up the shared layers once: the network namespace (offline only), the cgroup, the PID namespace check."""
        if not self.facts["network"]:
            self.facts["netns"] = _try(linux.enter_network_namespace)
        try:
            self.groups = CallGroups.create(f"funcsmith-{os.getpid()}")
            self.facts["cgroup"] = str(self.groups.base)
        except OSError as exc:
            self.facts["cgroup_error"] = str(exc)
        self.facts["pidns"] = _try(probe_pid_namespace)
        if os.geteuid() == 0:
            linux.drop_bounding_set()

    def serve(self) -> None:
        """Fork a supervisor per run request until the server goes away."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        poller = select.poll()
        poller.register(self.control, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                    self.reap()
                elif not self.handle():
                    signal.set_wakeup_fd(-1)
                    self.shutdown()
                    return

    def handle(self) -> bool:
        """Act on one control message; False when the server closed the socket."""
        fds = array.array("i")
        try:
            data, ancdata, _, _ = self.control.recvmsg(65536, socket.CMSG_SPACE(fds.itemsize * 4))
        except ConnectionResetError:
            return False
        if not data:
            return False
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        message = json.loads(data)
        if message.get("op") == "run" and len(fds) == 1:
            self.fork(message["id"], fds[0])
        else:
            for fd in fds:
                os.close(fd)
            if message.get("op") == "kill":
                for pid, (call_id, _) in self.calls.items():
                    if (call_id and call_id == message.get("id")) or (pid in self.pooled and pid == message.get("pid")):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGTERM)
        return True

    def fork(self, call_id: int, sock: int, *, pool: dict[str, Any] | None = None) -> int:
        """Fork the supervisor of one call, with SIGTERM held until it can turn it into a clean kill."""
        group = self.groups.acquire() if self.groups is not None else None
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                linux.set_parent_death_signal(signal.SIGKILL)
                os.setsid()
                os.closerange(3, sock)
                os.closerange(sock + 1, 1 << 16)
                supervisor.main(
                    sock,
                    group=group,
                    pid_namespace=self.facts["pidns"] is True,
                    scratch=self.scratch,
                    landlock_abi=self.landlock_abi,
                    pool=pool,
                )
            finally:
                os._exit(70)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        os.close(sock)
        self.calls[pid] = (call_id, group)
        return pid

    def refill(self) -> None:
        """Fork pooled supervisors until the pool is full, handing each one's socket to the server."""
        while self.pool is not None and not self.closing and len(self.pooled) < self.pool["size"]:
            ours, theirs = socket.socketpair()
            pid = self.fork(0, theirs.detach(), pool=self.pool)
            self.pooled.add(pid)
            with ours:
                if not self.tell({"op": "pooled", "pid": pid}, ours):
                    return  # the server is gone; its socket closing will shut the zygote down

    def reap(self) -> None:
        """Collect finished supervisors, clean up after any killed before they could, and refill the pool."""
        while self.calls:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            _, group = self.calls.pop(pid, (0, None))
            if group is not None and self.groups is not None:
                self.groups.release(group)
            if status != 0:
                _remove_tree(self.scratch / f"call-{pid}")
            if pid in self.pooled:
                self.pooled.discard(pid)
                if status != 0 and self.pool is not None and not self.closing:
                    self.pool = None  # never fork-and-fail in a loop: calls take the cold path from now on
                    self.tell({"op": "pool-failed", "status": status})
        self.refill()

    def tell(self, message: dict[str, Any], sock: socket.socket | None = None) -> bool:
        """Send the server one message (with a socket attached); False when the server is gone."""
        data = json.dumps({"v": protocol.VERSION, **message}).encode()
        fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [sock.fileno()]).tobytes())] if sock else []
        try:
            self.control.sendmsg([data], fds)
        except OSError:
            return False
        return True

    def shutdown(self) -> None:
        """Stop every call still running (SIGTERM, then SIGKILL), reap them, and remove what the zygote made."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the server's death (SIGTERM) must not cut this short
        self.closing = True
        for pid in list(self.calls):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        while self.calls and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.005)
        for pid in list(self.calls):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            del self.calls[pid]
        if self.groups is not None:
            self.groups.remove()
        _remove_tree(self.scratch)


def probe_pid_namespace() -> None:
    """Check that a child may unshare a PID namespace and fork its first process."""
    pid = os.fork()
    if pid == 0:
        try:
            linux.unshare(linux.CLONE_NEWPID)
            inner = os.fork()
            if inner == 0:
                os._exit(0 if os.getpid() == 1 else 1)
            _, status = os.waitpid(inner, 0)
            os._exit(os.waitstatus_to_exitcode(status))
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("a child could not create a PID namespace")


def _try(action: Any) -> bool | str:
    try:
        action()
    except OSError as exc:
        return str(exc)
    return True


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    """Entry point: `python -c ... <control fd> <label> <offline|online> <root> <pool JSON>`."""
    fd, network, pool = int(sys.argv[1]), sys.argv[3] == "online", json.loads(sys.argv[5])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    linux.set_parent_death_signal(signal.SIGTERM)  # the server died: stop every call and clean up
    remove_stale(Path(tempfile.gettempdir()))
    for name in PRELOAD:
        __import__(name)
    control = socket.socket(fileno=fd)
    zygote = Zygote(control, network=network, pool=pool)
    zygote.isolate()
    gc.collect()
    gc.freeze()  # forked calls then never touch (and copy) the zygote's objects when they collect garbage
    control.sendall(json.dumps({"v": protocol.VERSION, "op": "ready", "pid": os.getpid(), **zygote.facts}).encode())
    try:
        zygote.refill()
        zygote.serve()
    except SystemExit:
        signal.set_wakeup_fd(-1)
        zygote.shutdown()


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def remove_stale(tmp: Path) -> None:
    """Remove what zygotes that were killed outright (no chance to clean up) left behind."""
    for scratch in tmp.glob("funcsmith-*-*"):
        pid = scratch.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove_tree(scratch)
    with contextlib.suppress(OSError):
        parent = pids_controller()
        for base in parent.glob("funcsmith-*"):
            pid = base.name.split("-")[1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                CallGroups(base).remove()
