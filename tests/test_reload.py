"""Hot reload over the real protocol: edit the folder while SDK clients are connected."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client

from mcp_server.catalog import BUILTIN_TOOLS, Catalog, Diagnostic
from mcp_server.watch import watch_catalog
from tests.mcp_helpers import Changes, handshake_client, http_server, stdio_params, texts

pytestmark = pytest.mark.anyio


def code(name: str, body: str = "return a + b") -> str:
    return f'"""A reload test module."""\n\nimport time\n\n\ndef {name}(a: int, b: int = 1) -> int:\n    {body}\n'


def spec(name: str, description: str = "Combine two numbers.") -> dict:
    return {
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a"],
        },
        "responses": [{"type": "integer"}],
        "examples": [{"prompt": "combine 2 and 3", "parameters": {"a": 2, "b": 3}, "result": 5}],
    }


def write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def write_pair(folder: Path, module: str, source: str, specs: dict | list) -> None:
    write_atomic(folder / f"{module}.py", source)
    write_atomic(folder / f"{module}.json", json.dumps(specs))


@asynccontextmanager
async def listening(client: Client) -> AsyncIterator[Changes]:
    """A 2026-07-28 client's changes, from its subscriptions/listen stream."""
    changes = Changes()
    async with client.listen(tools_list_changed=True) as subscription, anyio.create_task_group() as tasks:

        async def pump() -> None:
            async for _ in subscription:
                changes.seen()

        tasks.start_soon(pump)
        yield changes
        tasks.cancel_scope.cancel()


async def tool_names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools} - BUILTIN_TOOLS


async def status_of(client: Client, name: str) -> dict:
    listing = await client.call_tool("list_functions", {"query": name})
    return next(f for f in listing.structured_content["functions"] if f["name"] == name)


async def lifecycle(client: Client, changes: Changes, folder: Path) -> None:
    """Add, edit, break, fix, rename and delete a function; watch notifications and tools after each."""
    write_pair(folder, "combine", code("combine"), spec("combine"))
    await changes.next()
    assert await tool_names(client) == {"base", "combine"}
    assert (await client.call_tool("combine", {"a": 2, "b": 3})).structured_content == {"result": 5}

    write_atomic(folder / "combine.py", code("combine", "return a * b"))
    await changes.next()
    assert (await client.call_tool("combine", {"a": 2, "b": 3})).structured_content == {"result": 6}

    (folder / "combine.json").write_text('{"name": "combine", "description": ')  # broken JSON
    await anyio.sleep(0.5)
    assert await tool_names(client) == {"base", "combine"}
    assert (await client.call_tool("combine", {"a": 2, "b": 3})).structured_content == {"result": 6}
    status = await status_of(client, "combine")
    assert status["status"] == "stale"
    assert any("combine.json" in p and "JSON" in p for p in status["problems"])

    write_atomic(folder / "combine.py", code("combine", "return a - b"))
    write_atomic(folder / "combine.json", json.dumps(spec("combine")))
    await changes.next()
    assert (await client.call_tool("combine", {"a": 2, "b": 3})).structured_content == {"result": -1}
    assert (await status_of(client, "combine"))["status"] == "published"

    os.replace(folder / "combine.py", folder / "merge.py")
    os.replace(folder / "combine.json", folder / "merge.json")
    await changes.next()
    with anyio.fail_after(60):
        while (await status_of(client, "combine"))["module"] != "merge":
            await anyio.sleep(0.05)
    assert await tool_names(client) == {"base", "combine"}
    assert (await client.call_tool("combine", {"a": 5, "b": 3})).structured_content == {"result": 2}

    (folder / "merge.py").unlink()
    (folder / "merge.json").unlink()
    await changes.next()
    assert await tool_names(client) == {"base"}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "functions"
    folder.mkdir()
    write_pair(folder, "base", code("base"), spec("base"))
    return folder


