"""Sandbox: the server-side handle that runs each call in a fresh, locked-down process.

The server never imports function code. A call's request (source text,
function name, arguments, limits, allowed paths) goes over a socket to a
supervisor forked by the zygote; the reply comes back the same way.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from mcp_server.sandbox import protocol
from mcp_server.sandbox.model import CallResult, Limits, SandboxGrant
from mcp_server.sandbox.outcome import from_reply, sandbox_failure
from mcp_server.sandbox.paths import python_read_paths
from mcp_server.sandbox.probe import ROOT, logger, warn_missing

# The zygote imports only the modules a call needs: registering the two packages by path skips their
# __init__ (and with it asyncio and this module), which keeps the zygote small and every fork of it cheap.
_BOOT = """
import sys, types
for name in ("mcp_server", "mcp_server.sandbox"):
    package = sys.modules[name] = types.ModuleType(name)
    package.__path__ = [sys.argv[4] + "/" + name.replace(".", "/")]
from mcp_server.sandbox.zygote import main
main()
"""
_GRACE_S = 2.0  # how long past its own timeout the supervisor may take before the server steps in
_DRAIN_S = 5.0


class _Zygote:
    """One running zygote and the control socket to it."""

    def __init__(self, process: asyncio.subprocess.Process, control: socket.socket, facts: dict[str, Any]) -> None:
        self.process = process
        self.control = control
        self.facts = facts

    @classmethod
    async def start(cls, label: str, *, network: bool) -> _Zygote:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-c", _BOOT,
                str(theirs.fileno()), label, "online" if network else "offline", ROOT,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
            )  # fmt: skip
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
        facts = json.loads(data)
        warn_missing(facts)
        logger.debug("sandbox zygote %s ready: %s", facts.get("pid"), facts)
        return cls(process, ours, facts)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and self.control.fileno() >= 0

    def run(self, call_id: int, sock: socket.socket) -> None:
        message = json.dumps({"v": protocol.VERSION, "op": "run", "id": call_id}).encode()
        fds = array.array("i", [sock.fileno()])
        self.control.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])

    def kill(self, call_id: int) -> None:
        with contextlib.suppress(OSError):
            self.control.send(json.dumps({"v": protocol.VERSION, "op": "kill", "id": call_id}).encode())

    async def close(self) -> None:
        """Close the control socket (the zygote stops every call it started) and wait for it to exit."""
        self.control.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


class Sandbox:
    """Runs functions from source text, each call in a fresh, locked-down process forked from a zygote."""

    def __init__(self, data_root: Path, *, limits: Limits = Limits(), max_concurrency: int | None = None) -> None:  # noqa: B008
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
        self.data_root = Path(data_root).expanduser().resolve()
        self.limits = limits
        self.max_concurrency = max_concurrency or max(4, 4 * (os.cpu_count() or 1))
        self._slots = asyncio.Semaphore(self.max_concurrency)
        self._zygotes: dict[bool, _Zygote] = {}
        self._starting: dict[bool, asyncio.Lock] = {False: asyncio.Lock(), True: asyncio.Lock()}
        self._ids = itertools.count(1)
        self._made: set[Path] = set()
        self._closed = False

    async def __aenter__(self) -> Sandbox:
        await self._zygote(network=False)
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
        grant = grant or SandboxGrant()
        limits = self.limits.for_grant(grant)
        home = self._home(module, data_dir)
        granted = [str(Path(p).expanduser().resolve()) for p in (*grant.read_paths, *grant.write_paths)]
        request = {
            "module": module,
            "source": source,
            "filename": filename,
            "function": function,
            "arguments": dict(arguments),
            "data_dir": str(home),
            "read_paths": [*python_read_paths(), *granted[: len(grant.read_paths)]],
            "write_paths": granted[len(grant.read_paths) :],
            "granted": granted,
            "network": grant.network,
            "limits": {
                "timeout_s": limits.timeout_s,
                "cpu_s": limits.cpu_s,
                "memory_mb": limits.memory_mb,
                "file_size_mb": limits.file_size_mb,
                "processes": limits.processes,
                "open_files": limits.open_files,
                "output_bytes": limits.output_bytes,
                "result_bytes": limits.result_bytes,
            },
        }
        try:
            payload = protocol.encode(request)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"Sandbox.call: arguments for {function} are not JSON: {exc}") from None
        async with self._slots:
            zygote = await self._zygote(network=grant.network)
            return await self._run(zygote, payload, limits)

    def _home(self, module: str, data_dir: Path | None) -> Path:
        """The call's data folder (its HOME), created on first use."""
        if data_dir is None:
            if "/" in module or module in {".", ".."}:
                raise ValueError(f"Sandbox.call: module name {module!r} cannot name a data folder")
            home = self.data_root / module
        else:
            home = Path(data_dir).expanduser().resolve()
        if home not in self._made:
            home.mkdir(parents=True, exist_ok=True)
            self._made.add(home)
        return home

    async def _zygote(self, *, network: bool) -> _Zygote:
        zygote = self._zygotes.get(network)
        if zygote is not None and zygote.alive:
            return zygote
        async with self._starting[network]:
            zygote = self._zygotes.get(network)
            if zygote is None or not zygote.alive:
                if zygote is not None:
                    logger.warning("sandbox zygote %s died; starting a new one", zygote.facts.get("pid"))
                    await zygote.close()
                zygote = await _Zygote.start(str(self.data_root), network=network)
                if self._closed:
                    await zygote.close()
                    raise RuntimeError("this Sandbox was closed while it started")
                self._zygotes[network] = zygote
            return zygote

    async def _run(self, zygote: _Zygote, payload: bytes, limits: Limits) -> CallResult:
        started = time.monotonic()
        call_id = next(self._ids)
        ours, theirs = socket.socketpair()
        try:
            with theirs:
                zygote.run(call_id, theirs)
        except OSError as exc:
            ours.close()
            return sandbox_failure("Crashed", f"the sandbox zygote is gone: {exc}", elapsed=time.monotonic() - started)
        ours.setblocking(False)
        limit = limits.result_bytes + 8 * limits.output_bytes + (1 << 20)
        try:
            raw = await asyncio.wait_for(_exchange(ours, payload, limit), limits.timeout_s + _GRACE_S)
            reply = protocol.decode(raw, limit=limit)
        except TimeoutError:
            zygote.kill(call_id)
            _drain(ours)
            message = f"the call ran longer than {limits.timeout_s:g} s and was stopped"
            return sandbox_failure("Timeout", message, elapsed=time.monotonic() - started, limit_s=limits.timeout_s)
        except protocol.ProtocolError as exc:
            zygote.kill(call_id)
            _drain(ours)
            return sandbox_failure(
                "ProtocolError", f"bad reply from the call supervisor: {exc}", elapsed=time.monotonic() - started
            )
        except BaseException:  # cancelled (or the loop is going down): kill the tree before letting go
            zygote.kill(call_id)
            _drain(ours)
            raise
        finally:
            ours.close()
        return from_reply(reply, limits, elapsed=time.monotonic() - started)


async def _exchange(sock: socket.socket, payload: bytes, limit: int) -> bytes:
    """Send the request, then read the one reply frame (the supervisor's socket closes with it)."""
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, payload)
    data = bytearray()
    while True:
        chunk = await loop.sock_recv(sock, 1 << 18)
        if not chunk:
            if not data:
                raise protocol.ProtocolError("the call supervisor closed its socket without a reply")
            return bytes(data)
        data += chunk
        if len(data) > limit + 8:
            raise protocol.ProtocolError(f"the reply is larger than {limit} bytes")
        if len(data) >= 8 and len(data) >= 8 + int.from_bytes(data[:8], "big"):
            return bytes(data)


def _drain(sock: socket.socket) -> None:
    """Wait (blocking, briefly) until the supervisor has closed its socket: by then the call's tree is dead."""
    deadline = time.monotonic() + _DRAIN_S
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while (left := deadline - time.monotonic()) > 0:
        if not poller.poll(int(left * 1000) + 1):
            continue
        try:
            if not sock.recv(1 << 18):
                return
        except BlockingIOError:
            continue
        except OSError:
            return
    logger.warning("sandbox: a cancelled call's supervisor did not finish within %s s", _DRAIN_S)
