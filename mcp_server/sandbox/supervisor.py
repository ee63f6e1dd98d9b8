"""The per-call supervisor: one process between the zygote and the call.

It reads the call request, caps the call's cgroup, makes its scratch folder and PID
namespace, forks the call process, then watches it: it collects the result and
the capped stdout/stderr, enforces the wall-clock timeout, turns SIGTERM
(cancellation) into a kill of the whole call, sweeps what is left, and sends
one reply frame to the server. When its socket closes, nothing of the call is alive.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import time
from pathlib import Path
from typing import Any, NoReturn

from mcp_server.sandbox import cgroup, linux, protocol, worker

REQUEST_LIMIT = 256 << 20


class _Call:
    """The state of the one call this supervisor watches."""

    def __init__(self, pid: int, pidfd: int, limits: dict[str, Any]) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.limits = limits
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


def main(sock: int, *, group: Path | None, pid_namespace: bool, scratch: Path, landlock_abi: int) -> NoReturn:
    """Run one call end to end and exit; `sock` is this call's socket to the server, `group` its empty cgroup."""
    started = time.monotonic()
    reply: dict[str, Any]
    tmp = scratch / f"call-{os.getpid()}"
    try:
        request = protocol.read_frame(sock, limit=REQUEST_LIMIT)
        tmp.mkdir(mode=0o700)
        request.update(tmp_dir=str(tmp), landlock_abi=landlock_abi)
        if group is not None:
            cgroup.limit(group, int(request["limits"]["processes"]))
        reply = supervise(request, group=group, pid_namespace=pid_namespace, started=started)
    except Exception as exc:
        reply = {"error_type": "ProtocolError", "error_message": f"the call supervisor failed: {exc}"}
    finally:
        if group is not None:
            cgroup.sweep(group)
        shutil.rmtree(tmp, ignore_errors=True)
    with contextlib.suppress(OSError):
        protocol.write_all(sock, protocol.encode(reply))
    os._exit(0)


def supervise(request: dict[str, Any], *, group: Path | None, pid_namespace: bool, started: float) -> dict[str, Any]:
    """Fork the call process and watch it to the end; the reply for the server."""
    limits = request["limits"]
    if pid_namespace:
        linux.unshare(linux.CLONE_NEWPID)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        worker.run(request, out_fd=out_w, err_fd=err_w, result_fd=res_w, group=group)
    for fd in (out_w, err_w, res_w):
        os.close(fd)
    call = _Call(pid, os.pidfd_open(pid), limits)
    signal.signal(signal.SIGTERM, lambda *_: call.stop("Cancelled"))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    streams = {out_r: bytearray(), err_r: bytearray(), res_r: bytearray()}
    caps = {out_r: limits["output_bytes"], err_r: limits["output_bytes"], res_r: limits["result_bytes"] + 64}
    watch(call, streams, caps, deadline=started + float(limits["timeout_s"]), result_fd=res_r)
    reply: dict[str, Any] = {
        "result": None,
        "stopped": call.stopped,
        "stdout": streams[out_r][: caps[out_r]].decode(errors="replace"),
        "stderr": streams[err_r][: caps[err_r]].decode(errors="replace"),
        "status": call.status,
        "cpu_s": round(call.rusage.ru_utime + call.rusage.ru_stime, 3) if call.rusage else None,
    }
    if streams[res_r] and call.stopped is None:
        try:
            reply["result"] = protocol.decode(bytes(streams[res_r]), limit=caps[res_r])
        except protocol.ProtocolError as exc:
            reply.update(stopped="ProtocolError", problem=f"the call's result frame is unreadable: {exc}")
    return reply


def watch(call: _Call, streams: dict[int, bytearray], caps: dict[int, int], *, deadline: float, result_fd: int) -> None:
    """Pump the pipes until the call has exited and they are drained, stopping it at a limit."""
    poller = select.poll()
    for fd in (*streams, call.pidfd):
        poller.register(fd, select.POLLIN)
    open_fds = set(streams)
    while open_fds or call.status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 and call.status is None:
            call.stop("Timeout")
        timeout_ms = max(int(remaining * 1000) + 1, 0) if call.status is None else 200
        events = poller.poll(timeout_ms)
        if not events and call.status is not None:
            break  # exited, and whatever still holds a pipe open is outside the namespace: stop waiting
        for fd, _ in events:
            if fd == call.pidfd:
                _, status, call.rusage = os.wait4(call.pid, 0)
                call.status = status
                poller.unregister(fd)
                os.close(fd)
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                os.close(fd)
                continue
            buffer = streams[fd]
            if len(buffer) < caps[fd] + 1:
                buffer += chunk[: caps[fd] + 1 - len(buffer)]
            if len(buffer) > caps[fd]:
                call.stop("ResultTooLarge" if fd == result_fd else "OutputLimit")
