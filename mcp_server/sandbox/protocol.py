"""The wire format between the server, the zygote (or a spawned call supervisor) and the worker.

Every message is one frame: an 8-byte big-endian length, then UTF-8 JSON carrying
`"v": VERSION`. Frames travel over dedicated pipes and sockets, never over the
function's stdout/stderr, so nothing a function prints can be taken for a reply.

A supervisor's reply (the zygote's, for forked calls) is one frame whose `"sizes"`
list the byte blobs that follow it (the call's stdout, its stderr and the worker's
own result frame), so that neither output nor result is decoded and re-encoded on
the way to the server.
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
    return decode(read_raw(fd, limit=limit), limit=limit)


def read_raw(fd: int, *, limit: int) -> bytes:
    """Read exactly one frame from a blocking fd without decoding it (to pass it on as it is)."""
    header = _read_exactly(fd, _HEADER.size)
    (size,) = _HEADER.unpack(header)
    if size > limit:
        raise ProtocolError(f"frame of {size} bytes exceeds the limit of {limit} bytes")
    return header + _read_exactly(fd, size)


def encode_reply(meta: dict[str, Any], *blobs: bytes) -> bytes:
    """A reply: the `meta` frame (with the blobs' sizes added), then the blobs as they are."""
    return encode({**meta, "sizes": [len(blob) for blob in blobs]}) + b"".join(blobs)


class ReplyReader:
    """Collects a reply from chunks as they arrive; `feed` says when it is complete."""

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.meta: dict[str, Any] | None = None
        self.blobs: list[bytes] = []
        self._meta_end = 0
        self._total = 0

    def feed(self, chunk: bytes) -> bool:
        """Add one chunk; True once the whole reply is in (then `meta` and `blobs` are set)."""
        self.data += chunk
        if self.meta is None:
            if len(self.data) < _HEADER.size:
                return False
            (size,) = _HEADER.unpack_from(self.data)
            if size > self.limit:
                raise ProtocolError(f"reply frame of {size} bytes exceeds the limit of {self.limit} bytes")
            if len(self.data) < _HEADER.size + size:
                return False
            self._meta_end = _HEADER.size + size
            meta = decode(bytes(self.data[: self._meta_end]), limit=self.limit)
            sizes = meta.get("sizes", [])
            if not isinstance(sizes, list) or not all(isinstance(n, int) and n >= 0 for n in sizes):
                raise ProtocolError(f"reply sizes must be a list of byte counts, not {sizes!r}")
            self._total = self._meta_end + sum(sizes)
            if self._total > self.limit + _HEADER.size:
                raise ProtocolError(f"the reply is larger than {self.limit} bytes")
            self.meta = meta
        if len(self.data) > self._total:
            raise ProtocolError(f"{len(self.data) - self._total} bytes follow the end of the reply")
        if len(self.data) < self._total:
            return False
        at = self._meta_end
        for size in self.meta.get("sizes", []):
            self.blobs.append(bytes(self.data[at : at + size]))
            at += size
        return True


def is_complete(data: bytes | bytearray) -> bool:
    """Whether `data` holds a whole frame (its header and as many bytes as the header says)."""
    return len(data) >= _HEADER.size and len(data) >= _HEADER.size + _HEADER.unpack_from(data)[0]


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
