"""The zygote: a pre-started, single-threaded interpreter that forks every call process and supervises them all.

Started once per Sandbox (and once more, lazily, for functions granted the
network), it has the worker code and the stdlib modules functions commonly use
already imported, but never any function code. The offline zygote unshares a
network namespace for itself at start, so it and every process it forks have
no network at all, at no per-call cost.

Each call costs one forked process: the zygote clones the call process straight
into a new PID namespace and watches it from one poll loop with every other call
(see _watched.py): it relays the request, collects the output and result, enforces
the wall-clock timeout, kills the tree, sweeps the call's cgroup, removes its temp
folder and replies to the server.

The offline zygote also keeps a warm pool: call processes already forked and
locked down with the pool's limits, each waiting for one request. Their sockets
go to the server as a `Pooled` message with the socket attached; each
serves one call, and the zygote forks a replacement as soon as its call has begun
(not once it is gone: a busy server would empty the pool meanwhile). A pooled
call process reads its request and sends its reply itself, on that socket, so
the zygote is on neither path; it still enforces the timeout, kills the tree,
cleans up, and replies itself when the call never did (a timeout, a crash, a
cancellation). Its own copy of the socket closes only once the tree is dead.

Control messages from the server (see _wire.py) arrive on the same SOCK_SEQPACKET
socket: `Run` with the call's socket attached (a cold call), and `Kill`, naming a
cold call by its id or a pooled one by its pid.
The server closing the socket shuts the zygote down, with every call it started.

`Sandbox(start="spawn")` starts a zygote per call instead (`Boot.once`): no pool, no
preloaded modules, one `Run`, and it shuts down once that call is finished. It is
the same supervisor, paying a whole interpreter start for each call.
"""

from __future__ import annotations

import array
import contextlib
import functools
import gc
import itertools
import math
import os
import select
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mcp_server.sandbox import _calluser, _cgroup, _cleanup, _landlock, _linux, _namespaces, _seccomp, _wire, _worker
from mcp_server.sandbox._cgroup import CallGroups
from mcp_server.sandbox._watched import LINGER_S, WatchedCall
from mcp_server.sandbox._wire import Boot, Facts, Kill, Op, Pooled, PoolFailed, Ready, Reply, Request, Role, Run, Stop

# Preloaded so that calls do not pay for importing them (imported for their side effect only).
PRELOAD = (
    "base64", "collections", "csv", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools",
    "hashlib", "heapq", "itertools", "json", "math", "pickle", "random", "re", "statistics", "string",
    "textwrap", "typing", "uuid", "zoneinfo",
)  # fmt: skip
_IN = select.POLLIN
_REFILL_BATCH = 4
# How long a closing zygote waits for its calls and cleaners to end (the server kills it after 10 s): a call
# whose temp folder held 200k files takes seconds to exit, as the kernel drops that tmpfs in its exit.
_SHUTDOWN_S = 8.0


