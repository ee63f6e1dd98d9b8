"""The call process: lock itself down, then (and only then) load and run the function's code.

It runs as the first process of the call's own PID namespace, forked from the
zygote's copy of the interpreter, so no interpreter start is paid per call.
A pooled call process locks itself down *before* its call is known, with the
pool's fixed limits and a base Landlock layer (Python, the whole data root and
the scratch root); when its one request comes, a second layer narrows it to the
call's own data folder and temp folder (Landlock layers only ever intersect).
Every call process also gets its own IPC namespace first (_namespaces.py) and, last,
the call user (_calluser.py) and the seccomp filter (_seccomp.py), right before any
function code is loaded. Locked down, a pooled call process rehearses a made-up call,
so that its real one finds the pages it writes to copied and its caches warm; unless its
request is already there, which would then wait for the rehearsal too.
"""

from __future__ import annotations

import _signal
import contextlib
import errno
import linecache
import os
import resource
import signal
import socket
import sys
import tempfile
import traceback
import types
from collections.abc import Iterable
from dataclasses import replace
from typing import NamedTuple, NoReturn

from mcp_server.sandbox import _calluser, _cgroup, _code, _landlock, _linux, _namespaces, _seccomp, _tmpfs, _wire
from mcp_server.sandbox._jsonify import NotJSONError, to_json
from mcp_server.sandbox._model import ENVIRONMENT, Limits
from mcp_server.sandbox._wire import DataRoom, ErrorType, Fault, Mark, Outcome, Pool, Reply, Request, Role, Stop

