"""The sandbox's wire contract: every message between its processes, typed, and how each is framed.

The processes are the server (_runner.py), the zygote (_zygote.py, _watched.py) and the call processes it
forks (_worker.py). Each message is a dataclass (its closed sets of values are StrEnums), encoded as JSON
by msgspec, which checks every field's type on the way in: a message that does not match its class is a
ProtocolError naming the field, never a KeyError somewhere later. Nothing else crosses.

- The server starts a zygote with a `Boot` on its command line; the zygote answers `Ready` on its control
  socket (SOCK_SEQPACKET, one message per packet), then takes `Run` (a call's socket attached) and `Kill`,
  and sends `Pooled` (a pooled call's socket attached) and `PoolFailed`.
- On a call's own socket the server sends one `Request` frame and gets one reply: a `Reply` frame whose
  `sizes` give the byte blobs that follow it (the call's stdout, its stderr and the call process's own
  `Outcome` frame), so neither output nor result is decoded and re-encoded on the way.
- The probe behind `doctor` prints its `Findings` on stdout.
- A pooled call process tells the zygote on its result pipe, with one `Mark` byte each, that it is ready,
  that its request came and that it is sending its reply itself.

A frame is an 8-byte big-endian length and the message. Frames travel over dedicated pipes and sockets,
never over the function's stdout/stderr, so nothing a function prints can be taken for a reply.
"""

from __future__ import annotations

import enum
import os
import struct
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import msgspec

from mcp_server.sandbox._model import Limits

#: Checked once, when a zygote starts: every other message is between processes of the same code.
VERSION = 2
REQUEST_LIMIT = 256 << 20
_HEADER = struct.Struct(">Q")
_T = TypeVar("_T")


class ProtocolError(Exception):
    """A message was malformed, truncated, too large or not of the class expected."""


class Op(enum.StrEnum):
    """What a control message between the server and a zygote is."""

    READY = "ready"
    RUN = "run"
    KILL = "kill"
    POOLED = "pooled"
    POOL_FAILED = "pool-failed"


class Stop(enum.StrEnum):
    """Why the zygote stopped a call process (the ones a caller sees are also an ErrorType of that name)."""

    DONE = "Done"  # its result is in: the rest of its exit is not waited for
    TIMEOUT = "Timeout"
    CPU_LIMIT = "CPULimit"
    MEMORY_LIMIT = "MemoryLimit"
    OUTPUT_LIMIT = "OutputLimit"
    RESULT_TOO_LARGE = "ResultTooLarge"
    CANCELLED = "Cancelled"
    IDLE = "Idle"  # the server dropped its socket before sending the request: nothing ran
    FAILED = "Failed"  # the zygote could not run or watch it (the reply says why)


class ErrorType(enum.StrEnum):
    """The error_type of a failure that is the sandbox's (a limit, a crash, the protocol), not the function's."""

    TIMEOUT = "Timeout"
    CPU_LIMIT = "CPULimit"
    MEMORY_LIMIT = "MemoryLimit"
    TEMP_LIMIT = "TempLimit"
    DATA_QUOTA = "DataQuota"
    NOT_STARTED = "NotStarted"
    FILE_SIZE_LIMIT = "FileSizeLimit"
    OUTPUT_LIMIT = "OutputLimit"
    RESULT_TOO_LARGE = "ResultTooLarge"
    NOT_JSON = "NotJSON"
    CRASHED = "Crashed"
    CANCELLED = "Cancelled"
    PROTOCOL_ERROR = "ProtocolError"


class Fault(enum.StrEnum):
    """Whose failure an Outcome reports: the function's own exception, or the sandbox's."""

    FUNCTION = "function"
    SANDBOX = "sandbox"


class Role(enum.StrEnum):
    """The process name (comm) of a call process, as `ps` and the tests see it."""

    CALL = "funcsmith-call"  # serving a call
    POOL = "funcsmith-pool"  # pooled, waiting for its call


class Mark(bytes, enum.Enum):
    """The bytes a pooled call process writes to its result pipe ahead of its result."""

    STARTED = b"\x01"  # its request is in: the zygote starts the clock
    READY = b"\x02"  # it is locked down and waits for its request: the zygote gives it its normal priority back
    REPLIED = b"\x03"  # its function is done and it sends the server the reply itself


@dataclass(frozen=True, slots=True)
class Pool:
    """What a zygote's warm pool is made for: how many call processes, with which limits and base paths."""

    size: int
    limits: Limits
    read_paths: list[str]
    data_root: str