class Zygote:
    """The zygote's state: its control socket, every live call, the pool, and what isolation it set up."""

    def __init__(self, control: socket.socket, boot: Boot) -> None:
        self.control = control
        self.network = boot.network
        self.pool = boot.pool if boot.pool.size > 0 else None
        self.once = boot.once  # serve the first call, then shut down
        self.served = False
        self.live: set[WatchedCall] = set()  # every call with a process, a socket or cleanup still to do
        self.pooled: set[WatchedCall] = set()  # the pooled calls alive, waiting for their call or serving it
        self.watched: dict[int, WatchedCall] = {}  # fd -> its call, for every fd the poller watches
        self.poller = select.poll()
        self.serial = itertools.count(1)
        self.fork: Callable[[], int] = os.fork
        self.closing = False
        self.groups: CallGroups | None = None
        self.scratch, self.scratch_lock = _cleanup.make_scratch()
        self.scratch_path = str(self.scratch)
        self.spare: list[str] = []  # temp folders that finished calls left as they were made (see keep_tmp)
        self.euid = os.geteuid()
        self.cleaners: dict[int, int] = {}  # pidfd -> pid of each process removing what calls or dead zygotes left
        self.landlock_abi = _landlock.abi_version()
        self.layers: _worker.PoolLayers | OSError | None = None
        self.facts = Facts(pid=os.getpid(), network=self.network, landlock_abi=self.landlock_abi)

    def isolate(self, trees: list[str]) -> None:
        """Set up the shared layers once: the network namespace (offline only), the cgroup, the PID namespace check,
        and the mount view in which the call user reaches `trees` (Python and the data root)."""
        netns = _try(_linux.enter_network_namespace) if not self.network else self.facts.netns
        where = cgroup_error = memory_error = ""
        try:
            self.groups = CallGroups.create(_cleanup.own_name(os.getpid()))
            where = str(self.groups.base)
            if self.groups.memory_base is None:
                memory_error = self.groups.memory_error
        except OSError as exc:
            cgroup_error = str(exc)
        pidns = _try(probe_pid_namespace)
        idle = _try(probe_idle_priority) if self.pool is not None else self.facts.idle_pool
        if pidns is True:
            self.fork = _linux.fork_into_new_pid_namespace
        ipcns, filtered, call_user = _namespaces.available(), _seccomp.prepare(), _calluser.applies()
        view = _namespaces.share(trees, self.scratch)
        if view is not True:  # the server refuses every call; a pool would wait for none
            self.pool = None
        if os.geteuid() == 0:
            _linux.drop_bounding_set()
        self.facts = replace(
            self.facts,
            netns=netns,
            cgroup=where,
            cgroup_error=cgroup_error,
            memory_cgroup_error=memory_error,
            pidns=pidns,
            idle_pool=idle,
            ipcns=ipcns,
            seccomp=filtered,
            call_user=call_user,
            view=view,
        )

    def serve(self) -> None:
        """Run every call from one poll loop until the server goes away."""
        control = self.control.fileno()
        self.poller.register(control, _IN)
        while True:
            for fd, mask in self.poller.poll(self.wait_ms()):
                if fd == control:
                    if not self.handle():
                        self.shutdown()
                        return
                elif fd in self.cleaners:
                    self.reap_cleaner(fd)
                elif (call := self.watched.get(fd)) is not None:
                    try:
                        self.on_event(call, fd, mask)
                    except Exception as exc:  # one call's trouble must not take the others down
                        self.fail(call, exc)
            self.check_clocks()
            if self.once and self.served and not self.live and not self.watched:
                self.shutdown()
                return
            self.refill()

    def wait_ms(self) -> int | None:
        """How long the loop may sleep: until the nearest deadline, or for good when there is none."""
        if self.filling:
            return 0
        now = time.monotonic()
        soonest = min((c.deadline if c.status is None else c.exited_at + LINGER_S for c in self.live), default=math.inf)
        return None if soonest == math.inf else max(0, math.ceil((soonest - now) * 1000))

    def check_clocks(self) -> None:
        now = time.monotonic()
        for call in list(self.live):
            if call.status is None and now >= call.deadline:
                call.stop(Stop.TIMEOUT)
            elif call.status is not None and now >= call.exited_at + LINGER_S:
                self.finish(call)

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
        message = _wire.decode_control(data)
        if isinstance(message, Run) and len(fds) == 1:
            call = WatchedCall(socket.socket(fileno=fds[0]), call_id=message.id, tmp=self.tmp(), limits=None)
            self.live.add(call)
            self.watch(call.sock.fileno(), call)
            self.served = True
            return True
        for fd in fds:
            os.close(fd)
        if isinstance(message, Kill):
            for call in list(self.live):
                if (message.id, message.pid) == ((call.call_id, 0) if call.call_id else (0, call.pid)):
                    call.stop(Stop.CANCELLED)
                    if not call.pid:
                        self.finish(call)
        return True

    def on_event(self, call: WatchedCall, fd: int, mask: int) -> None:
        if fd == call.sock.fileno():
            if call.pooled and not mask & select.POLLOUT:  # its request came before it was ready: hurry it up
                call.normal_priority()
                self.unwatch(fd)
                return
            if mask & select.POLLOUT or call.started or call.stopped:
                if call.flush():
                    self.unwatch(fd)
                    if call not in self.live:
                        call.sock.close()
                return
            try:
                frame = call.take_request()
            except ConnectionError:  # the server dropped this call before sending it: nothing ran
                self.unwatch(fd)
                call.stop(Stop.IDLE)
                self.finish(call)
                return
            if frame is not None:
                self.unwatch(fd)
                self.begin(call, frame)
        elif fd == call.pidfd:
            self.unwatch(fd)
            call.reap()  # a readable pidfd means the process has exited
            if call.pooled:
                self.drain(call, (call.res_r,))  # whether it sent its reply (the REPLIED mark) is read now
            self.finish(call)
        elif call.group is not None and fd == call.group.oom:
            if call.group.oom_event():  # the call passed its budget: the kernel kills one of its processes
                call.stop(Stop.MEMORY_LIMIT)
        elif not call.pump(fd):
            self.unwatch(fd)
            call.close_pipe(fd)
            self.finish(call)
        elif fd == call.res_r and call.pooled and call.ready:
            self.unwatch(call.sock.fileno())  # ready at its normal priority: its request needs no eye kept on it
            if call.started:  # no need to wake for its REPLIED mark, as its reply leaves: it is read once it exits
                self.unwatch(fd)
        elif fd == call.res_r and call.result_complete and not call.answered:
            self.drain_output(call)
            if call.stopped is None:  # the result is in: answer now, and let the rest of the exit happen after
                self.answer(call)
                call.stop(Stop.DONE)

    def begin(self, call: WatchedCall, frame: bytes) -> None:
        """A cold call's request is in: fork its call process, locked down for exactly this request."""
        request = _wire.unframe(frame, Request, limit=_wire.REQUEST_LIMIT)
        request = replace(request, tmp_dir=call.tmp, landlock_abi=self.landlock_abi)
        call.limits = request.limits
        self.launch(call, functools.partial(_cold, request), name=Role.CALL)
        call.start_clock()

    def launch(self, call: WatchedCall, target: Callable[..., None], *, name: Role) -> None:
        """Make the call's temp folder and cgroup, fork its process, and watch its pipes and exit."""
        assert call.limits is not None
        with contextlib.suppress(FileExistsError):  # a spare one (see keep_tmp): new names are never taken
            os.mkdir(call.tmp, 0o700)
        if self.groups is not None:
            call.group = self.groups.acquire()
            call.group.limit(call.limits.processes, call.limits.memory_mb)
            if call.group.oom >= 0:
                self.watch(call.group.oom, call, call.group.oom_events)
        group, tmp, abi = call.group, call.tmp, self.landlock_abi
        idle = call.idle
        call.launch(self.fork, lambda out, err, res: _child(name, target, out, err, res, group, tmp, abi, idle))
        for fd in (*call.streams, call.pidfd):
            self.watch(fd, call)

    def drain_output(self, call: WatchedCall) -> None:
        """Read what is already in the stdout/stderr pipes, without waiting for more."""
        self.drain(call, (call.out_r, call.err_r))

    def drain(self, call: WatchedCall, fds: tuple[int, ...]) -> None:
        """Read what is already in some of the call's pipes, without waiting for more."""
        for fd in fds:
            while fd in call.open_fds and _readable(fd):
                if not call.pump(fd):
                    self.unwatch(fd)
                    call.close_pipe(fd)

    def finish(self, call: WatchedCall) -> None:
        """Once the call process is gone and its pipes drained (or lingered): answer, clean up, close."""
        if call.pid and (call.status is None or (call.open_fds and time.monotonic() < call.exited_at + LINGER_S)):
            return
        for fd in list(call.open_fds):
            self.unwatch(fd)
            call.close_pipe(fd)
        if call.group is not None:
            self.unwatch(call.group.oom)
            if call.group.settle(killed=call.killed) and call.stopped is None:
                call.stopped = Stop.MEMORY_LIMIT
        if call.stopped is None and call.killed and self.fork is not os.fork:
            call.stopped = Stop.CPU_LIMIT  # only the kernel kills a namespace's first process, and not for memory
        if call.started:
            call.answer()
        call.close_output()
        if call.group is not None and self.groups is not None:
            self.groups.release(call.group)
        self.keep_tmp(call.tmp)
        self.live.discard(call)
        if call.pooled:
            self.pooled.discard(call)
            failed = not call.started and call.stopped is None and call.status != 0
            if failed and self.pool is not None and not self.closing:
                self.pool = None  # never fork-and-fail in a loop: calls take the cold path from now on
                self.tell(PoolFailed(Op.POOL_FAILED, call.status))
        self.unwatch(call.sock.fileno())
        if call.flush():
            call.sock.close()
        else:
            self.watch(call.sock.fileno(), call, select.POLLOUT)

    def answer(self, call: WatchedCall, reply: bytes | None = None) -> None:
        """Send the call's reply; what the socket cannot take now goes when it can."""
        call.answer(reply)
        if call.outgoing:
            self.watch(call.sock.fileno(), call, select.POLLOUT)

    def fail(self, call: WatchedCall, exc: Exception) -> None:
        """Answer a call the zygote could not run or watch with what went wrong, and stop it."""
        message = f"the sandbox could not run the call: {exc}"
        self.answer(call, _wire.encode_reply(Reply(failure=message)))
        call.stop(Stop.FAILED)
        if not call.pid:
            self.finish(call)

    @property
    def filling(self) -> bool:
        if self.pool is None or self.closing:
            return False
        return sum(not call.started for call in self.pooled) < self.pool.size

    def refill(self) -> None:
        """Fork pooled call processes toward a full pool, handing each one's socket to the server.

        A few at a time: between them the loop serves whatever arrived (a large pool takes a while to fill).
        """
        for _ in range(_REFILL_BATCH):
            if not self.filling:
                return
            ours, theirs = socket.socketpair()
            call = WatchedCall(ours, call_id=0, tmp=self.tmp(), limits=self.pool.limits)
            self.live.add(call)
            self.pooled.add(call)
            call.idle = self.facts.idle_pool is True
            pooled = functools.partial(_pooled, self.pool, ours.fileno(), layers=self.pool_layers())
            self.launch(call, pooled, name=Role.POOL)
            if call.idle:  # a request that comes while it still gets ready gives it its normal priority
                self.watch(ours.fileno(), call)
            with theirs:
                if not self.tell(Pooled(Op.POOLED, call.pid), theirs):
                    return  # the server is gone; its socket closing will shut the zygote down

    def pool_layers(self) -> _worker.PoolLayers | OSError | None:
        """The pool's Landlock layers, made on first use (and tried again while making them fails)."""
        if not self.landlock_abi or self.pool is None:
            return None
        if not isinstance(self.layers, _worker.PoolLayers):
            try:
                self.layers = _worker.pool_layers(self.pool, str(self.scratch), self.landlock_abi)
            except OSError as exc:
                self.layers = exc
        return self.layers

    def clean(self, paths: list[Path]) -> None:
        """Remove what a call (or a dead zygote) left, in a process of its own: the loop never waits on it."""
        if not paths:
            return
        try:
            pid = _cleanup.start_cleaner(paths)
        except OSError as exc:
            sys.stderr.write(f"funcsmith sandbox: could not start removing {paths[0]}: {exc}\n")
            return
        pidfd = os.pidfd_open(pid)
        self.cleaners[pidfd] = pid
        self.poller.register(pidfd, _IN)

    def reap_cleaner(self, pidfd: int) -> None:
        self.poller.unregister(pidfd)
        os.waitpid(self.cleaners.pop(pidfd), 0)
        os.close(pidfd)

    def remove_stale(self) -> None:
        """Remove what zygotes that were killed outright (no chance to clean up) left behind."""
        self.clean(_cleanup.claim_stale(self.scratch))
        for groups in CallGroups.stale(_cleanup.PREFIX):
            if _cleanup.dead_owner(groups.base.name):
                try:
                    groups.remove()
                except OSError as exc:
                    sys.stderr.write(f"funcsmith sandbox: could not remove the stale cgroup {groups.base}: {exc}\n")

    def tmp(self) -> str:
        """A call's temp folder, a spare one if there is one: a str, as pathlib's objects cost every call copied
        pages after the forks."""
        return self.spare.pop() if self.spare else f"{self.scratch_path}/call-{next(self.serial)}"

    def keep_tmp(self, tmp: str) -> None:
        """Keep a finished call's temp folder for a later call if the call left it as it was made: empty, the
        zygote's own, 0700 (the usual case: the call's files were on a tmpfs of its own, gone with it). Making
        and removing a folder per call is dear on a disk file system (ext4 looks for a free inode each time).
        Anything else is removed, off the loop."""
        try:
            info = os.lstat(tmp)
            with os.scandir(tmp) as entries:
                empty = next(entries, None) is None
        except FileNotFoundError:
            return
        except OSError:
            empty = False
        if empty and (info.st_uid, info.st_mode) == (self.euid, stat.S_IFDIR | 0o700):
            self.spare.append(tmp)
        else:
            self.clean([Path(tmp)])

    def watch(self, fd: int, call: WatchedCall, events: int = _IN) -> None:
        self.poller.register(fd, events)
        self.watched[fd] = call

    def unwatch(self, fd: int) -> None:
        if self.watched.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def tell(self, message: _wire.Control, sock: socket.socket | None = None) -> bool:
        """Send the server one message (with a socket attached); False when the server is gone."""
        data = _wire.encode(message)
        fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [sock.fileno()]).tobytes())] if sock else []
        try:
            self.control.sendmsg([data], fds)
        except OSError:
            return False
        return True

    def shutdown(self) -> None:
        """Kill every call still running, reap them, and remove what the zygote made."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the server's death (SIGTERM) must not cut this short
        self.closing = True
        for call in self.live:
            call.stop(Stop.CANCELLED)
        deadline = time.monotonic() + _SHUTDOWN_S
        for call in self.live:
            while call.pidfd >= 0 and not call.reap() and time.monotonic() < deadline:
                time.sleep(0.005)
        if self.groups is not None:
            self.groups.remove()
        for pidfd, pid in list(self.cleaners.items()):  # give them a moment; what they leave goes below
            waiter = select.poll()
            waiter.register(pidfd, _IN)
            if not waiter.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                os.kill(pid, signal.SIGKILL)
            self.reap_cleaner(pidfd)
        _namespaces.leave()
        _cleanup.remove_all([self.scratch])


def _child(
    name: Role,
    target: Callable[..., None],
    out: int,
    err: int,
    res: int,
    group: _cgroup.Slot | None,
    tmp: str,
    abi: int,
    idle: bool,
) -> None:
    """A call process starts its own session (so no signal to its process group reaches the zygote), then runs."""
    os.setsid()
    _linux.set_name(name)
    if name == Role.POOL and idle:  # getting ready must never slow a running call (the zygote restores it)
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    target(out_fd=out, err_fd=err, result_fd=res, group=group, tmp_dir=tmp, landlock_abi=abi)


def _cold(request: Request, *, out_fd: int, err_fd: int, result_fd: int, group: _cgroup.Slot | None, **_: Any) -> None:
    _worker.run(request, out_fd=out_fd, err_fd=err_fd, result_fd=result_fd, group=group)


def _pooled(pool: _wire.Pool, request_fd: int, **fds_and_paths: Any) -> None:
    _worker.run_pooled(pool, request_fd=request_fd, **fds_and_paths)


def probe_pid_namespace() -> None:
    """Check that this process may fork a child straight into a new PID namespace, as its first process."""
    pid = _linux.fork_into_new_pid_namespace()
    if pid == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise OSError(f"a child forked into a new PID namespace is not its first process (status {status})")


def probe_idle_priority() -> None:
    """Check that this process may give a child waiting at idle priority its normal priority back."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write)
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
    finally:
        os.close(write)
        os.waitpid(pid, 0)