_MIB = 1 << 20
_TRACEBACK_FRAMES = 8
# The signals a call gets back to their default action. Through _signal, the C module under `signal`: the
# wrappers turn every result into an enum, which in a process just forked costs about 60 copied pages.
_DEFAULT_SIGNALS = tuple(
    int(s) for s in (signal.SIGXFSZ, signal.SIGXCPU, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
)
_REHEARSAL_SOURCE = "def add(a: int, b: int) -> int:\n    return a + b\n"
_REHEARSAL = _wire.frame(
    Request(
        module="rehearsal",
        source=_REHEARSAL_SOURCE,
        code=_code.marshalled(_REHEARSAL_SOURCE, "<rehearsal>"),
        filename="<rehearsal>",
        function="add",
        arguments={"a": 1, "b": 2},
        data_dir="",
        read_paths=[],
        write_paths=[],
        granted=[],
        network=False,
        limits=Limits(),
        data=DataRoom(room_bytes=0, full=False),
    )
)  # what a pooled call process rehearses with


def run(request: Request, *, out_fd: int, err_fd: int, result_fd: int, group: _cgroup.Slot | None) -> NoReturn:
    """Lock down for this request, run the requested function, write one Outcome frame to `result_fd`, exit."""
    me = os.getpid()
    try:
        _namespaces.enter([*request.read_paths, *request.write_paths, request.data_dir], request.tmp_dir)
        contain(request.limits, out_fd=out_fd, err_fd=err_fd, keep=(result_fd,), group=group)
        own_temp(request.tmp_dir, request.limits)
        limit_data(request.data)
        settle(request.data_dir, request.tmp_dir)
        problems = confine(request)
        outcome = call(request)
        if problems:
            outcome = replace(outcome, problems=problems)
    except BaseException as exc:  # the lockdown itself failed: never run the function unconfined
        outcome = setup_failed(exc)
    finish(outcome, me=me, result_fd=result_fd, result_bytes=request.limits.result_bytes)


def run_pooled(
    pool: Pool,
    *,
    request_fd: int,
    out_fd: int,
    err_fd: int,
    result_fd: int,
    group: _cgroup.Slot | None,
    tmp_dir: str,
    landlock_abi: int,
    layers: PoolLayers | OSError | None,
) -> NoReturn:
    """Lock down with the pool's base layer, wait for the one request, narrow to it, run it, exit.

    `layers` are the pool's Landlock layers, made once by the zygote (None without Landlock).

    The request comes straight from the server on `request_fd` (the call's socket), and the
    reply goes back on it from this process (the function's code could write to it too, but
    only to garble its own call's reply); the STARTED byte tells the zygote to start the clock.
    A lockdown failure is kept and reported as this call's result when the request comes,
    so a broken machine shows a clear error instead of a pool that dies and refills forever.
    """
    me = os.getpid()
    failed: BaseException | None = None
    layer = -1
    try:
        keep = (result_fd, request_fd, out_fd, err_fd, *(layers.fds if isinstance(layers, PoolLayers) else ()))
        contain(pool.limits, out_fd=out_fd, err_fd=err_fd, keep=keep, group=group)
        _namespaces.enter([*pool.read_paths, pool.data_root], tmp_dir)
        own_temp(tmp_dir, pool.limits)
        if landlock_abi:
            if not isinstance(layers, PoolLayers):
                raise layers or OSError("the zygote made no Landlock layers for its pool")
            _landlock.restrict_self(layers.base)
            scratch, _ = _landlock.prepare(landlock_abi, read=(), write=[tmp_dir], files=())
            try:  # the second layer, less the call's data folder
                layer = _landlock.ruleset(landlock_abi, [*layers.python, *scratch], deny_tcp=True)
            finally:
                _landlock.release(scratch)
            os.close(layers.base)  # this process's copies of the zygote's handles
            _landlock.release(layers.python)
        else:
            _linux.no_new_privs()
        lock_in(tmp_dir)
        if peek(request_fd, wait=False) is None:  # a request already there would wait for the rehearsal too
            rehearse(tmp_dir)
    except BaseException as exc:
        failed = exc
    try:
        os.write(result_fd, Mark.READY)  # woken by its request, it runs at its normal priority at once
        if not peek(request_fd, wait=True):
            os._exit(0)  # the pool was shut down before a call came: nothing ran, nothing to report
        os.write(result_fd, Mark.STARTED)
    except OSError:  # the zygote is gone: the request stays unread, so the server knows nothing ran
        os._exit(0)
    try:
        request = _wire.read_frame(request_fd, Request, limit=_wire.REQUEST_LIMIT)
    except (OSError, _wire.ProtocolError):
        os._exit(0)
    request = replace(request, tmp_dir=tmp_dir)
    _linux.set_name(Role.CALL)
    try:
        if failed is not None:
            raise failed
        home, full = request.data_dir, request.data.full
        limit_data(request.data)
        if landlock_abi:  # the second layer: of the data root, only this call's folder (its temp is in already)
            write, prune = ([], [home]) if full else ([home], [])
            own, _ = _landlock.prepare(landlock_abi, read=(), write=write, files=(), prune=prune)
            _landlock.add_rules(layer, own)
            _landlock.restrict_self(layer)
            os.close(layer)
            _landlock.release(own)
        settle(home, tmp_dir)
        outcome = call(request)
    except BaseException as exc:
        outcome = setup_failed(exc)
    server = (request_fd, out_fd, err_fd, pool.limits.output_bytes)
    finish(outcome, me=me, result_fd=result_fd, result_bytes=pool.limits.result_bytes, server=server)


def rehearse(tmp: str) -> None:
    """Take a made-up call through the call's own steps (decode, settle, load its code, run, make the reply) before
    the request comes, in the call's temp folder, and forget its module.

    A forked process pays for each page of the zygote it first writes to (Python writes to every object it
    touches: the environment, the module and line caches) and for every cold cache: paid here, it is not paid
    on the call's path, after the request.
    """
    # `replace` too, as the request takes that step; the rehearsal's home is its temp folder
    request = replace(_wire.unframe(_REHEARSAL, Request, limit=_wire.REQUEST_LIMIT), data_dir=tmp, tmp_dir=tmp)
    settle(tmp, tmp)
    outcome = call(request)
    reply(outcome, result_bytes=request.limits.result_bytes, out_fd=1, err_fd=2, cap=request.limits.output_bytes)
    del sys.modules[request.module], linecache.cache[request.filename]


class PoolLayers(NamedTuple):
    """The Landlock layers of a zygote's pool, made once: every pooled call process inherits them.

    `base` is the first layer, a ruleset ready to apply: Python (read), the data root and the scratch root
    (write). `python` are the rules (path handles) the second layer starts from, before the call's own folders.
    """

    base: int
    python: list[_landlock.Rule]

    @property
    def fds(self) -> list[int]:
        return [self.base, *(rule.fd for rule in self.python)]


def pool_layers(pool: Pool, scratch: str, abi: int) -> PoolLayers:
    """Make the pool's Landlock layers (in the zygote): opening and adding a dozen rules is not paid per call."""
    python, _ = _landlock.prepare(abi, read=pool.read_paths, write=(), files=["/dev/null"])
    roots, missing = _landlock.prepare(abi, read=(), write=[pool.data_root, scratch], files=())
    try:
        if missing:
            raise FileNotFoundError(f"the sandbox's data or scratch root {missing[0]} does not exist")
        base = _landlock.ruleset(abi, [*python, *roots], deny_tcp=True)
    except OSError:
        _landlock.release(python)
        raise
    finally:
        _landlock.release(roots)
    return PoolLayers(base, python)


def peek(fd: int, *, wait: bool) -> bytes | None:
    """The first byte of the request on the call's socket `fd`, left there (b"" once the socket is closed);
    None when nothing has come yet and `wait` is False."""
    with socket.socket(fileno=os.dup(fd)) as sock:
        try:
            return sock.recv(1, socket.MSG_PEEK | (0 if wait else socket.MSG_DONTWAIT))
        except BlockingIOError:
            return None


def setup_failed(exc: BaseException) -> Outcome:
    if isinstance(exc, _namespaces.Unreachable):  # known before any function code: the call could not start
        return _sandbox_fault(ErrorType.NOT_STARTED, f"the sandbox could not start the call: {exc}")
    return _sandbox_fault(ErrorType.CRASHED, f"sandbox setup failed: {exc}")


def _sandbox_fault(kind: ErrorType, message: str, **details: object) -> Outcome:
    return Outcome(ok=False, fault=Fault.SANDBOX, error_type=kind, error_message=message, details=details)


def finish(
    outcome: Outcome,
    *,
    me: int,
    result_fd: int,
    result_bytes: int,
    server: tuple[int, int, int, int] | None = None,
) -> NoReturn:
    """Flush the function's output, write the Outcome frame (or why it is too large), exit.

    With `server` (the call's socket, the stdout and stderr memory files, the output cap), a pooled
    call process sends the server the whole reply itself: the zygote is off the reply's path.
    """
    if os.getpid() != me:  # a process the function forked came back here: it has nothing to report
        os._exit(0)
    if server is not None:
        sock, out_fd, err_fd, cap = server
        answer = reply(outcome, result_bytes=result_bytes, out_fd=out_fd, err_fd=err_fd, cap=cap)
        os.write(result_fd, Mark.REPLIED)  # from here on the zygote leaves the answer to this process
        _wire.write_all(sock, answer)
        os._exit(0)
    flush_output()
    _wire.write_all(result_fd, result_frame(outcome, result_bytes))
    os._exit(0)


def reply(outcome: Outcome, *, result_bytes: int, out_fd: int, err_fd: int, cap: int) -> bytes:
    """A pooled call's whole reply to the server: its Reply, its stdout and stderr (up to `cap`), its Outcome."""
    flush_output()
    frame = result_frame(outcome, result_bytes)
    out, err = read_output(out_fd, cap + 1), read_output(err_fd, cap + 1)
    stopped = Stop.OUTPUT_LIMIT if max(len(out), len(err)) > cap else None
    return _wire.encode_reply(Reply(stopped=stopped), out[:cap], err[:cap], b"" if stopped else frame)


def flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # output lost to a broken stream must not lose the result
            stream.flush()


def result_frame(outcome: Outcome, result_bytes: int) -> bytes:
    """The Outcome frame, or (past `result_bytes`) the frame saying the result is too large."""
    frame = _wire.frame(outcome)
    if len(frame) > result_bytes:
        message = f"the result is {len(frame)} bytes of JSON, more than the limit of {result_bytes} bytes"
        too_large = _sandbox_fault(ErrorType.RESULT_TOO_LARGE, message, limit_bytes=result_bytes, size_bytes=len(frame))
        frame = _wire.frame(too_large)
    return frame


def read_output(fd: int, size: int) -> bytes:
    """Up to `size` bytes of a pooled call's stdout or stderr memory file (nothing if the function closed it).

    Only what the file holds is read: a buffer of `size` bytes for each, most often empty, cost a call
    process about 30 µs on its path after the request.
    """
    try:
        held = os.fstat(fd).st_size
        return os.pread(fd, min(held, size), 0) if held else b""
    except OSError:
        return b""


def contain(limits: Limits, *, out_fd: int, err_fd: int, keep: Iterable[int], group: _cgroup.Slot | None) -> None:
    """The layers that do not depend on the call: cgroup, std streams, no other fds, signals, rlimits.

    The environment is the zygote's own, scrubbed once (see scrub_environment).
    """
    _linux.set_parent_death_signal(signal.SIGKILL)
    if group is not None:
        _cgroup.enter(group)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    kept = sorted({0, 1, 2, *keep})
    for low, high in zip(kept, [*kept[1:], 1 << 16], strict=True):
        os.closerange(low + 1, high)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
    for signum in _DEFAULT_SIGNALS:
        _signal.signal(signum, _signal.SIG_DFL)
    set_limits(limits, cap_processes=group is None)
    sys.dont_write_bytecode = True


def scrub_environment() -> None:
    """Leave only ENVIRONMENT in this process's environment: done once in the zygote, for all its call processes."""
    os.environ.clear()
    os.environ.update(ENVIRONMENT)


def own_temp(tmp: str, limits: Limits) -> None:
    """Make the call's temp folder a bounded tmpfs of its own where the kernel lets us (see _tmpfs.py).

    Where it does not (no mount namespace without privileges), the folder stays on disk, each
    file capped by RLIMIT_FSIZE, and the zygote removes what is left; `doctor` says which it is.
    """
    with contextlib.suppress(OSError):
        _tmpfs.mount_own(tmp, size_mb=limits.tmp_mb, files=limits.tmp_files)


def limit_data(data: DataRoom) -> None:
    """No file the call writes may pass the room left in its data folder's quota (see _quota.py)."""
    if data.full:  # Landlock lets the call add nothing to the folder
        return
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    room = max(data.room_bytes, 1)
    if soft == resource.RLIM_INFINITY or room < soft:
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))


