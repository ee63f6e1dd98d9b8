"""Sandbox: the server-side handle that runs each call in a fresh, locked-down process.

The server never imports function code. A call's request (source text,
function name, arguments, limits, allowed paths) goes over a socket, and the
reply comes back the same way from the call's supervisor. By default
(`start="fork"`) the socket leads to a pooled call process the zygote forked
and locked down ahead of time (or, when the pool is empty or the call's grant
needs more than the pool's lockdown allows, to the zygote, which forks one for
it), and the pooled call process sends the reply itself (the zygote, which
supervises every call process, replies for cold calls and for calls that end
without replying: a timeout, a crash, a cancellation).
With `start="spawn"` (the naive design, and the fallback where a long-lived zygote
cannot run) every call starts a fresh zygote of its own, without a pool: the same
supervisor and lockdown, with a whole interpreter start per call.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import fcntl
import itertools
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from mcp_server.sandbox import _calluser, _code, _wire
from mcp_server.sandbox._cleanup import temp_prefix
from mcp_server.sandbox._model import ENVIRONMENT, CallResult, Limits, SandboxGrant
from mcp_server.sandbox._outcome import from_reply, sandbox_failure, timeout
from mcp_server.sandbox._paths import python_read_paths
from mcp_server.sandbox._probe import ROOT, logger, warn_missing
from mcp_server.sandbox._quota import DataQuotas
from mcp_server.sandbox._wire import Boot, ErrorType, Facts, Kill, Op, Pool, Pooled, PoolFailed, Ready, Request, Run

_Opened = tuple[socket.socket, "_Zygote", Callable[[], None]]  # the call's socket, its zygote, what stops the call

# The zygote imports only the modules a call needs: registering the two packages by path skips
# their __init__ (and with it asyncio and this module), which keeps the zygote small and every fork of it cheap.
BOOT = """
import sys, types
for name in ("mcp_server", "mcp_server.sandbox"):
    package = sys.modules[name] = types.ModuleType(name)
    package.__path__ = [sys.argv[3] + "/" + name.replace(".", "/")]
from mcp_server.sandbox._zygote import main
main()
"""
_GRACE_S = 2.0  # how long past its own timeout the supervisor may take before the server steps in
_NO_GRANT = SandboxGrant()
_PF_EXITING = 0x4  # in the flags of /proc/PID/stat: the process has begun to exit


async def _boot(channel: socket.socket, label: str, boot: Boot) -> asyncio.subprocess.Process:
    """Start a fresh `python -I` running a zygote, talking over `channel`."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-c", BOOT, str(channel.fileno()), label, ROOT, _wire.encode(boot).decode(),
        pass_fds=(channel.fileno(),),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env={**ENVIRONMENT, "TMPDIR": tempfile.gettempdir()},  # where the sandbox's scratch folders go
        start_new_session=True,
    )  # fmt: skip


