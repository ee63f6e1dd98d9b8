"""Start funcsmith as a real process and connect the SDK's own client to it, over stdio or HTTP."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import mcp.client.session
import mcp_types as types
from mcp import Client
from mcp.client._transport import TransportStreams
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parent.parent


def server_env(data_dir: Path) -> dict[str, str]:
    """The environment a test server runs in: its data under the test's folder, never the real home."""
    return {
        "FUNCSMITH_DATA_DIR": str(data_dir),
        "XDG_STATE_HOME": str(data_dir.parent / "state"),
        "PYTHONUNBUFFERED": "1",
    }


def stdio_params(
    functions: Path, data_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_server.cli", "serve", "--functions", str(functions), *extra],
        env={**server_env(data_dir), **(env or {})},
        cwd=str(ROOT),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class HTTPServer:
    """A running `funcsmith serve --transport http`: where it is, the bearer token it wants, its stderr."""

    url: str
    port: int
    token: str | None
    log: Path
    pid: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def transport(self, token: str | None = None) -> contextlib.AbstractAsyncContextManager[TransportStreams]:
        """A Streamable HTTP transport for `Client`, sending `token` (default: the server's own)."""
        return bearer_transport(self.url, token if token is not None else self.token)


@contextlib.asynccontextmanager
async def bearer_transport(url: str, token: str | None) -> AsyncIterator[TransportStreams]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


@contextlib.contextmanager
def http_server(
    functions: Path,
    data_dir: Path,
    *extra: str,
    serve_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[HTTPServer]:
    """Run `funcsmith serve --transport http` on a free port; yield where it is and how to get in.

    The server gets a fresh FUNCSMITH_TOKEN unless `env` sets one (empty: none, so the token comes from a
    file); its stderr goes to a file beside `data_dir`.
    """
    port = free_port()
    env = {**os.environ, **server_env(data_dir), "FUNCSMITH_TOKEN": secrets.token_urlsafe(16), **(env or {})}
    log = data_dir.parent / f"server-{port}.log"
    command = [sys.executable, "-m", "mcp_server.cli", "--functions", str(functions), *extra]
    command += ["serve", "--transport", "http", "--port", str(port), *serve_args]
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=preexec_fn
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text(errors='replace')}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("HTTP server did not start within 60 s")
            time.sleep(0.05)
        token = None if "--no-auth" in serve_args else env["FUNCSMITH_TOKEN"] or None
        yield HTTPServer(f"http://127.0.0.1:{port}/mcp", port, token, log, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def handshake_client(
    server: StdioServerParameters | str | contextlib.AbstractAsyncContextManager[TransportStreams],
    version: str = "2025-11-25",
    **kwargs: object,
) -> AsyncIterator[Client]:
    """A handshake-era client that offers `version` in `initialize`."""
    original = mcp.client.session.LATEST_HANDSHAKE_VERSION
    mcp.client.session.LATEST_HANDSHAKE_VERSION = version
    try:
        async with Client(server, mode="legacy", **kwargs) as client:  # type: ignore[arg-type]
            assert client.protocol_version == version
            yield client
    finally:
        mcp.client.session.LATEST_HANDSHAKE_VERSION = original


def texts(result: object) -> str:
    return "\n".join(c.text for c in getattr(result, "content", []) if getattr(c, "type", "") == "text")


def names(tools: Sequence[object]) -> list[str]:
    return [t.name for t in tools]  # type: ignore[attr-defined]


class Changes:
    """The tool-list-changed notifications (and log messages) one client receives."""

    def __init__(self) -> None:
        self.count = 0
        self.logs: list[str] = []
        self._event = anyio.Event()

    async def handle(self, message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.seen()

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(str(params.data))

    def seen(self) -> None:
        self.count += 1
        self._event.set()
        self._event = anyio.Event()

    async def next(self, timeout: float = 60.0) -> None:
        """Wait for the next notification."""
        with anyio.fail_after(timeout):
            await self._event.wait()

    async def after(self, count: int, timeout: float = 60.0) -> None:
        """Wait until more than `count` notifications have come."""
        with anyio.fail_after(timeout):
            while self.count <= count:
                await self._event.wait()
