"""A catalogue of ten thousand functions, as the clients see it: start-up, tools/list, find_functions, a change.

Run from the project root: `python -m bench.scale [--functions N] [--starts S] [--queries Q] [--edits E]`.

Writes a synthetic folder (`bench.synthetic`: a few functions per module) and runs
`funcsmith serve` over stdio with the SDK's own client, timing what the client waits for:
- cold start: from spawning the server to the first `tools/list` page answered
  (`--expose all`) and to the first `find_functions` answered (`--expose search`);
- one page of `tools/list` (`--expose all`, every page of the whole list, walked a few times);
- `find_functions` with queries made of description words;
- a change to one module (a function's description rewritten in new words): from the atomic
  write to the `tools/list_changed` notification, and to `find_functions` ranking the changed
  function first for its new words (asked again and again until it does).
Prints a Markdown table of medians and 95th percentiles, and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bench.synthetic import Function, write_catalogue
from mcp_server import checkcache
from mcp_server.catalog import STATE_FOLDER
from mcp_server.history import write_atomic
from mcp_server.sandbox import temp_prefix

ROOT = Path(__file__).resolve().parent.parent


def params(folder: Path, work: Path, expose: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_server.cli", "serve", "--functions", str(folder), "--expose", expose],
        env={"FUNCSMITH_DATA_DIR": str(work / "data"), "XDG_STATE_HOME": str(work / "state")},
        cwd=str(ROOT),
    )


def server_cpu() -> float:
    """The CPU seconds (user + system) the running server, a child of this process, has used so far.

    On a machine other work keeps busy, wall-clock figures mostly measure the wait for a core;
    CPU time says what the server itself spends.
    """
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid() and b"mcp_server.cli" in cmdline:
            return (int(fields[11]) + int(fields[12])) / tick
    raise RuntimeError("no funcsmith server runs as a child of this process")


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile, in ms."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def find(client: Client, query: str, limit: int = 5) -> list[str]:
    result = await client.call_tool("find_functions", {"query": query, "limit": limit})
    assert not result.is_error and result.structured_content is not None, result
    return [f["name"] for f in result.structured_content["functions"]]


async def cold_starts(folder: Path, work: Path, starts: int) -> dict[str, list[float]]:
    """Server start to first answer, the first time (no checks recorded in the folder) and then `starts` times."""
    found: dict[str, list[float]] = {}
    record = folder / STATE_FOLDER / checkcache.RECORD
    for number in range(starts + 1):
        kind = "first" if number == 0 else "again"
        for expose, ask in (("all", lambda c: c.list_tools()), ("search", lambda c: find(c, "overdue invoices"))):
            if number == 0:
                record.unlink(missing_ok=True)
            elif not record.exists():
                raise RuntimeError(f"the server recorded no checks in {record}")
            started = time.perf_counter()
            async with Client(params(folder, work, expose), mode="legacy") as client:
                await ask(client)
                found.setdefault(f"{kind} {expose}", []).append(time.perf_counter() - started)
                found.setdefault(f"{kind} {expose} cpu", []).append(server_cpu())
    return found


async def session(folder: Path, work: Path, functions: list[Function], queries: int, edits: int) -> dict[str, Any]:
    """tools/list pages, find_functions and changes, in one `--expose all` session."""
    heard = anyio.Event()
    box = {"heard": heard}

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            box["heard"].set()

    rng = random.Random(5)
    result: dict[str, Any] = {"page": [], "walk": [], "find": [], "notify": [], "found": []}
    async with Client(params(folder, work, "all"), mode="legacy", message_handler=on_message) as client:
        for walk in range(6):
            if walk == 1:  # the first walk makes every tool; the others show what a page costs
                cpu = server_cpu()
            cursor: str | None = None
            walk_started = time.perf_counter()
            pages = 0
            while True:
                started = time.perf_counter()
                page = await client.list_tools(cursor=cursor, cache_mode="bypass")
                result["page"].append(time.perf_counter() - started)
                pages += 1
                cursor = page.next_cursor
                if cursor is None:
                    break
            if walk:
                result["walk"].append(time.perf_counter() - walk_started)
            else:
                result["page"].clear()
            result["pages"] = pages
        result["page cpu"] = (server_cpu() - cpu) / len(result["page"])
        await find(client, "overdue invoices")  # listing every function, the index is built on the first search
        cpu = server_cpu()
        for function in rng.sample(functions, min(queries, len(functions))):
            words = function.description.split(".")[0]
            result["find"].append(await timed(lambda words=words: find(client, words)))
        result["find cpu"] = (server_cpu() - cpu) / len(result["find"])
        cpu = server_cpu()

        modules: dict[str, list[Function]] = {}
        for function in functions:
            modules.setdefault(function.module, []).append(function)
        for number, module in enumerate(rng.sample(sorted(modules), edits)):
            target = modules[module][0].name
            words = f"wombat{number} platypus{number} marsupial ledger"
            path = folder / f"{module}.json"
            specs = json.loads(path.read_text())
            specs[0]["description"] = f"Reconcile the {words} entries."
            box["heard"] = anyio.Event()
            started = time.perf_counter()
            write_atomic(path, json.dumps(specs))
            with anyio.fail_after(30):
                await box["heard"].wait()
                result["notify"].append(time.perf_counter() - started)
                while (await find(client, words, 1)) != [target]:
                    pass
                result["found"].append(time.perf_counter() - started)
            await anyio.sleep(0.2)
        result["change cpu"] = (server_cpu() - cpu) / edits  # the finds asked until the change showed included
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=10_000, help="catalogue size (default 10000)")
    parser.add_argument("--starts", type=int, default=3, help="cold starts timed per mode (default 3)")
    parser.add_argument("--queries", type=int, default=200, help="find_functions queries timed (default 200)")
    parser.add_argument("--edits", type=int, default=20, help="module changes timed (default 20)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix=temp_prefix("scale")) as tmp:
        work = Path(tmp)
        folder = work / "functions"
        functions = write_catalogue(folder, args.functions)
        modules = len({f.module for f in functions})
        starts = anyio.run(cold_starts, folder, work, args.starts)
        measured = anyio.run(session, folder, work, functions, args.queries, args.edits)
    cpu = {key: statistics.median(value) for key, value in starts.items() if key.endswith(" cpu")}
    rows = [
        (
            "first start (nothing recorded) to first tools/list page (all)",
            starts["first all"],
            cpu["first all cpu"],
            5000,
        ),
        (
            "first start (nothing recorded) to first find_functions (search)",
            starts["first search"],
            cpu["first search cpu"],
            5000,
        ),
        ("start to first tools/list page (all)", starts["again all"], cpu["again all cpu"], 5000),
        ("start to first find_functions (search)", starts["again search"], cpu["again search cpu"], 5000),
        (f"tools/list, one page ({measured['pages']} pages)", measured["page"], measured["page cpu"], 100),
        ("tools/list, every page", measured["walk"], measured["page cpu"] * measured["pages"], None),
        ("find_functions", measured["find"], measured["find cpu"], 20),
        ("change -> tools/list_changed", measured["notify"], None, 100),
        ("change -> find_functions finds it", measured["found"], measured["change cpu"], 100),
    ]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.functions} functions in {modules} modules; {os.cpu_count()} cores, load average {load}\n")
    print("| measure | p50 | p95 | server CPU | target | samples |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, samples, used, target in rows:
        p50, p95 = percentiles(samples)
        goal = f"< {target} ms p50" if target else ""
        spent = f"{used * 1000:.1f} ms" if used is not None else ""
        print(f"| {label} | {p50:.1f} ms | {p95:.1f} ms | {spent} | {goal} | {len(samples)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
