"""The per-call supervisor of `Sandbox(start="spawn")`: the fresh interpreter between the server and the call.

It caps the call's cgroup, makes its scratch folder and PID namespace, forks the
call process, then watches it: it collects the result and the capped
stdout/stderr, enforces the wall-clock timeout, turns SIGTERM (cancellation)
into a kill of the whole call, sweeps what is left, and sends one reply to the
server. When its socket closes, nothing of the call is alive. (Calls forked
from the zygote have no process of their own in between: the zygote watches them.)
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from mcp_server.sandbox import cgroup, cleanup, linux, protocol, worker


class _Call:
    """The call process this supervisor watches, the pipes it reads, and how it ended."""

    def __init__(self, pid: int, out_r: int, err_r: int, res_r: int, limits: Mapping[str, Any]) -> None:
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.out_r, self.err_r, self.res_r = out_r, err_r, res_r
        self.streams = {out_r: bytearray(), err_r: bytearray(), res_r: bytearray()}
        self.open_fds = set(self.streams)  # the pipes not yet at their end
        self.caps = {out_r: limits["output_bytes"], err_r: limits["output_bytes"], res_r: limits["result_bytes"] + 64}
        self.stopped: str | None = None
        self.status: int | None = None
        self.rusage: Any = None

    def stop(self, reason: str) -> None:
        """Kill the call process; as the PID namespace's first process, its death takes every other with it."""
        if self.stopped is None:
            self.stopped = reason
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def reap(self) -> None:
        _, self.status, self.rusage = os.wait4(self.pid, 0)
        os.close(self.pidfd)

    def reply(self) -> bytes:
        """The reply for the server: how the call ended, then its output and result frame as they were read."""
        meta = {
            "stopped": self.stopped,
            "status": self.status,
            "cpu_s": round(self.rusage.ru_utime + self.rusage.ru_stime, 3) if self.rusage else None,
        }
        out = bytes(self.streams[self.out_r][: self.caps[self.out_r]])
        err = bytes(self.streams[self.err_r][: self.caps[self.err_r]])
        result = bytes(self.streams[self.res_r]) if self.stopped is None else b""
        return protocol.encode_reply(meta, out, err, result)


def main(sock: int, *, group: cgroup.Slot | None, pid_namespace: bool, scratch: Path, landlock_abi: int) -> NoReturn:
    """Run one call end to end and exit; `sock` is this call's socket to the server, `group` its empty cgroup."""
    started = time.monotonic()
    tmp = scratch / f"call-{os.getpid()}"
    reply: bytes | None = None
    try:
        tmp.mkdir(mode=0o700)
        linux.set_name(worker.BUSY_NAME)
        request = protocol.read_frame(sock, limit=worker.REQUEST_LIMIT)
        request.update(tmp_dir=str(tmp), landlock_abi=landlock_abi)
        limits = request["limits"]
        if group is not None:
            group.watch_oom()
            group.settle(killed=True)  # take in the counts of the slot's earlier calls
        call = _start(
            lambda out, err, res: worker.run(request, out_fd=out, err_fd=err, result_fd=res, group=group),
            limits=limits,
            group=group,
            pid_namespace=pid_namespace,
        )
        watch(call, deadline=started + float(limits["timeout_s"]), group=group)
        killed = call.status is not None and os.WIFSIGNALED(call.status) and os.WTERMSIG(call.status) == signal.SIGKILL
        if group is not None and call.stopped is None and group.settle(killed=killed):
            call.stopped = "MemoryLimit"
        reply = call.reply()
        if call.status is None:  # the result is in and the call is exiting: answer now, clean up after
            _send(sock, reply)
            reply = None
            call.stop("Done")
            call.reap()
    except Exception as exc:
        reply = protocol.encode_reply(
            {"error_type": "ProtocolError", "error_message": f"the call supervisor failed: {exc}"}
        )
    finally:
        if group is not None:
            cgroup.sweep(group.pids)
        cleanup.remove_all([tmp])
    if reply is not None:
        _send(sock, reply)
    os._exit(0)


def _send(sock: int, reply: bytes) -> None:
    with contextlib.suppress(OSError):  # the server went away: nothing to tell
        protocol.write_all(sock, reply)


def _start(
    target: Callable[[int, int, int], NoReturn],
    *,
    limits: Mapping[str, Any],
    group: cgroup.Slot | None,
    pid_namespace: bool,
) -> _Call:
    """Fork the call process (the first of its own PID namespace) running `target(out_w, err_w, result_w)`."""
    if group is not None:
        group.limit(int(limits["processes"]), int(limits["memory_mb"]))
    if pid_namespace:
        linux.unshare(linux.CLONE_NEWPID)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            target(out_w, err_w, res_w)
        finally:
            os._exit(70)
    for fd in (out_w, err_w, res_w):
        os.close(fd)
    call = _Call(pid, out_r, err_r, res_r, limits)
    signal.signal(signal.SIGTERM, lambda *_: call.stop("Cancelled"))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    return call


def watch(call: _Call, *, deadline: float, group: cgroup.Slot | None) -> None:
    """Pump the pipes until the result frame is complete, or the call has exited and they are drained,
    stopping it at a limit. A complete result means the call process wrote (and flushed) everything it
    had to say: what is in the output pipes is read, and the rest of its exit is no longer waited for."""
    poller = select.poll()
    for fd in (*call.streams, call.pidfd):
        poller.register(fd, select.POLLIN)
    oom = group.oom if group is not None else -1
    if group is not None and oom >= 0:
        poller.register(oom, group.oom_events)
    while call.open_fds or call.status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 and call.status is None:
            call.stop("Timeout")
        timeout_ms = max(int(remaining * 1000) + 1, 0) if call.status is None else 200
        events = poller.poll(timeout_ms)
        if not events and call.status is not None:
            break  # exited, and whatever still holds a pipe open is outside the namespace: stop waiting
        for fd, _ in events:
            if fd == oom:
                assert group is not None
                if group.oom_event():
                    call.stop("MemoryLimit")
                continue
            if fd == call.pidfd:
                poller.unregister(fd)
                call.reap()
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                poller.unregister(fd)
                call.open_fds.discard(fd)
                os.close(fd)
                continue
            buffer = call.streams[fd]
            if len(buffer) < call.caps[fd] + 1:
                buffer += chunk[: call.caps[fd] + 1 - len(buffer)]
            if len(buffer) > call.caps[fd]:
                call.stop("ResultTooLarge" if fd == call.res_r else "OutputLimit")
            elif fd == call.res_r and call.stopped is None and protocol.is_complete(buffer):
                _drain_output(call)
                return


def _drain_output(call: _Call) -> None:
    """Read what is already in the stdout/stderr pipes, without waiting for more."""
    poller = select.poll()
    for fd in call.open_fds - {call.res_r}:
        poller.register(fd, select.POLLIN)
    while events := poller.poll(0):
        for fd, _ in events:
            chunk = os.read(fd, 1 << 16)
            buffer = call.streams[fd]
            if not chunk or len(buffer) > call.caps[fd]:
                poller.unregister(fd)
                if len(buffer) > call.caps[fd]:
                    call.stop("OutputLimit")
                continue
            buffer += chunk[: call.caps[fd] + 1 - len(buffer)]