@dataclass(frozen=True, slots=True)
class Boot:
    """How the server starts a zygote: online or not, its pool, and whether it serves one call and exits."""

    network: bool
    pool: Pool
    once: bool = False  # `Sandbox(start="spawn")`: a fresh zygote per call, without a pool
    version: int = VERSION


@dataclass(frozen=True, slots=True)
class Facts:
    """What a starting zygote set up; each layer is True, or why it is missing."""

    pid: int
    network: bool
    landlock_abi: int
    netns: bool | str = "not wanted"  # an online zygote keeps the network
    cgroup: str = ""  # the folder of its call cgroups
    cgroup_error: str = ""
    memory_cgroup_error: str = ""
    pidns: bool | str = "not tried"
    idle_pool: bool | str = "no pool"
    ipcns: bool | str = "not tried"
    seccomp: bool | str = "not tried"
    call_user: bool = False
    view: bool | str = "not tried"


@dataclass(frozen=True, slots=True)
class Findings:
    """What the probe process (for `doctor`) found, trying each layer for real: True, or why not."""

    euid: int
    landlock_abi: int
    netns: bool | str
    pidns: bool | str
    cgroup: bool | str
    memory_cgroup: bool | str
    tmpfs: bool | str
    ipcns: bool | str
    seccomp: bool | str
    call_user: bool | str
    view: bool | str  # the call user's mount view: True, or why there is none (False: no call user)
    cgroup_gaps: tuple[str, ...] = ()  # what the per-call cgroups lack on this kernel, where they work


@dataclass(frozen=True, slots=True)
class Ready:
    op: Op
    facts: Facts


@dataclass(frozen=True, slots=True)
class Run:
    """Run the cold call whose socket is attached."""

    op: Op
    id: int


@dataclass(frozen=True, slots=True)
class Kill:
    """Stop a call: a cold one by its id, a pooled one by its process id."""

    op: Op
    id: int = 0
    pid: int = 0


@dataclass(frozen=True, slots=True)
class Pooled:
    """A pooled call process is ready; its socket is attached."""

    op: Op
    pid: int


@dataclass(frozen=True, slots=True)
class PoolFailed:
    """A pooled call process died before its call: the zygote keeps no pool from now on."""

    op: Op
    status: int | None


Control = Ready | Run | Kill | Pooled | PoolFailed
_CONTROLS: dict[Op, type[Any]] = {
    Op.READY: Ready,
    Op.RUN: Run,
    Op.KILL: Kill,
    Op.POOLED: Pooled,
    Op.POOL_FAILED: PoolFailed,
}


@dataclass(frozen=True, slots=True)
class _Envelope:
    op: Op


@dataclass(frozen=True, slots=True)
class DataRoom:
    """What a call may still add to its data folder: the bytes of one file, and whether it is full."""

    room_bytes: int
    full: bool


@dataclass(frozen=True, slots=True)
class Request:
    """One call, as the server sends it: the code, the function and its arguments, its paths and limits."""

    module: str
    source: str
    filename: str
    function: str
    arguments: dict[str, Any]
    data_dir: str
    read_paths: list[str]
    write_paths: list[str]
    granted: list[str]  # the paths of the grant, to report those that do not exist
    network: bool
    limits: Limits
    data: DataRoom
    tmp_dir: str = ""  # the zygote's choice, filled in before the call process sees the request
    landlock_abi: int = 0
    code: bytes = b""  # the module as the server compiled it, marshalled (see _code.py); b"": compile `source`


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the call process reports: the function's value, or what went wrong and whose fault it is."""

    ok: bool
    value: Any = None
    fault: Fault = Fault.FUNCTION
    error_type: str = ""  # an ErrorType for a sandbox fault, the exception's class name for a function's
    error_message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what is wrong with the granted paths


@dataclass(frozen=True, slots=True)
class Reply:
    """How a call ended, as its supervisor (the zygote, or a pooled call process) tells the server."""

    stopped: Stop | None = None
    status: int | None = None  # the call process's wait status
    cpu_s: float | None = None
    failure: str = ""  # the sandbox could not run or watch the call: why
    sizes: list[int] = field(default_factory=list)  # of the blobs that follow: stdout, stderr, the Outcome frame


_encoder = msgspec.json.Encoder()
# Made ahead, in the zygote: a forked call process then uses them without building its own.
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind) for kind in (_Envelope, *_CONTROLS.values(), Request, Outcome, Reply)
}


