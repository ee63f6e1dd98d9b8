"""The server over the real protocol: the SDK's client against `funcsmith serve` over stdio and HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_server.catalog import Catalog
from mcp_server.sandbox import CallResult
from mcp_server.server import FuncsmithServer
from tests.calc import CALC_JSON, CALC_PY
from tests.mcp_helpers import ROOT, handshake_client, http_server, names, stdio_params, texts

pytestmark = pytest.mark.anyio


async def exercise(client: Client) -> None:
    """The same conversation over any transport and protocol revision."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert names(tools.values()) == [
        "list_functions",
        "find_functions",
        "call_function",
        "create_function",
        "add",
        "divide",
    ]
    assert tools["add"].input_schema["required"] == ["a"]
    assert "DivisionByZero: b is zero" in (tools["divide"].description or "")
    assert tools["divide"].output_schema == CALC_JSON[1]["responses"][0]
    assert tools["add"].output_schema == {
        "type": "object",
        "properties": {"result": {"type": "number"}},
        "required": ["result"],
    }

    result = await client.call_tool("add", {"a": 2, "b": 3})
    assert not result.is_error
    assert result.structured_content == {"result": 5}
    assert texts(result) == "5"

    result = await client.call_tool("divide", {"a": 1, "b": 4})
    assert result.structured_content == {"quotient": 0.25}

    result = await client.call_tool("divide", {"a": 7, "b": 0})
    assert result.is_error
    assert texts(result) == "DivisionByZero: cannot divide 7 by zero"
    assert result.structured_content is None, "an error must not carry structuredContent against the outputSchema"
    error = result.meta["funcsmith/error"]
    assert error["type"] == "DivisionByZero" and error["sandbox"] is False
    assert error["details"]["lines"] == [{"line": 16, "function": "divide"}]

    result = await client.call_tool("divide", {"a": 7, "b": "zero"})
    assert result.is_error
    assert "argument 'b'" in texts(result) and "'zero' is not of type 'number'" in texts(result)

    assert result.structured_content is None and result.meta["funcsmith/error"]["type"] == "InvalidArguments"

    result = await client.call_tool("divide", {"a": 7})
    assert result.is_error and "'b' is a required property" in texts(result)

    # An explicit null for a parameter that is not required means "not given"; for a required one it is wrong.
    assert (await client.call_tool("add", {"a": 2, "b": None})).structured_content == {"result": 2}
    result = await client.call_tool("divide", {"a": 7, "b": None})
    assert result.is_error and "argument 'b': None is not of type 'number'" in texts(result)
    result = await client.call_tool("call_function", {"name": "add", "arguments": {"a": 1, "b": None}})
    assert result.structured_content == {"result": 1}
    result = await client.call_tool("call_function", {"name": "add", "arguments": None})
    assert result.is_error and "'a' is a required property" in texts(result)

    result = await client.call_tool("call_function", {"name": "add", "arguments": {"a": 40, "b": 2}})
    assert result.structured_content == {"result": 42}

    result = await client.call_tool("call_function", {"name": "nope", "arguments": {}})
    assert result.is_error and "no published function named 'nope'" in texts(result)
    assert result.structured_content is None and result.meta["funcsmith/error"]["type"] == "UnknownFunction"

    listing = await client.call_tool("list_functions", {})
    functions = {f["name"]: f for f in listing.structured_content["functions"]}
    assert functions["add"]["status"] == "published"
    assert functions["divide"]["module"] == "calc"
    listing = await client.call_tool("list_functions", {"query": "divide"})
    assert [f["name"] for f in listing.structured_content["functions"]] == ["divide"]

    with pytest.raises(MCPError, match="Unknown tool: missing"):
        await client.call_tool("missing", {})


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
async def test_stdio_handshake_era(catalog: Path, tmp_path: Path, version: str) -> None:
    async with handshake_client(stdio_params(catalog, tmp_path / "data"), version) as client:
        assert client.server_capabilities.tools is not None
        assert client.server_capabilities.tools.list_changed is True
        assert client.server_capabilities.logging is not None
        await exercise(client)


