"""Serving over stdio from a terminal: stdin read so that Ctrl-C stops the server at once."""

from __future__ import annotations

import os
import sys

import anyio


class TerminalStdin(anyio.AsyncFile[str]):
    """A terminal's input lines, read when the event loop sees them arrive, with no thread parked in read().

    The SDK reads stdin in a worker thread that no cancellation can stop (python-sdk#3551): at a
    terminal, Ctrl-C would wait for the next line typed. Here each wait is an event-loop wait, so
    Ctrl-C cancels it like any other, and the server shuts down (sandbox included) at once.
    Only for terminals (and pipes): the event loop cannot watch a regular file.
    """

    def __init__(self, fd: int = 0) -> None:
        super().__init__(sys.stdin)
        self._fd = fd
        self._pending = b""
        self._ended = False

    async def readline(self) -> str:
        while b"\n" not in self._pending and not self._ended:
            await anyio.wait_readable(self._fd)
            chunk = os.read(self._fd, 65536)  # readable: returns what is there without blocking
            self._pending += chunk
            self._ended = not chunk
        line, newline, self._pending = self._pending.partition(b"\n")
        return (line + newline).decode("utf-8", errors="replace")