def encode(message: Any) -> bytes:
    """The JSON of one message (a dataclass of this module); TypeError for a value JSON cannot hold."""
    try:
        return _encoder.encode(message)
    except msgspec.EncodeError as exc:
        raise TypeError(str(exc)) from None


def decode(data: bytes | bytearray | memoryview, kind: type[_T]) -> _T:
    """The message of class `kind` in `data`; ProtocolError naming what does not fit."""
    decoder = _decoders.get(kind) or _decoders.setdefault(kind, msgspec.json.Decoder(kind))
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"not a valid {kind.__name__} message: {exc}") from None


def decode_control(data: bytes) -> Control:
    """One control message, of whichever class its `op` names."""
    return decode(data, _CONTROLS[decode(data, _Envelope).op])


def frame(message: Any) -> bytes:
    """One frame holding `message`."""
    body = encode(message)
    return _HEADER.pack(len(body)) + body


def unframe(data: bytes | bytearray, kind: type[_T], *, limit: int) -> _T:
    """The message in one complete frame; anything else is a ProtocolError naming what is wrong."""
    if len(data) < _HEADER.size:
        raise ProtocolError(f"truncated frame: {len(data)} bytes, shorter than its header")
    (size,) = _HEADER.unpack_from(data)
    if size > limit:
        raise ProtocolError(f"frame of {size} bytes exceeds the limit of {limit} bytes")
    if len(data) != _HEADER.size + size:
        raise ProtocolError(f"truncated frame: header says {size} bytes, got {len(data) - _HEADER.size}")
    return decode(memoryview(data)[_HEADER.size :], kind)


def read_frame(fd: int, kind: type[_T], *, limit: int) -> _T:
    """Read exactly one frame from a blocking fd."""
    header = _read_exactly(fd, _HEADER.size)
    (size,) = _HEADER.unpack(header)
    if size > limit:
        raise ProtocolError(f"frame of {size} bytes exceeds the limit of {limit} bytes")
    return decode(_read_exactly(fd, size), kind)


def frame_size(data: bytes | bytearray) -> int | None:
    """How many bytes the frame at the start of `data` takes, once its header is in (None before)."""
    return _HEADER.size + _HEADER.unpack_from(data)[0] if len(data) >= _HEADER.size else None


def is_complete(data: bytes | bytearray) -> bool:
    """Whether `data` holds a whole frame (its header and as many bytes as the header says)."""
    size = frame_size(data)
    return size is not None and len(data) >= size


def encode_reply(reply: Reply, *blobs: bytes) -> bytes:
    """A reply: its Reply frame (with the blobs' sizes), then the blobs as they are."""
    return frame(replace(reply, sizes=[len(b) for b in blobs])) + b"".join(blobs)


class ReplyReader:
    """Collects a reply from chunks as they arrive; `feed` says when it is complete."""

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.reply: Reply | None = None
        self.blobs: list[bytes] = []
        self._reply_end = 0
        self._total = 0

    def feed(self, chunk: bytes) -> bool:
        """Add one chunk; True once the whole reply is in (then `reply` and `blobs` are set)."""
        self.data += chunk
        if self.reply is None:
            end = frame_size(self.data)
            if end is None:
                return False
            if end - _HEADER.size > self.limit:
                raise ProtocolError(f"reply frame of {end - _HEADER.size} bytes exceeds the limit of {self.limit}")
            if len(self.data) < end:
                return False
            reply = unframe(self.data[:end], Reply, limit=self.limit)
            if any(n < 0 for n in reply.sizes):
                raise ProtocolError(f"reply sizes must be byte counts, not {reply.sizes!r}")
            self._reply_end, self._total = end, end + sum(reply.sizes)
            if self._total > self.limit + _HEADER.size:
                raise ProtocolError(f"the reply is larger than {self.limit} bytes")
            self.reply = reply
        if len(self.data) > self._total:
            raise ProtocolError(f"{len(self.data) - self._total} bytes follow the end of the reply")
        if len(self.data) < self._total:
            return False
        at = self._reply_end
        for size in self.reply.sizes:
            self.blobs.append(bytes(self.data[at : at + size]))
            at += size
        return True


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to a blocking fd."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, min(size - len(chunks), 1 << 20))
        if not chunk:
            raise ProtocolError(f"connection closed after {len(chunks)} of {size} bytes")
        chunks += chunk
    return bytes(chunks)