class _Zygote:
    """One running zygote, the control socket to it, and the pooled calls' sockets it handed over."""

    def __init__(self, process: asyncio.subprocess.Process, control: socket.socket, facts: Facts) -> None:
        self.process = process
        self.control = control
        self.facts = facts
        self.pool: collections.deque[tuple[int, socket.socket]] = collections.deque()
        self.replaced = False
        self.stat = os.open(f"/proc/{process.pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        asyncio.get_running_loop().add_reader(control.fileno(), self._receive)

    @classmethod
    async def start(cls, label: str, boot: Boot) -> _Zygote:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            process = await _boot(theirs, label, boot)
        ours.setblocking(False)
        try:
            data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(ours, 65536), 30)
        except (TimeoutError, OSError) as exc:
            ours.close()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise RuntimeError(f"the sandbox zygote did not start: {exc or 'no answer in 30 s'}") from None
        if not data:
            ours.close()
            code = await process.wait()
            raise RuntimeError(f"the sandbox zygote exited with code {code} before it was ready (see its stderr)")
        ours.setblocking(True)
        try:
            ready = _wire.decode(data, Ready)
        except _wire.ProtocolError as exc:
            ours.close()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise RuntimeError(f"the sandbox zygote did not start: {exc}") from None
        warn_missing(ready.facts)
        logger.debug("sandbox zygote %s ready: %s", ready.facts.pid, ready.facts)
        return cls(process, ours, ready.facts)

    @property
    def alive(self) -> bool:
        """Whether calls may go to this zygote: not dead, replaced or exiting.

        An exiting zygote keeps its sockets open for a while after its memory is gone: a pooled call process
        could still take a request then, only to be killed with its zygote right after.
        """
        return self.process.returncode is None and self.control.fileno() >= 0 and not self.replaced and not self.exiting

    @property
    def exiting(self) -> bool:
        try:
            flags = int(os.pread(self.stat, 1024, 0).rsplit(b")", 1)[1].split()[6])
        except (OSError, IndexError, ValueError):
            return True
        return bool(flags & _PF_EXITING)

    def _receive(self) -> None:
        """Take in what the zygote sent: pooled calls' sockets, or word that the pool failed."""
        fds = array.array("i")
        while True:
            try:
                data, ancdata, _, _ = self.control.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize), socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data, ancdata = b"", []
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            if not data:  # the zygote is gone; the next call notices and starts another
                asyncio.get_running_loop().remove_reader(self.control.fileno())
                return
            message = _wire.decode_control(data)
            if isinstance(message, Pooled) and len(fds) == 1:
                self.pool.append((message.pid, socket.socket(fileno=fds.pop())))
            elif isinstance(message, PoolFailed):
                logger.warning("sandbox: a pooled call process failed (status %s); no more pool", message.status)
            for fd in fds:
                os.close(fd)
            del fds[:]

    def take(self) -> tuple[int, socket.socket] | None:
        """A pooled call process still waiting for its call (its pid and socket), if there is one."""
        while self.pool:
            pid, sock = self.pool.popleft()
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            if not poller.poll(0):  # the zygote never writes first: anything readable means the call is gone
                return pid, sock
            sock.close()
        return None

    def run(self, call_id: int, sock: socket.socket) -> None:
        message = _wire.encode(Run(Op.RUN, call_id))
        fds = array.array("i", [sock.fileno()])
        self.control.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())], socket.MSG_DONTWAIT)

    def kill(self, *, id: int = 0, pid: int = 0) -> None:
        """Have the zygote stop one call: a cold one by its `id`, a pooled one by its `pid` (never waiting on it)."""
        with contextlib.suppress(OSError):
            self.control.send(_wire.encode(Kill(Op.KILL, id=id, pid=pid)), socket.MSG_DONTWAIT)

    def stuck(self) -> None:
        """The zygote failed to start or end a call: kill it (with every call of its), to be replaced."""
        if self.process.returncode is None:
            logger.warning("sandbox: zygote %s failed to start or end a call; replacing it", self.facts.pid)
            _signal(self.process, signal.SIGKILL)
        self.replaced = True

    async def retire(self) -> None:
        """Wait for a zygote that serves one call to exit by itself, then let go of it."""
        await self.process.wait()
        await self.close()

    async def close(self) -> None:
        """Close the control socket (the zygote stops every call it started) and wait for it to exit."""
        if self.control.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(self.control.fileno())
        while self.pool:
            self.pool.popleft()[1].close()
        self.control.close()
        if self.stat >= 0:
            os.close(self.stat)
            self.stat = -1
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


