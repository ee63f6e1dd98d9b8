"""One call as the zygote watches it: the server's socket, the call process, its pipes, limits and reply.

The zygote supervises every call process from a single poll loop, with no
process in between; a WatchedCall is what that loop keeps for one of them. It
reads the request from the server, collects the call's capped stdout/stderr and
its result frame, knows its deadline and how it ended, and holds the reply until
the server has taken it. Its socket is closed only once nothing of the call is alive.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp_server.sandbox import _wire, _worker
from mcp_server.sandbox._model import Limits
from mcp_server.sandbox._wire import Mark, Reply, Stop

if TYPE_CHECKING:
    from mcp_server.sandbox._cgroup import Slot

#: How long the pipes of an exited call process may stay open (held by something outside its namespace).
LINGER_S = 0.2


class WatchedCall:
    """The state of one call, from its socket's arrival to the last byte of its reply."""

    def __init__(self, sock: socket.socket, *, call_id: int, tmp: str, limits: Limits | None) -> None:
        self.sock = sock  # blocking (a pooled call process reads it): the zygote uses it with MSG_DONTWAIT only
        self.call_id = call_id  # 0 for a pooled call (the server names it by pid)
        self.tmp = tmp
        self.limits = limits  # known ahead for a pooled call; from the request for a cold one
        self.group: Slot | None = None
        self.request = bytearray()
        self.started = False  # the request has reached the call process: the clock runs
        self.idle = False  # a pooled call process gets ready at idle priority; it gets its normal one back to wait
        self.ready = False  # a pooled call process is locked down and waits for its request
        self.pid = 0
        self.pidfd = -1
        self.streams: dict[int, bytearray] = {}
        self.open_fds: set[int] = set()  # the pipes not yet at their end
        self.caps: dict[int, int] = {}
        self.out_r = self.err_r = self.res_r = -1
        self.stopped: Stop | None = None
        self.status: int | None = None
        self.rusage: Any = None
        self.deadline = math.inf
        self.exited_at = math.inf
        self.outgoing = bytearray()
        self.answered = False

    @property
    def pooled(self) -> bool:
        return self.call_id == 0

    def launch(self, fork: Callable[[], int], target: Callable[[int, int, int], None]) -> None:
        """Fork the call process running `target(out_w, err_w, result_w)`; it never returns in the child.

        A pooled call process replies to the server itself, so its stdout and stderr are memory
        files it reads back when its function returns (the zygote keeps them for a reply of its own).
        """
        assert self.limits is not None
        if self.pooled:
            out_r = out_w = os.memfd_create("stdout")
            err_r = err_w = os.memfd_create("stderr")
            pipes = {}
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            pipes = {out_r: bytearray(), err_r: bytearray()}
        res_r, res_w = os.pipe()
        pid = fork()
        if pid == 0:
            try:
                target(out_w, err_w, res_w)
            finally:
                os._exit(70)
        for fd in (*((out_w, err_w) if pipes else ()), res_w):
            os.close(fd)
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.out_r, self.err_r, self.res_r = out_r, err_r, res_r
        output = self.limits.output_bytes
        self.streams = {**pipes, res_r: bytearray()}
        self.caps = {out_r: output, err_r: output, res_r: self.limits.result_bytes + 64}
        self.open_fds = set(self.streams)

    def close_output(self) -> None:
        """Close a pooled call's stdout and stderr memory files (pipes close as they end)."""
        if self.pooled and self.out_r >= 0:
            os.close(self.out_r)
            os.close(self.err_r)
            self.out_r = self.err_r = -1

    def close_pipe(self, fd: int) -> None:
        self.open_fds.discard(fd)
        os.close(fd)

    def take_request(self) -> bytes | None:
        """Read what the server sent; the whole request frame once it is in, None until then.

        ConnectionError when the server closed the socket first, ProtocolError for a frame that is too large.
        """
        while True:
            try:
                chunk = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None
            if not chunk:
                raise ConnectionResetError("the server closed the call's socket before sending its request")
            self.request += chunk
            if len(self.request) >= 8:
                size = int.from_bytes(self.request[:8], "big")
                if size > _wire.REQUEST_LIMIT:
                    raise _wire.ProtocolError(f"a request of {size} bytes exceeds {_wire.REQUEST_LIMIT} bytes")
                if len(self.request) > 8 + size:
                    raise _wire.ProtocolError("bytes follow the end of the request")
                if len(self.request) == 8 + size:
                    frame, self.request = bytes(self.request), bytearray()
                    return frame

    def pump(self, fd: int) -> bool:
        """Read one chunk from an output or result pipe (stopping the call at a cap); False at its end."""
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return False
        if fd == self.res_r and self.pooled:
            chunk = self._marks(chunk)
        buffer, cap = self.streams[fd], self.caps[fd]
        if len(buffer) <= cap:
            buffer += chunk[: cap + 1 - len(buffer)]
        if len(buffer) > cap:
            self.stop(Stop.RESULT_TOO_LARGE if fd == self.res_r else Stop.OUTPUT_LIMIT)
        return True

    def _marks(self, chunk: bytes) -> bytes:
        """Act on the Mark bytes a pooled call process writes, in this order, ahead of anything else; the rest."""
        if not self.ready and chunk[:1] == Mark.READY:
            self.ready = True
            self.normal_priority()  # getting ready is over: the request, when it comes, must wake it at once
            chunk = chunk[len(Mark.READY) :]
        if self.ready and not self.started and chunk[:1] == Mark.STARTED:
            self.start_clock()
            chunk = chunk[len(Mark.STARTED) :]
        if self.started and chunk[:1] == Mark.REPLIED:  # it is sending its own reply
            self.answered = True
            chunk = chunk[len(Mark.REPLIED) :]
        return chunk

    def normal_priority(self) -> None:
        """Give a pooled call process that got ready at idle priority its normal one back."""
        if self.idle:
            self.idle = False
            with contextlib.suppress(ProcessLookupError):
                os.sched_setscheduler(self.pid, os.SCHED_OTHER, os.sched_param(0))

    def start_clock(self) -> None:
        """The call has begun: its deadline is set."""
        assert self.limits is not None
        self.started = True
        self.deadline = time.monotonic() + self.limits.timeout_s

    @property
    def result_complete(self) -> bool:
        return self.stopped is None and _wire.is_complete(self.streams.get(self.res_r, b""))

    def stop(self, reason: Stop) -> None:
        """Kill the call process; as its namespace's first process, its death takes every other with it."""
        if self.stopped is None:
            self.stopped = reason
        self.deadline = math.inf
        if self.pidfd >= 0 and self.status is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    @property
    def killed(self) -> bool:
        """Whether the call process ended by SIGKILL."""
        return self.status is not None and os.WIFSIGNALED(self.status) and os.WTERMSIG(self.status) == signal.SIGKILL

    def reap(self) -> bool:
        """Collect the call process's exit status if it has exited; True once it has."""
        pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.status, self.rusage = status, rusage
        self.exited_at = time.monotonic()
        os.close(self.pidfd)
        self.pidfd = -1
        return True

    def answer(self, reply: bytes | None = None) -> None:
        """Queue the reply (by default: how the call ended, its output and result frame) and send what fits."""
        if self.answered:
            return
        self.answered = True
        self.outgoing += reply if reply is not None else self._reply()
        self.flush()

    def flush(self) -> bool:
        """Send what the socket takes now; True once nothing is left to send (or the server is gone)."""
        while self.outgoing:
            try:
                sent = self.sock.send(self.outgoing, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return False
            except OSError:
                self.outgoing.clear()  # the server went away: nothing to tell
                break
            del self.outgoing[:sent]
        return True

    def _reply(self) -> bytes:
        cpu_s = round(self.rusage.ru_utime + self.rusage.ru_stime, 3) if self.rusage else None
        out, err = (self._output(fd) for fd in (self.out_r, self.err_r))
        outcome = bytes(self.streams.get(self.res_r, b"")) if self.stopped is None else b""
        return _wire.encode_reply(Reply(stopped=self.stopped, status=self.status, cpu_s=cpu_s), out, err, outcome)

    def _output(self, fd: int) -> bytes:
        if fd in self.streams:
            return bytes(self.streams[fd][: self.caps[fd]])
        return _worker.read_output(fd, self.caps.get(fd, 0)) if fd >= 0 else b""
