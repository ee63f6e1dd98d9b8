"""HTTP serving held against misuse: `funcsmith serve --transport http` on 127.0.0.1, driven with the SDK's
client and httpx. Who gets in (bearer token, Host/Origin), what a resumption request gets, and that floods
of sessions or half-open connections neither lock the owner out nor flood the log."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from mcp_server.http import MAX_BODY, REQUEST_TIMEOUT, SESSIONS_PER_CLIENT, HTTPConfigError, configure
from tests.calc import CALC_JSON, CALC_PY
from tests.mcp_helpers import ROOT, HTTPServer, http_server, server_env

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HTTPServer]:
    """One server with a token from FUNCSMITH_TOKEN and two extra names, shared by the tests that only talk."""
    root = tmp_path_factory.mktemp("served")
    folder = calc_folder(root)
    names = ["--allowed-host", "funcsmith.lan", "--allowed-origin", "https://app.example.com"]
    env = {"FUNCSMITH_ALLOWED_HOSTS": "mcp:9000, 192.0.2.7"}
    with http_server(folder, root / "data", serve_args=names, env=env) as server:
        yield server


async def add_over_sdk(server: HTTPServer, token: str | None = None) -> int:
    async with Client(server.transport(token)) as client:
        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert not result.is_error, result
        return result.structured_content["result"]  # type: ignore[index]


async def open_session(http: httpx.AsyncClient, server: HTTPServer) -> str:
    answer = await http.post(server.url, json=INITIALIZE, headers={**ACCEPT, **server.headers})
    assert answer.status_code == 200, answer.text
    return answer.headers["mcp-session-id"]


async def ping(http: httpx.AsyncClient, server: HTTPServer, session: str) -> int:
    headers = {**ACCEPT, **server.headers, "Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"}
    return (await http.post(server.url, json=PING, headers=headers)).status_code


async def test_requests_without_the_token_get_401_with_www_authenticate(served: HTTPServer) -> None:
    async with httpx.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {served.token}"}):
            answer = await http.post(served.url, json=INITIALIZE, headers={**ACCEPT, **headers})
            assert answer.status_code == 401, headers
            assert answer.headers["www-authenticate"].startswith("Bearer ")
            assert 'error="invalid_token"' in answer.headers["www-authenticate"]
            got = await http.get(served.url, headers={"Accept": "text/event-stream", **headers})
            assert got.status_code == 401
    assert await add_over_sdk(served) == 5  # FUNCSMITH_TOKEN is the token
    with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 401 in its own way; what matters is no way in
        with anyio.fail_after(60):
            await add_over_sdk(served, token="not-the-token")


async def test_allowed_hosts_and_origins_widen_the_checks(served: HTTPServer) -> None:
    base = {**ACCEPT, **served.headers}
    expectations = {
        (f"127.0.0.1:{served.port}", None): 200,
        ("funcsmith.lan:8443", None): 200,  # a name without a port: any port (a proxy, a remapped port)
        ("funcsmith.lan", "https://app.example.com"): 200,
        ("mcp:9000", None): 200,  # from FUNCSMITH_ALLOWED_HOSTS: that port only
        ("192.0.2.7:80", "http://192.0.2.7:80"): 200,
        ("mcp:9001", None): 421,
        ("evil.example", None): 421,
        ("funcsmith.lan", "https://evil.example"): 403,
        (f"127.0.0.1:{served.port}", "http://app.example.com"): 403,  # the scheme is part of the origin
    }
    async with httpx.AsyncClient() as http:
        for (host, origin), status in expectations.items():
            headers = {**base, "Host": host, **({"Origin": origin} if origin else {})}
            answer = await http.post(served.url, json=INITIALIZE, headers=headers)
            assert answer.status_code == status, (host, origin, answer.text)


async def test_get_with_last_event_id_gets_400_not_500(served: HTTPServer) -> None:
    async with httpx.AsyncClient() as http:
        session = await open_session(http, served)
        headers = {
            **served.headers,
            "Accept": "text/event-stream",
            "Mcp-Session-Id": session,
            "Mcp-Protocol-Version": "2025-11-25",
            "Last-Event-ID": "0",
        }
        answer = await http.get(served.url, headers=headers)
        assert answer.status_code == 400
        assert "Last-Event-ID" in answer.json()["error"]["message"]
        assert await ping(http, served, session) == 200  # the session is untouched


async def test_a_flood_of_sessions_closes_the_oldest_idle_never_the_owner(served: HTTPServer) -> None:
    async with httpx.AsyncClient() as http:
        sessions = [await open_session(http, served) for _ in range(SESSIONS_PER_CLIENT + 8)]
        with anyio.fail_after(30):  # the evicted ones are closed in the background
            while await ping(http, served, sessions[7]) != 404:
                await anyio.sleep(0.1)
        assert [await ping(http, served, s) for s in sessions[:8]] == [404] * 8
        assert [await ping(http, served, s) for s in sessions[8:]] == [200] * SESSIONS_PER_CLIENT
    assert await add_over_sdk(served) == 5  # and the owner still gets in


def calc_folder(root: Path) -> Path:
    folder = root / "functions"
    folder.mkdir(parents=True)
    (folder / "calc.py").write_text(CALC_PY)
    (folder / "calc.json").write_text(json.dumps(CALC_JSON))
    return folder


async def test_first_start_makes_a_0600_token_and_prints_the_client_config(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with http_server(calc_folder(tmp_path), tmp_path / "data", env={"FUNCSMITH_TOKEN": ""}) as server:
        token_file = state / "funcsmith" / "token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert await add_over_sdk(server, token) == 5
        log = server.log.read_text()
        assert str(token_file) in log
        config = json.loads(log[log.index("{") : log.rindex("}") + 1])["mcpServers"]["funcsmith"]
        assert config["url"] == server.url
        # stderr is a file here, not a terminal: it says where the token is, not what it is.
        assert config["headers"] == {"Authorization": f"Bearer <the token in {token_file}>"}
        assert token not in log
    with http_server(calc_folder(tmp_path / "again"), tmp_path / "data", env={"FUNCSMITH_TOKEN": ""}) as server:
        assert await add_over_sdk(server, token) == 5  # the next start keeps the same token


async def test_token_file_option(tmp_path: Path) -> None:
    token_file = tmp_path / "my-token"
    token_file.write_text("a-token-the-user-chose\n")
    token_file.chmod(0o600)
    args = ["--token-file", str(token_file)]
    with http_server(calc_folder(tmp_path), tmp_path / "data", serve_args=args, env={"FUNCSMITH_TOKEN": ""}) as server:
        assert await add_over_sdk(server, "a-token-the-user-chose") == 5
        async with httpx.AsyncClient() as http:
            assert (await http.post(server.url, json=INITIALIZE, headers=ACCEPT)).status_code == 401
    assert not (tmp_path / "state").exists()  # nothing made in the state folder


async def test_no_auth_serves_loopback_with_a_warning(tmp_path: Path) -> None:
    with http_server(calc_folder(tmp_path), tmp_path / "data", serve_args=["--no-auth"]) as server:
        assert server.token is None
        assert await add_over_sdk(server) == 5
        assert "without authentication" in server.log.read_text()


def test_no_auth_is_refused_off_loopback(catalog: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mcp_server.cli", "--functions", str(catalog), "serve", "--transport", "http"]
    command += ["--host", "0.0.0.0", "--no-auth"]
    env = {**os.environ, **server_env(tmp_path / "data")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--no-auth" in done.stderr and "loopback" in done.stderr and "Traceback" not in done.stderr


HELD = 1100


def few_file_descriptors() -> None:
    """The server gets 1024 file descriptors, a common default, so a flood of held connections would use
    them all up."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