class Sandbox:
    """Runs functions from source text, each call in a fresh, locked-down process.

    `start="fork"` (the default) forks every call from a pre-started zygote, which keeps
    `pool_size` call processes forked and locked down ahead of time for calls with the
    default limits and no grant; `start="spawn"` starts a fresh zygote without a pool per
    call instead (many times slower per call, but needs no long-lived zygote). A zygote
    that cannot start falls back to "spawn", with a warning.
    """

    def __init__(
        self,
        data_root: Path,
        *,
        limits: Limits = Limits(),  # noqa: B008
        max_concurrency: int | None = None,
        start: Literal["fork", "spawn"] = "fork",
        pool_size: int = 4,
    ) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
        if start not in ("fork", "spawn"):
            raise ValueError(f"start must be 'fork' or 'spawn', not {start!r}")
        if pool_size < 0:
            raise ValueError(f"pool_size must be 0 or more, not {pool_size}")
        self.data_root = Path(data_root).expanduser().resolve()
        self.limits = limits
        self.max_concurrency = max_concurrency or max(4, 4 * (os.cpu_count() or 1))
        self.start = start
        self.pool_size = pool_size
        self._slots = asyncio.Semaphore(self.max_concurrency)
        self._zygotes: dict[bool, _Zygote] = {}
        self._starting: dict[bool, asyncio.Lock] = {False: asyncio.Lock(), True: asyncio.Lock()}
        self._spawned: dict[_Zygote, asyncio.Task[None]] = {}  # the zygote of each spawned call, until it has exited
        self._ids = itertools.count(1)
        self._ending: set[asyncio.Future[None]] = set()  # calls answered whose tree may still be dying
        self._quotas = DataQuotas()
        self._made: set[Path] = set()
        self._homes: dict[str, Path] = {}  # each module's data folder, once made
        self._stand_ins: dict[Path, Path] = {}
        self._closed = False

    async def __aenter__(self) -> Sandbox:
        problem: str | None = None
        try:
            self.data_root.mkdir(parents=True, exist_ok=True)  # the pool's Landlock layer needs it to exist
            if not os.access(self.data_root, os.W_OK):
                problem = "is read-only"
            _calluser.open_to_calls(self.data_root)
        except OSError as exc:
            problem = problem or f"cannot be created ({exc.strerror or exc})"
            self.pool_size = 0  # every call gets a read-only stand-in home instead (see _home)
        if problem is not None:
            logger.warning(
                "sandbox: the data folder %s %s; functions that keep data in ~ will fail, the others work",
                self.data_root,
                problem,
            )
        if self.start == "fork":
            try:
                await self._zygote(network=False)
            except RuntimeError as exc:
                logger.warning("sandbox: %s; starting a fresh interpreter per call instead", exc)
                self.start = "spawn"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the zygotes; every call still running is killed with its whole process tree."""
        self._closed = True
        zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            await zygote.close()
        for zygote, retired in list(self._spawned.items()):  # one whose call still runs stops it as it closes
            await zygote.close()
            await retired
        if self._ending:  # each ends as soon as its supervisor is gone
            await asyncio.wait(set(self._ending))
        for stand_in in self._stand_ins.values():
            shutil.rmtree(stand_in, ignore_errors=True)

    async def call(
        self,
        *,
        module: str,
        source: str,
        filename: str,
        function: str,
        arguments: Mapping[str, Any],
        grant: SandboxGrant | None = None,
        data_dir: Path | None = None,
    ) -> CallResult:
        """Run `function(**arguments)` from `source` in a fresh sandboxed process; never raises for what it does."""
        if self._closed:
            raise RuntimeError("this Sandbox is closed")
        for name, value in (("module", module), ("source", source), ("filename", filename), ("function", function)):
            if not isinstance(value, str) or (not value and name != "source"):
                raise TypeError(f"Sandbox.call: {name} must be a non-empty string, not {value!r}")
        if not isinstance(arguments, Mapping):
            raise TypeError(f"Sandbox.call: arguments must be a mapping, not {type(arguments).__name__}")
        if grant is None:  # most calls: nothing to widen
            grant, limits = _NO_GRANT, self.limits
        else:
            limits = self.limits.for_grant(grant)
        home = self._home(module, data_dir)
        granted = [str(Path(p).expanduser().resolve()) for p in (*grant.read_paths, *grant.write_paths)]
        request = Request(
            module=module,
            source=source,
            code=_code.marshalled(source, filename),
            filename=filename,
            function=function,
            arguments=dict(arguments),
            data_dir=str(home),
            read_paths=[*python_read_paths(), *granted[: len(grant.read_paths)]],
            write_paths=granted[len(grant.read_paths) :],
            granted=granted,
            network=grant.network,
            limits=limits,
            data=await self._quotas.room(home, limits),
        )
        try:
            payload = _wire.frame(request)
        except TypeError as exc:
            raise TypeError(f"Sandbox.call: arguments for {function} are not JSON: {exc}") from None
        poolable = not (grant.network or granted) and limits == self.limits and home.is_relative_to(self.data_root)
        await self._slots.acquire()
        slot = _Slot(self._slots, self._ending, after=partial(self._quotas.remeasure, home, limits))
        try:
            for attempt in range(2):  # a request its supervisor never took (it died first) is sent anew, once
                if self.start == "spawn":
                    opened = await self._spawn(network=grant.network)
                else:  # anew, never pooled: a dead zygote's pool may hold processes not yet gone
                    opened = await self._open(network=grant.network, poolable=poolable and not attempt)
                if isinstance(opened, CallResult):
                    return opened
                sock, zygote, kill = opened
                watch = self._quotas.watch(home, limits, kill)
                try:
                    result = await _exchange(sock, payload, limits, slot.ender(zygote.stuck), zygote, kill=kill)
                finally:
                    watch.close()
                await watch.settle()
                if result is not None:
                    break
            else:
                return _not_started("its supervisor went away twice before it took the request")
            if watch.passed is not None:
                details = {"limit_mb": limits.data_quota_mb, "limit_files": limits.data_files}
                return sandbox_failure(ErrorType.DATA_QUOTA, watch.message(), elapsed=result.elapsed_s, **details)
            return result
        finally:
            slot.release_unless_handed()

    async def _open(self, *, network: bool, poolable: bool) -> _Opened | CallResult:
        """A socket to a pooled call process or, for a cold call, to the zygote, which forks one for it."""
        for attempt in range(2):  # a zygote that died since the last call is replaced, once
            zygote = await self._zygote(network=network)
            if zygote.facts.view is not True:  # the call user cannot work here: no call can start
                return _not_started(zygote.facts.view)
            pooled = zygote.take() if poolable else None
            if pooled is not None:
                pid, sock = pooled
                return sock, zygote, partial(zygote.kill, pid=pid)
            call_id = next(self._ids)
            ours, theirs = socket.socketpair()
            try:
                with theirs:
                    zygote.run(call_id, theirs)
            except OSError as exc:
                ours.close()
                zygote.stuck()
                if attempt:
                    return _not_started(exc)
                continue
            return ours, zygote, partial(zygote.kill, id=call_id)
        raise AssertionError("unreachable")

    async def _spawn(self, *, network: bool) -> _Opened | CallResult:
        """A socket to a fresh zygote of this call's own, without a pool: it serves the call, then exits."""
        try:
            zygote = await _Zygote.start(str(self.data_root), Boot(network, self._pool(size=0), once=True))
        except (RuntimeError, OSError) as exc:
            return _not_started(exc)
        if zygote.facts.view is not True:
            await zygote.close()
            return _not_started(zygote.facts.view)
        self._spawned[zygote] = asyncio.create_task(zygote.retire())
        self._spawned[zygote].add_done_callback(lambda _: self._spawned.pop(zygote, None))
        ours, theirs = socket.socketpair()
        try:
            with theirs:
                zygote.run(1, theirs)
        except OSError as exc:
            ours.close()
            zygote.stuck()
            return _not_started(exc)
        return ours, zygote, partial(zygote.kill, id=1)

    def _pool(self, *, size: int) -> Pool:
        """What a zygote's pool is made for: this Sandbox's limits, Python and its data root."""
        return Pool(size=size, limits=self.limits, read_paths=list(python_read_paths()), data_root=str(self.data_root))

    def _home(self, module: str, data_dir: Path | None) -> Path:
        """The call's data folder (its HOME), created on first use."""
        if data_dir is None:
            if (known := self._homes.get(module)) is not None:
                return known
            if "/" in module or module in {".", ".."}:
                raise ValueError(f"Sandbox.call: module name {module!r} cannot name a data folder")
            home = self.data_root / module
        else:
            home = Path(data_dir).expanduser().resolve()
        if home not in self._made:
            try:
                home.mkdir(parents=True, exist_ok=True)
                _calluser.hand_over(home)
            except OSError as exc:
                return self._stand_in_home(home, exc)
            self._made.add(home)
        if data_dir is None:
            self._homes[module] = home
        return home

    def _stand_in_home(self, home: Path, exc: OSError) -> Path:
        """An empty, read-only home for calls whose data folder cannot be created (a read-only or bad data root).

        The call still runs; writing to ~ fails in it with a clear OSError, and a function that keeps no
        data never notices. One per data folder, removed when the server stops.
        """
        stand_in = self._stand_ins.get(home)
        if stand_in is None:
            logger.debug("sandbox: data folder %s cannot be created (%s)", home, exc.strerror or exc)
            stand_in = self._stand_ins[home] = Path(tempfile.mkdtemp(prefix=temp_prefix("no-data")))
            stand_in.chmod(0o555)  # the call has no capabilities: not even root may write there
        return stand_in

    async def _zygote(self, *, network: bool) -> _Zygote:
        zygote = self._zygotes.get(network)
        if zygote is not None and zygote.alive:
            return zygote
        async with self._starting[network]:
            zygote = self._zygotes.get(network)
            if zygote is None or not zygote.alive:
                if zygote is not None:
                    logger.warning("sandbox zygote %s died; starting a new one", zygote.facts.pid)
                    await zygote.close()
                with contextlib.suppress(OSError):  # one that cannot be created was reported at start
                    self.data_root.mkdir(parents=True, exist_ok=True)
                pool = self._pool(size=0 if network else self.pool_size)
                zygote = await _Zygote.start(str(self.data_root), Boot(network, pool))
                if self._closed:
                    await zygote.close()
                    raise RuntimeError("this Sandbox was closed while it started")
                self._zygotes[network] = zygote
            return zygote


