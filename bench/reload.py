"""How fast the folder reaches the clients: change-to-notification, change-to-answer, cold start, tools/list.

Run: python bench/reload.py [--edits N]
Starts `funcsmith serve` over stdio on generated catalogues of 10 and 1,000
functions and measures, with the SDK's client, the time from an atomic write of
a new function pair to (a) the tools/list_changed notification and (b) the new
tool answering a call; then server start to the first tools/list page answered,
and tools/list of the whole catalogue (every page). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_server.sandbox import temp_prefix

ROOT = Path(__file__).resolve().parent.parent


def source(name: str, offset: int) -> str:
    return (
        f'"""Benchmark function."""\n\n\ndef {name}(a: int) -> int:\n    """Add {offset}."""\n    return a + {offset}\n'
    )


def spec(name: str) -> str:
    return json.dumps(
        {
            "name": name,
            "description": f"Add a constant to a ({name}).",
            "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            "responses": [{"type": "integer"}],
            "examples": [{"prompt": "add", "parameters": {"a": 1}}],
        }
    )


def write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def make_catalogue(folder: Path, size: int) -> None:
    folder.mkdir(parents=True)
    for i in range(size):
        (folder / f"fn{i:04d}.py").write_text(source(f"fn{i:04d}", i))
        (folder / f"fn{i:04d}.json").write_text(spec(f"fn{i:04d}"))


def params(folder: Path, data: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_server.cli", "--functions", str(folder), "serve", "--expose", "all"],
        env={"FUNCSMITH_DATA_DIR": str(data)},
        cwd=str(ROOT),
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def list_all(client: Client) -> list[types.Tool]:
    """Every page of tools/list."""
    page = await client.list_tools(cache_mode="bypass")
    tools = list(page.tools)
    while page.next_cursor is not None:
        page = await client.list_tools(cursor=page.next_cursor)
        tools += page.tools
    return tools


async def measure(size: int, edits: int, work: Path) -> dict[str, float]:
    folder = work / f"cat{size}"
    make_catalogue(folder, size)
    changed = anyio.Event()
    box = {"event": changed}

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            box["event"].set()

    started = time.perf_counter()
    async with Client(params(folder, work / f"data{size}"), mode="legacy", message_handler=on_message) as client:
        await client.list_tools()
        cold = time.perf_counter() - started
        list_times = []
        for _ in range(10):
            t = time.perf_counter()
            listed = await list_all(client)
            list_times.append(time.perf_counter() - t)
        assert len(listed) >= size
        await client.call_tool(f"fn{0:04d}", {"a": 1})  # warm the sandbox
        notify, answer = [], []
        for k in range(edits):
            name = f"new{k:03d}"
            box["event"] = anyio.Event()
            t0 = time.perf_counter()
            write_atomic(folder / f"{name}.py", source(name, 1000 + k))
            write_atomic(folder / f"{name}.json", spec(name))
            with anyio.fail_after(10):
                await box["event"].wait()
            notify.append(time.perf_counter() - t0)
            while True:
                result = await client.call_tool(name, {"a": 1})
                if not result.is_error:
                    break
            answer.append(time.perf_counter() - t0)
            assert result.structured_content == {"result": 1001 + k}
            await anyio.sleep(0.05)
    return {
        "cold": cold,
        "list_p50": statistics.median(list_times),
        "notify_p50": statistics.median(notify),
        "notify_p95": pct(notify, 0.95),
        "answer_p50": statistics.median(answer),
        "answer_p95": pct(answer, 0.95),
    }


async def main(edits: int) -> None:
    with tempfile.TemporaryDirectory(prefix=temp_prefix("bench")) as tmp:
        work = Path(tmp)
        rows = {size: await measure(size, edits, work) for size in (10, 1000)}
    ms = 1000
    print(f"Hot reload, {edits} edits per catalogue, stdio, {os.cpu_count()} cores\n")
    print("| catalogue | change→notification p50 / p95 | change→answer p50 / p95 | cold start | tools/list |")
    print("| --- | --- | --- | --- | --- |")
    for size, r in rows.items():
        print(
            f"| {size} functions | {r['notify_p50'] * ms:.0f} / {r['notify_p95'] * ms:.0f} ms "
            f"| {r['answer_p50'] * ms:.0f} / {r['answer_p95'] * ms:.0f} ms "
            f"| {r['cold'] * ms:.0f} ms | {r['list_p50'] * ms:.1f} ms |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    anyio.run(main, parser.parse_args().edits)