def settle(home: str, tmp: str) -> None:
    """Make the call's data folder its home and working directory, and its scratch folder its temp."""
    os.chdir(home)
    os.environ.update({"HOME": home, "TMPDIR": tmp})
    tempfile.tempdir = tmp


def confine(request: Request) -> list[str]:
    """Landlock for exactly this request's paths, then the last layers; what is wrong with the granted paths."""
    problems = []
    home, tmp = request.data_dir, request.tmp_dir
    full = request.data.full
    if request.landlock_abi:
        missing = _landlock.restrict(
            abi=request.landlock_abi,
            read=request.read_paths,
            write=[*([] if full else [home]), tmp, *request.write_paths],
            files=["/dev/null"],
            deny_tcp=not request.network,
            prune=[home] if full else [],
        )
        problems += [f"granted path {p} does not exist" for p in missing if p in request.granted]
    else:
        _linux.no_new_privs()
    lock_in(tmp)
    writes = request.write_paths
    return problems + _calluser.closed(read=[p for p in request.granted if p not in writes], write=writes)


def lock_in(tmp: str) -> None:
    """The last layers, once the worker needs no privilege: the call user (given its temp folder as it is now
    mounted), no capabilities, the seccomp filter."""
    _calluser.hand_over(tmp)
    _calluser.become()
    if os.geteuid() == 0:
        _linux.drop_capabilities()
    _seccomp.install()