def _not_started(exc: BaseException | str) -> CallResult:
    return sandbox_failure(ErrorType.NOT_STARTED, f"the sandbox could not start the call: {exc}", elapsed=0.0)


class _Slot:
    """One call's hold on a concurrency slot: let go once the call's whole tree is dead, or when it never ran."""

    def __init__(
        self,
        slots: asyncio.Semaphore,
        ending: set[asyncio.Future[None]],
        *,
        after: Callable[[], Awaitable[None] | None],
    ) -> None:
        self.slots = slots
        self.ending = ending
        self.after = after  # what to do once the tree is dead, before the slot is let go (None: done already)
        self.handed = False
        self.held = True

    def ender(self, stuck: Callable[[], None]) -> Callable[[socket.socket, float], None]:
        """What takes over the call's socket once its reply is in (or it was given up).

        `stuck` replaces the call's supervisor when it has not closed the socket by the deadline.
        """

        def end(sock: socket.socket, deadline: float) -> None:
            self.handed = True
            _Ending(self, sock, deadline, stuck)

        return end

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()

    def release_unless_handed(self) -> None:
        if not self.handed:
            self.release()


class _Ending:
    """Waits for the supervisor to close its end of a call's socket: it does once nothing of the call is alive.

    A reader callback and a timer, not a task: this runs for every call.
    """

    def __init__(self, slot: _Slot, sock: socket.socket, deadline: float, stuck: Callable[[], None]) -> None:
        self.loop = asyncio.get_running_loop()
        self.slot, self.sock, self.stuck = slot, sock, stuck
        self.done = self.loop.create_future()
        slot.ending.add(self.done)
        self.done.add_done_callback(slot.ending.discard)
        self.timer = self.loop.call_later(max(0.0, deadline - time.monotonic()), self._late)
        self.loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            if self.sock.recv(1 << 16):
                return  # whatever the call still sends after its reply is dropped
        except BlockingIOError:
            return
        except OSError:
            pass
        self._closed()

    def _late(self) -> None:
        self.stuck()
        self._closed()

    def _closed(self) -> None:
        self.timer.cancel()
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        pending = self.slot.after()
        if pending is None:
            self._finish()
        else:
            self.loop.create_task(pending).add_done_callback(self._finish)  # type: ignore[arg-type]

    def _finish(self, task: asyncio.Future[None] | None = None) -> None:
        if task is not None and not task.cancelled() and task.exception() is not None:
            logger.warning("sandbox: after a call: %s", task.exception())
        self.slot.release()
        if not self.done.done():
            self.done.set_result(None)


