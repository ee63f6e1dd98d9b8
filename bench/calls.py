"""Call latency and throughput over MCP (stdio): the sandbox against the in-process floor and a naive design.

Run from the project root: `python -m bench.calls [--calls N] [--concurrency 1 4 16]`.

The same trivial function is served by the same server over the same transport,
with three runners behind it: (a) the Sandbox (a fresh, locked-down process per
call, forked from a zygote), (b) in process (the floor: no isolation at all),
(c) a fresh `python` interpreter per call (the naive way to get a fresh process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_server.catalog import Catalog
from mcp_server.sandbox import CallResult, Sandbox, SandboxGrant
from mcp_server.server import FuncsmithServer, serve_stdio

ROOT = Path(__file__).resolve().parent.parent
RUNNERS = ("sandbox", "inprocess", "subprocess")
FUNCTION_PY = 'def echo(n: int) -> int:\n    """Return n."""\n    return n\n'
FUNCTION_SPEC = {
    "name": "echo",
    "description": "Return the number it is given.",
    "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    "responses": [{"type": "integer"}],
}
# What the naive runner's fresh interpreter runs: read the request, exec the source, print the result.
_CHILD = (
    "import json, sys; r = json.load(sys.stdin); ns = {'__name__': r['module']}; "
    "exec(compile(r['source'], r['filename'], 'exec'), ns); "
    "json.dump({'value': ns[r['function']](**r['arguments'])}, sys.stdout)"
)


class InProcessRunner:
    """The floor: the function compiled once and called in the server process, with no isolation."""

    def __init__(self) -> None:
        self._modules: dict[str, dict[str, Any]] = {}

    async def call(
        self,
        *,
        module: str,
        source: str,
        filename: str,
        function: str,
        arguments: Mapping[str, Any],
        grant: SandboxGrant | None = None,
        data_dir: Path | None = None,
    ) -> CallResult:
        started = time.perf_counter()
        namespace = self._modules.get(source)
        if namespace is None:
            namespace = {"__name__": module}
            exec(compile(source, filename, "exec"), namespace)
            self._modules[source] = namespace
        try:
            value = namespace[function](**arguments)
        except Exception as exc:
            return CallResult(ok=False, error_type=type(exc).__name__, error_message=str(exc))
        return CallResult(ok=True, value=value, elapsed_s=time.perf_counter() - started)


class FreshInterpreterRunner:
    """The naive design: a new `python` process (a full interpreter start) for every call."""

    async def call(
        self,
        *,
        module: str,
        source: str,
        filename: str,
        function: str,
        arguments: Mapping[str, Any],
        grant: SandboxGrant | None = None,
        data_dir: Path | None = None,
    ) -> CallResult:
        started = time.perf_counter()
        request = {"module": module, "source": source, "filename": filename, "function": function}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            _CHILD,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(json.dumps({**request, "arguments": dict(arguments)}).encode())
        if process.returncode != 0:
            return CallResult(ok=False, error_type="Crashed", error_message=err.decode(errors="replace")[-500:])
        return CallResult(ok=True, value=json.loads(out)["value"], elapsed_s=time.perf_counter() - started)


def serve(kind: str, functions: Path, data: Path) -> None:
    """The server side of one measurement: the catalogue over stdio, with the chosen runner."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    catalog = Catalog(functions)
    catalog.load()

    async def main() -> None:
        if kind == "sandbox":
            async with Sandbox(data) as sandbox:
                await serve_stdio(FuncsmithServer(catalog, sandbox))
        else:
            runner = InProcessRunner() if kind == "inprocess" else FreshInterpreterRunner()
            await serve_stdio(FuncsmithServer(catalog, runner))

    anyio.run(main)


@dataclass(frozen=True)
class Stats:
    """Latencies (ms) and throughput of one runner at one concurrency."""

    p50_ms: float
    p95_ms: float
    calls_per_s: float


async def measure(kind: str, functions: Path, data: Path, calls: int, levels: Sequence[int]) -> dict[int, Stats]:
    """Start a server with runner `kind`, then time `calls` tool calls at each concurrency level."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "bench.calls", "serve", kind, str(functions), str(data)],
        cwd=str(ROOT),
    )
    results: dict[int, Stats] = {}
    async with Client(params) as client:

        async def one(n: int, latencies: list[float]) -> None:
            started = time.perf_counter()
            result = await client.call_tool("echo", {"n": n})
            latencies.append(time.perf_counter() - started)
            if result.is_error or result.structured_content != {"result": n}:
                raise RuntimeError(f"{kind}: echo({n}) answered {result}")

        for n in range(min(20, calls)):  # warm up the server, the zygote and the caches
            await one(n, [])
        for level in levels:
            latencies: list[float] = []

            async def worker(offset: int, latencies: list[float] = latencies, level: int = level) -> None:
                for n in range(offset, calls, level):
                    await one(n, latencies)

            started = time.perf_counter()
            async with anyio.create_task_group() as tasks:
                for offset in range(level):
                    tasks.start_soon(worker, offset)
            wall = time.perf_counter() - started
            ordered = sorted(latencies)
            results[level] = Stats(
                p50_ms=statistics.median(ordered) * 1000,
                p95_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
                calls_per_s=len(ordered) / wall,
            )
    return results


def report(results: Mapping[str, Mapping[int, Stats]], levels: Sequence[int]) -> str:
    """The table and the ratios the targets are stated in."""
    lines = [f"{'runner':<12}{'callers':>8}{'p50 ms':>10}{'p95 ms':>10}{'calls/s':>10}"]
    for kind, by_level in results.items():
        for level in levels:
            s = by_level[level]
            lines.append(f"{kind:<12}{level:>8}{s.p50_ms:>10.2f}{s.p95_ms:>10.2f}{s.calls_per_s:>10.1f}")
    if {"sandbox", "inprocess", "subprocess"} <= set(results):
        one, top = min(levels), max(levels)
        sandbox, floor, naive = results["sandbox"], results["inprocess"], results["subprocess"]
        lines += [
            "",
            f"sandbox p50 / in-process p50 ({one} caller): "
            f"{sandbox[one].p50_ms / floor[one].p50_ms:.2f}x (target <= 3x)",
            f"fresh interpreter p50 / sandbox p50 ({one} caller): "
            f"{naive[one].p50_ms / sandbox[one].p50_ms:.1f}x (target >= 15x)",
            f"sandbox throughput, {top} callers: {sandbox[top].calls_per_s:.0f} calls/s (target >= 150)",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        serve(args[1], Path(args[2]), Path(args[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per concurrency level (default 400)")
    parser.add_argument("--naive-calls", type=int, default=100, help="calls per level for the fresh-interpreter runner")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    options = parser.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="funcsmith-bench-") as scratch:
        functions = Path(scratch) / "functions"
        functions.mkdir()
        (functions / "bench.py").write_text(FUNCTION_PY)
        (functions / "bench.json").write_text(json.dumps(FUNCTION_SPEC))
        results = {}
        for kind in options.runners:
            calls = options.naive_calls if kind == "subprocess" else options.calls
            results[kind] = anyio.run(measure, kind, functions, Path(scratch) / "data", calls, options.concurrency)
            print(f"measured {kind}", file=sys.stderr)
    print(report(results, options.concurrency))


if __name__ == "__main__":
    main()