def set_limits(limits: Limits, *, cap_processes: bool) -> None:
    """The per-process rlimits; RLIMIT_NPROC only when no cgroup caps the call (it is per user)."""
    cpu = limits.cpu_s
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))  # SIGKILL: as a namespace's first process it ignores SIGXCPU
    memory = limits.memory_mb * _MIB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = limits.file_size_mb * _MIB
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cap_processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))


def call(request: Request) -> Outcome:
    """Load the module's code, run the function, and describe its outcome."""
    filename, source = request.filename, request.source
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(request.module)
    module.__file__ = filename
    sys.modules[request.module] = module
    try:
        exec(_code.load(source, filename, request.code), module.__dict__)
    except BaseException as exc:
        context = f"importing module {request.module!r} failed"
        return failure(exc, filename, request=request, context=context)
    function = getattr(module, request.function, None)
    if not callable(function):
        message = f"module {request.module!r} has no top-level function {request.function!r}"
        return Outcome(ok=False, error_type="AttributeError", error_message=message)
    try:
        value = function(**request.arguments)
    except BaseException as exc:
        return failure(exc, filename, request=request)
    try:
        return Outcome(ok=True, value=to_json(value))
    except NotJSONError as exc:
        return _sandbox_fault(ErrorType.NOT_JSON, f"the result is not JSON: {exc}")


