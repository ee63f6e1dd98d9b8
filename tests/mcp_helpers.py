"""Start funcsmith as a real process and connect the SDK's own client to it, over stdio or HTTP."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import mcp.client.session
from mcp import Client
from mcp.client.stdio import StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent


def server_env(data_dir: Path) -> dict[str, str]:
    """The environment a test server runs in: its data under the test's folder, never the real home."""
    return {"FUNCSMITH_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


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


@contextlib.contextmanager
def http_server(functions: Path, data_dir: Path, *extra: str) -> Iterator[str]:
    """Run `funcsmith serve --transport http` on a free port; yield its MCP URL."""
    port = free_port()
    env = {**os.environ, **server_env(data_dir)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcp_server.cli",
            "--functions",
            str(functions),
            *extra,
            "serve",
            "--transport",
            "http",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("HTTP server did not start within 20 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@contextlib.asynccontextmanager
async def handshake_client(
    server: StdioServerParameters | str, version: str = "2025-11-25", **kwargs: object
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