async def test_slowloris_neither_stalls_calls_nor_floods_the_log(tmp_path: Path) -> None:
    with http_server(calc_folder(tmp_path), tmp_path / "data", preexec_fn=few_file_descriptors) as server:
        held: list[socket.socket] = []
        try:
            for _ in range(HELD):
                conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                conn.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
                held.append(conn)
            start = time.monotonic()
            with anyio.fail_after(120):
                assert await add_over_sdk(server) == 5
            print(f"a call with {HELD} held connections took {time.monotonic() - start:.2f} s")
            # Every held connection is closed by the server: the oldest at once, the rest on the deadline.
            deadline = time.monotonic() + REQUEST_TIMEOUT + 60
            for conn in held:
                conn.settimeout(max(0.1, deadline - time.monotonic()))
                with contextlib.suppress(ConnectionResetError):  # closed before its bytes were read
                    assert conn.recv(1024) == b""
        finally:
            for conn in held:
                conn.close()
        lines = server.log.read_text().splitlines()
        assert len(lines) < 300, "\n".join(lines[:50])


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("allowed_hosts", "http://funcsmith.lan", "--allowed-host 'http://funcsmith.lan'"),
        ("allowed_hosts", "funcsmith.lan:http", "'http' is not a port number"),
        ("allowed_hosts", "fe80::zz:8765", "brackets"),
        ("allowed_origins", "app.example.com", "--allowed-origin 'app.example.com'"),
        ("allowed_origins", "https://app.example.com/page", "scheme://host[:port]"),
    ],
)
def test_bad_names_are_refused_with_what_to_write(option: str, value: str, named: str) -> None:
    with pytest.raises(HTTPConfigError, match=re.escape(named)):
        configure("127.0.0.1", 8765, no_auth=True, **{option: [value]})


def test_names_as_clients_send_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCSMITH_ALLOWED_HOSTS", "mcp:9000,,[::1]:8080 ")
    monkeypatch.setenv("FUNCSMITH_ALLOWED_ORIGINS", "HTTPS://App.Example.com/")
    settings = configure("127.0.0.1", 8765, allowed_hosts=["Funcsmith.LAN", "fe80::1"], no_auth=True)
    names = ("funcsmith.lan", "funcsmith.lan:*", "[fe80::1]", "[fe80::1]:*", "mcp:9000", "[::1]:8080")
    assert settings.allowed_hosts == names
    assert settings.allowed_origins == ("https://app.example.com",)


def test_a_token_that_cannot_go_in_a_header_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCSMITH_TOKEN", "two words")
    with pytest.raises(HTTPConfigError, match="FUNCSMITH_TOKEN must be printable ASCII"):
        configure("127.0.0.1", 8765)


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]


async def test_bodies_over_the_limit_get_413_and_are_never_buffered_whole(served: HTTPServer) -> None:
    headers = {**ACCEPT, **served.headers}
    async with httpx.AsyncClient(timeout=60) as http:
        session = await open_session(http, served)
        declared = await http.post(served.url, content=b" " * (MAX_BODY + 1), headers=headers)
        assert declared.status_code == 413, declared.text

        before = rss_kib(served.pid)
        chunk = b" " * 2**20

        async def streamed() -> Any:
            for _ in range(16 * MAX_BODY // len(chunk)):  # 16 times the limit, without a Content-Length
                yield chunk

        with contextlib.suppress(httpx.HTTPError):  # the server may close the connection once it has answered
            chunked = await http.post(served.url, content=streamed(), headers=headers)
            assert chunked.status_code == 413, chunked.text
        assert rss_kib(served.pid) - before < 8 * MAX_BODY // 1024  # nowhere near what was sent

        assert await ping(http, served, session) == 200  # still serving
    assert await add_over_sdk(served) == 5