def failure(exc: BaseException, filename: str, *, request: Request, context: str = "") -> Outcome:
    """The Outcome of an exception: its class and message, and the frames of the function's own file."""
    frames = [
        {"line": frame.lineno, "function": frame.name, "code": frame.line or ""}
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename == filename
    ][-_TRACEBACK_FRAMES:]
    name = type(exc).__name__
    text = str(exc)
    message = f"{name}: {text}" if text else name
    if context:
        message = f"{context}: {message}"
    limits = request.limits
    file_size_mb = limits.file_size_mb
    details: dict[str, object] = {"traceback": frames}
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) and _tmpfs.is_full(request.tmp_dir):
        message = f"the call's temp folder is full: it holds at most {limits.tmp_mb} MiB in {limits.tmp_files} files"
        return _sandbox_fault(
            ErrorType.TEMP_LIMIT, f"{message} ({text})", **details, limit_mb=limits.tmp_mb, limit_files=limits.tmp_files
        )
    data = request.data
    over_room = data.room_bytes < file_size_mb * _MIB
    if isinstance(exc, OSError) and (
        (exc.errno == errno.EFBIG and over_room) or (isinstance(exc, PermissionError) and data.full)
    ):
        quota = f"{limits.data_quota_mb} MiB in {limits.data_files} files"
        message = (
            f"the module's data folder is full (its quota is {quota}): the call may read and remove data, not add any"
            if data.full
            else f"the write would pass the module's data quota of {quota}"
        )
        quota_details = {"limit_mb": limits.data_quota_mb, "limit_files": limits.data_files}
        return _sandbox_fault(ErrorType.DATA_QUOTA, f"{message} ({text})", **details, **quota_details)
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        message = f"the call tried to write a file larger than {file_size_mb} MiB"
        return _sandbox_fault(ErrorType.FILE_SIZE_LIMIT, message, **details, limit_mb=file_size_mb)
    if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM):
        message = f"the call ran out of its memory budget of {limits.memory_mb} MiB"
        return _sandbox_fault(ErrorType.MEMORY_LIMIT, message, **details)
    return Outcome(ok=False, error_type=name, error_message=message, details=details)