async def test_stdio_modern(catalog: Path, tmp_path: Path) -> None:
    async with Client(stdio_params(catalog, tmp_path / "data"), mode="2026-07-28") as client:
        assert client.server_capabilities.logging is None, "2026-07-28 has no logging/setLevel"
        await exercise(client)


async def test_http_handshake_and_modern(catalog: Path, tmp_path: Path) -> None:
    with http_server(catalog, tmp_path / "data") as server:
        async with handshake_client(server.transport(), "2025-11-25") as client:
            assert client.server_capabilities.tools.list_changed is True
            await exercise(client)
        async with Client(server.transport(), mode="2026-07-28") as client:
            await exercise(client)


async def test_http_refuses_foreign_host_and_origin(catalog: Path, tmp_path: Path) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    with http_server(catalog, tmp_path / "data") as server:
        url = server.url
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        headers |= server.headers
        async with httpx.AsyncClient() as http:
            foreign = await http.post(url, json=body, headers={**headers, "Host": "evil.example:80"})
            assert foreign.status_code == 421
            origin = await http.post(url, json=body, headers={**headers, "Origin": "http://evil.example"})
            assert origin.status_code == 403
            ok = await http.post(url, json=body, headers=headers)
            assert ok.status_code == 200


HANG_PY = '''"""A function that leaves a forked child beating while it hangs."""

import os
import time


def hang(seconds: float) -> int:
    """Start a child that touches ~/data/beat every 20 ms, then sleep."""
    folder = os.path.expanduser("~/data")
    os.makedirs(folder, exist_ok=True)
    if os.fork() == 0:
        while True:
            with open(os.path.join(folder, "beat"), "w") as handle:
                handle.write(str(time.time()))
            time.sleep(0.02)
    time.sleep(seconds)
    return 0
'''

HANG_JSON = {
    "name": "hang",
    "description": "Hang for a while with a child process beating.",
    "parameters": {"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]},
    "responses": [{"type": "integer"}],
}


async def _stops_beating(beat: Path, *, within: float, quiet: float = 0.5) -> bool:
    """Whether the file stops changing (it is rewritten every 20 ms while its writer lives) for `quiet`
    seconds, within `within` seconds."""
    deadline = time.monotonic() + within
    last, since = beat.stat().st_mtime_ns, time.monotonic()
    while time.monotonic() < deadline:
        await anyio.sleep(0.05)
        now = beat.stat().st_mtime_ns
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
    return False


async def test_cancelled_call_kills_the_whole_tree_and_the_server_keeps_serving(catalog: Path, tmp_path: Path) -> None:
    (catalog / "hang.py").write_text(HANG_PY)
    (catalog / "hang.json").write_text(json.dumps(HANG_JSON))
    beat = tmp_path / "data" / "hang" / "data" / "beat"
    async with handshake_client(stdio_params(catalog, tmp_path / "data")) as client:
        with anyio.move_on_after(1.0) as scope:
            await client.call_tool("hang", {"seconds": 8})
        assert scope.cancelled_caught
        assert beat.is_file()
        # The kill travels as notifications/cancelled. The call would run 8 s and be stopped then anyway, so a
        # beat that stops within 5 s was stopped by the cancel (a busy machine may take a while to get there).
        assert await _stops_beating(beat, within=5.0), "a process of the cancelled call is still running"
        assert (await client.call_tool("add", {"a": 1, "b": 1})).structured_content == {"result": 2}


async def test_shipped_catalogue_over_http(tmp_path: Path) -> None:
    with http_server(ROOT / "functions", tmp_path / "data") as server:
        async with Client(server.transport()) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"convert_units", "text_stats", "add_expense", "days_between"} <= tools
            miles = await client.call_tool("convert_units", {"value": 42.195, "from_unit": "km", "to_unit": "mi"})
            assert miles.structured_content["unit"] == "mi"
            assert abs(miles.structured_content["value"] - 26.2188) < 1e-3
            stats = await client.call_tool("text_stats", {"text": "One two three. Four five!"})
            assert stats.structured_content["words"] == 5 and stats.structured_content["sentences"] == 2
            unknown = await client.call_tool("convert_units", {"value": 1, "from_unit": "parsec", "to_unit": "km"})
            assert unknown.is_error and texts(unknown).startswith("UnknownUnit:")