async def test_lifecycle_over_stdio(folder: Path, tmp_path: Path) -> None:
    changes = Changes()
    params = stdio_params(folder, tmp_path / "data")
    async with handshake_client(params, message_handler=changes.handle, logging_callback=changes.log) as client:
        await lifecycle(client, changes, folder)
        assert any("combine.json" in line for line in changes.logs), changes.logs
    versions = sorted(p.name for p in (folder / ".funcsmith" / "history").iterdir())
    assert versions == ["combine", "merge"]


async def test_lifecycle_over_http_with_two_clients(folder: Path, tmp_path: Path) -> None:
    with http_server(folder, tmp_path / "data") as server:
        legacy_changes = Changes()
        async with (
            handshake_client(server.transport(), "2025-06-18", message_handler=legacy_changes.handle) as legacy,
            Client(server.transport(), mode="2026-07-28") as modern,
            listening(modern) as modern_changes,
        ):
            await lifecycle(modern, modern_changes, folder)
            # Both eras hear of every change: five at least (add, edit, fix, rename, delete).
            with anyio.fail_after(60):
                while legacy_changes.count < modern_changes.count:
                    await legacy_changes.next()
            assert legacy_changes.count == modern_changes.count >= 5
            assert await tool_names(legacy) == {"base"}


async def test_call_in_flight_finishes_on_the_old_version(folder: Path, tmp_path: Path) -> None:
    changes = Changes()
    write_pair(folder, "slow", code("slow", "time.sleep(1.0)\n    return a + b"), spec("slow"))
    async with handshake_client(stdio_params(folder, tmp_path / "data"), message_handler=changes.handle) as client:
        results: list[object] = []

        async def call_old() -> None:
            results.append(await client.call_tool("slow", {"a": 2, "b": 3}))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call_old)
            await anyio.sleep(0.3)
            write_atomic(folder / "slow.py", code("slow", "return a * b"))
            await changes.next()
            assert (await client.call_tool("slow", {"a": 2, "b": 3})).structured_content == {"result": 6}
        assert results[0].structured_content == {"result": 5}, texts(results[0])


