"""The wire format between the server, the zygote, the call supervisor and the worker.

Every message is one frame: an 8-byte big-endian length, then UTF-8 JSON carrying
`"v": VERSION`. Frames travel over dedicated pipes and sockets, never over the
function's stdout/stderr, so nothing a function prints can be taken for a reply.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

VERSION = 1
_HEADER = struct.Struct(">Q")


class ProtocolError(Exception):
    """A frame was malformed, truncated, too large or of another protocol version."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame holding `message` (which must already be JSON-ready)."""
    body = json.dumps({"v": VERSION, **message}, ensure_ascii=False, allow_nan=False).encode()
    return _HEADER.pack(len(body)) + body


def decode(frame: bytes, *, limit: int) -> dict[str, Any]:
    """The message in one complete frame; anything else is a ProtocolError naming what is wrong."""
    if len(frame) < _HEADER.size:
        raise ProtocolError(f"truncated frame: {len(frame)} bytes, shorter than its header")
    (size,) = _HEADER.unpack_from(frame)
    if size > limit:
        raise ProtocolError(f"frame of {size} bytes exceeds the limit of {limit} bytes")
    if len(frame) != _HEADER.size + size:
        raise ProtocolError(f"truncated frame: header says {size} bytes, got {len(frame) - _HEADER.size}")
    try:
        message = json.loads(frame[_HEADER.size :])
    except ValueError as exc:
        raise ProtocolError(f"frame is not valid JSON: {exc}") from None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        version = message.get("v") if isinstance(message, dict) else None
        raise ProtocolError(f"expected a protocol version {VERSION} object, got version {version!r}")
    return message


def read_frame(fd: int, *, limit: int) -> dict[str, Any]:
    """Read exactly one frame from a blocking fd."""
    header = _read_exactly(fd, _HEADER.size)
    (size,) = _HEADER.unpack(header)
    if size > limit:
        raise ProtocolError(f"frame of {size} bytes exceeds the limit of {limit} bytes")
    return decode(header + _read_exactly(fd, size), limit=limit)


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