class Heard:
    """What one client hears: log messages and tool-list changes, with a wait for a condition."""

    def __init__(self) -> None:
        self.logs: list[str] = []
        self.tools_changed = 0
        self._event = anyio.Event()

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(f"{params.level}: {params.data}")
        self._poke()

    async def message(self, message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.tools_changed += 1
            self._poke()

    def _poke(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def until(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        with anyio.fail_after(timeout):
            while not predicate():
                await self._event.wait()


def write_broken(folder: Path, module: str) -> None:
    """A module whose code does not parse: a problem the server reports as a warning log message."""
    (folder / f"{module}.json").write_text(json.dumps({**HANG_JSON, "name": module}))
    (folder / f"{module}.py").write_text(f"def {module}(seconds:\n")


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_logging_level_is_declared_and_honoured_per_session(catalog: Path, tmp_path: Path) -> None:
    quiet, loud = Heard(), Heard()
    with http_server(catalog, tmp_path / "data") as server:
        async with (
            handshake_client(
                server.transport(), logging_callback=quiet.log, message_handler=quiet.message
            ) as quiet_client,
            handshake_client(server.transport(), logging_callback=loud.log, message_handler=loud.message),
        ):
            assert quiet_client.server_capabilities.logging is not None
            assert await quiet_client.set_logging_level("error") is not None
            write_broken(catalog, "broken_a")
            await loud.until(lambda: any("broken_a" in line for line in loud.logs))
            # A change after that one: once the quiet client hears of it, it would have heard broken_a's warning.
            (catalog / "later.py").write_text(CALC_PY.replace("def add(", "def later("))
            (catalog / "later.json").write_text(json.dumps([{**CALC_JSON[0], "name": "later"}]))
            await quiet.until(lambda: quiet.tools_changed >= 1)
            assert not [line for line in quiet.logs if "broken_a" in line], quiet.logs
            await quiet_client.set_logging_level("warning")
            write_broken(catalog, "broken_b")
            await quiet.until(lambda: any("broken_b" in line for line in quiet.logs))
            assert any(line.startswith("warning: ") and "broken_b" in line for line in quiet.logs)


async def test_traceback_source_lines_go_to_the_server_log_at_v_only(catalog: Path, tmp_path: Path) -> None:
    with http_server(catalog, tmp_path / "data", "-v") as server:
        async with Client(server.transport()) as client:
            result = await client.call_tool("divide", {"a": 7, "b": 0})
        log = server.log.read_text()
    seen = texts(result) + json.dumps(result.meta)
    assert "raise" not in seen and "cannot divide {a}" not in seen, seen
    assert 'File "calc.py", line 16, in divide' in log
    assert 'raise DivisionByZero(f"cannot divide {a} by zero")' in log


class RaisingRunner:
    """A runner that fails the way a dead supervisor or a full disk would: by raising, not with a CallResult."""

    async def call(self, **request: object) -> CallResult:
        raise OSError(28, "No space left on device")


async def test_a_failure_inside_funcsmith_is_a_tool_error_naming_it(catalog: Path) -> None:
    loaded = Catalog(catalog)
    loaded.load()
    async with Client(FuncsmithServer(loaded, RaisingRunner()).server, mode="legacy") as client:
        result = await client.call_tool("add", {"a": 1})
        assert result.is_error and result.structured_content is None
        assert texts(result) == "add failed: OSError: [Errno 28] No space left on device"
        assert (await client.call_tool("call_function", {"name": "add", "arguments": {"a": 1}})).is_error