async def _exchange(
    sock: socket.socket,
    payload: bytes,
    limits: Limits,
    end: Callable[[socket.socket, float], None],
    zygote: _Zygote,
    *,
    kill: Callable[[], None],
) -> CallResult | None:
    """Send the request to a call's supervisor and turn its reply into a CallResult; `kill` stops the call.

    The socket then goes to `end`, which holds the call's slot until the supervisor closes it. None when the
    supervisor went away before it took the whole request, so that nothing of the call ran: the kernel resets
    a unix socket closed with data unread, and refuses to send to one already closed.
    """
    started = time.monotonic()
    taken = True
    sock.setblocking(False)
    reader = _wire.ReplyReader(limit=limits.result_bytes + 8 * limits.output_bytes + (1 << 20))
    try:
        async with asyncio.timeout(limits.timeout_s + _GRACE_S):
            await _send_and_receive(sock, payload, reader)
    except TimeoutError:
        kill()
        elapsed = time.monotonic() - started
        if _unread(sock):  # the request is still in the socket: nothing ever took it
            message = f"the sandbox could not start the call: its supervisor did not take it within {elapsed:.0f} s"
            return sandbox_failure(ErrorType.NOT_STARTED, message, elapsed=elapsed)
        message, details = timeout(limits, None)
        return sandbox_failure(ErrorType.TIMEOUT, message, elapsed=elapsed, **details)
    except (_wire.ProtocolError, OSError) as exc:
        if isinstance(exc, BrokenPipeError | ConnectionResetError) and not reader.data:
            taken = False
            return None
        kill()
        if not reader.data and not zygote.alive:  # killed with its zygote, which had no time to say so
            message = "the sandbox's supervisor died while the call ran, and the call was stopped with it"
            return sandbox_failure(ErrorType.CRASHED, message, elapsed=time.monotonic() - started)
        return sandbox_failure(
            ErrorType.PROTOCOL_ERROR, f"bad reply from the call supervisor: {exc}", elapsed=time.monotonic() - started
        )
    except BaseException:  # cancelled (or the loop is going down): kill the tree before letting go
        kill()
        raise
    finally:
        if taken:
            end(sock, started + limits.timeout_s + 2 * _GRACE_S)
        else:
            sock.close()
    assert reader.reply is not None
    return from_reply(reader.reply, reader.blobs, limits, elapsed=time.monotonic() - started)


def _unread(sock: socket.socket) -> int:
    """How many bytes sent on `sock` its peer has not read yet."""
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except OSError:
        return 0


async def _send_and_receive(sock: socket.socket, payload: bytes, reader: _wire.ReplyReader) -> None:
    """Send the request, then read until the reply is complete."""
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, payload)
    while True:
        chunk = await loop.sock_recv(sock, 1 << 18)
        if not chunk:
            what = "without a reply" if not reader.data else "in the middle of its reply"
            raise _wire.ProtocolError(f"the call supervisor closed its socket {what}")
        if reader.feed(chunk):
            return


def _signal(process: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)