def _readable(fd: int) -> bool:
    """Whether `fd` can be read now (poll, not select: a busy zygote's fds pass select's limit of 1024)."""
    poller = select.poll()
    poller.register(fd, _IN)
    return bool(poller.poll(0))


def _try(action: Any) -> bool | str:
    try:
        action()
    except OSError as exc:
        return str(exc)
    return True


def main() -> None:
    """Entry point: `python -c ... <control fd> <label> <root> <Boot JSON>`."""
    fd, boot = int(sys.argv[1]), _wire.decode(sys.argv[4].encode(), Boot)
    if boot.version != _wire.VERSION:
        raise SystemExit(f"funcsmith sandbox: the server speaks version {boot.version}, this zygote {_wire.VERSION}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    _linux.set_parent_death_signal(signal.SIGTERM)  # the server died: stop every call and clean up
    if not boot.once:  # preloaded for the many calls forked from this interpreter; one call would pay for them
        for name in PRELOAD:
            __import__(name)
    control = socket.socket(fileno=fd)
    zygote = Zygote(control, boot)
    zygote.remove_stale()  # before the mount view, which may cover the folder their leftovers are in
    zygote.isolate([*boot.pool.read_paths, boot.pool.data_root])
    _worker.scrub_environment()  # the scratch root is known: its TMPDIR, and all else the server gave, go
    gc.collect()
    gc.freeze()  # forked calls then never touch (and copy) the zygote's objects when they collect garbage
    try:
        control.sendall(_wire.encode(Ready(Op.READY, zygote.facts)))
        zygote.refill()
        zygote.serve()
    except (SystemExit, BrokenPipeError, ConnectionResetError):  # stopped, or the server went away (Ctrl-C)
        zygote.shutdown()


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")