async def test_a_change_before_initialized_arrives_is_still_told(folder: Path, tmp_path: Path) -> None:
    """A change the server applies between its initialize answer and the client's `initialized`.

    The client holds the handshake as done once it has sent `initialized`, so the change is one it
    must hear of; a busy machine can deliver `initialized` after the watcher's batch.
    """
    params = stdio_params(folder, tmp_path / "data")
    async with await anyio.open_process(
        [params.command, *params.args], cwd=params.cwd, env={**os.environ, **(params.env or {})}
    ) as server:
        assert server.stdin is not None and server.stdout is not None and server.stderr is not None
        out, err = BufferedByteReceiveStream(server.stdout), BufferedByteReceiveStream(server.stderr)

        async def send(message: dict) -> None:
            await server.stdin.send(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")

        async def until_logged(text: str) -> None:
            while text not in (await err.receive_until(b"\n", 1 << 20)).decode():
                pass

        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        with anyio.fail_after(60):
            await send({"id": 1, "method": "initialize", "params": hello})
            assert json.loads(await out.receive_until(b"\n", 1 << 20))["id"] == 1
            write_pair(folder, "late", code("late"), spec("late"))
            await until_logged("catalogue changed: added late")
            await send({"method": "notifications/initialized"})
            seen: list[str | None] = []
        with anyio.move_on_after(60):
            while "notifications/tools/list_changed" not in seen:
                seen.append(json.loads(await out.receive_until(b"\n", 1 << 20)).get("method"))
        assert "notifications/tools/list_changed" in seen, seen
        await server.stdin.aclose()


async def test_burst_of_writes_ends_consistent(folder: Path, tmp_path: Path) -> None:
    changes = Changes()
    async with handshake_client(stdio_params(folder, tmp_path / "data"), message_handler=changes.handle) as client:
        for i in range(50):
            write_pair(folder, f"f{i % 10}", code(f"f{i % 10}", f"return a + {i}"), spec(f"f{i % 10}"))
        await changes.after(0)
        expected = {"base"} | {f"f{i}" for i in range(10)}
        with anyio.fail_after(60):
            while await tool_names(client) != expected:
                await anyio.sleep(0.05)
        await anyio.sleep(0.3)
        # The last write of each module wins: f{k} adds 40 + k.
        for k in range(10):
            result = await client.call_tool(f"f{k}", {"a": 0})
            assert result.structured_content == {"result": 40 + k}
        # Writes group into batches (a batch ends after a quiet step or at the debounce cap), so a
        # burst is told in far fewer notifications than writes; how many depends on how the busy
        # machine schedules the writing loop, so the bound is the number of writes, not one.
        assert changes.count < 50, f"{changes.count} notifications for a burst of 50 writes"


async def test_editor_save_dance_and_partial_writes_never_publish_a_broken_tool(folder: Path, tmp_path: Path) -> None:
    changes = Changes()
    async with handshake_client(stdio_params(folder, tmp_path / "data"), message_handler=changes.handle) as client:
        # A .py written before its .json publishes nothing until the spec arrives.
        write_atomic(folder / "late.py", code("late", "return a + b + 100"))
        await anyio.sleep(0.3)
        assert await tool_names(client) == {"base"}
        write_atomic(folder / "late.json", json.dumps(spec("late")))
        await changes.next()
        assert (await client.call_tool("late", {"a": 1, "b": 1})).structured_content == {"result": 102}

        # Vim's dance: probe file, swap file, backup by rename, then the new file; the tool only changes once.
        (folder / "4913").write_text("")
        (folder / ".late.py.swp").write_bytes(b"\x00swap")
        (folder / "4913").unlink()
        os.replace(folder / "late.py", folder / "late.py~")
        (folder / "late.py").write_text(code("late", "return a + b + 200"))
        (folder / "late.py~").unlink()
        (folder / ".late.py.swp").unlink()
        await changes.next()
        assert (await client.call_tool("late", {"a": 1, "b": 1})).structured_content == {"result": 202}

        # A half-written file keeps the last good version serving; the finished write goes live.
        full = code("late", "return a + b + 300")
        with (folder / "late.py").open("w") as handle:
            handle.write(full[: len(full) // 2])
            handle.flush()
            await anyio.sleep(0.3)
            assert (await client.call_tool("late", {"a": 1, "b": 1})).structured_content == {"result": 202}
            assert (await status_of(client, "late"))["status"] == "stale"
            handle.write(full[len(full) // 2 :])
        await changes.next()
        assert (await client.call_tool("late", {"a": 1, "b": 1})).structured_content == {"result": 302}
        assert (await status_of(client, "late"))["status"] == "published"
        assert await tool_names(client) == {"base", "late"}


async def test_code_saved_before_its_spec_is_one_problem_not_a_warning_each_save(folder: Path) -> None:
    """A lone .py is a catalogue problem, reported once while it lasts, and gone when its .json lands."""
    catalog = Catalog(folder)
    catalog.load()
    batches: list[list[str]] = []
    reloaded = anyio.Event()

    async def on_reload(problems: list[Diagnostic]) -> None:
        nonlocal reloaded
        batches.append([str(p) for p in problems])
        reloaded.set()
        reloaded = anyio.Event()

    async def saved(write: Callable[[], None], until: Callable[[], bool] = lambda: True) -> None:
        """Write, then wait for reloads until `until` holds."""
        waiting = reloaded
        write()
        with anyio.fail_after(30):
            await waiting.wait()
            while not until():
                await reloaded.wait()

    async with anyio.create_task_group() as tasks:
        ready = anyio.Event()
        tasks.start_soon(partial(watch_catalog, catalog, on_reload, ready=ready))
        with anyio.fail_after(30):
            await ready.wait()
        for body in ("return a + b", "return a * b", "return a - b"):
            await saved(partial(write_atomic, folder / "late.py", code("late", body)))
        lone = [p for batch in batches for p in batch if "late.json is missing" in p]
        assert len(lone) == 1, batches
        assert any("late.json is missing" in str(d) for d in catalog.diagnostics)
        await saved(
            partial(write_atomic, folder / "late.json", json.dumps(spec("late"))), lambda: "late" in catalog.published
        )
        assert catalog.diagnostics == [] and "late" in catalog.published
        tasks.cancel_scope.cancel()
