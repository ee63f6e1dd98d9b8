"""Call latency and throughput over MCP (stdio): the sandbox against the SDK's own floor and a naive design.

Run from the project root: `python -m bench.calls [--calls N] [--concurrency 1 4 16] [--raw] [--pace MS]`.

The same trivial function (`add`) is served over the same transport to the same
SDK client by: (a) `sdk`: the honest floor, the SDK's own `MCPServer` with one
`@tool` add function, no funcsmith at all; and funcsmith's server with four
runners behind it: (b) `sandbox`: the Sandbox as shipped (a fresh, locked-down
process per call, from the zygote's warm pool), (c) `inprocess`: funcsmith's
server and tool layer with no isolation at all (the function called in the
server process), so `inprocess` - `sdk` is what funcsmith's own call path
costs, (d) `spawn`: the naive sandbox, the same
Sandbox with `start="spawn"`: a fresh interpreter per call running the same
supervisor and worker code with the same lockdown, (e) `python-c`: a bare
`python -I -c` one-liner per call, no lockdown at all (a lower bound for any
fresh-interpreter design, not a sandbox). The first three run side by side,
taking turns in blocks of calls, so their ratios hold on a busy machine. `--raw`
times `Sandbox.call` directly instead, without MCP. `--cost` says what each
sandboxed call costs (`Sandbox.call` back to back): CPU and page faults in the
server, in the zygote, and in the call processes it forked and reaped. Page
faults hold steady where the clock does not, on a machine shared with other work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.server.mcpserver import MCPServer

from mcp_server.catalog import Catalog
from mcp_server.sandbox import CallResult, Sandbox, SandboxGrant, temp_prefix
from mcp_server.server import FuncsmithServer, serve_stdio

ROOT = Path(__file__).resolve().parent.parent
RUNNERS = ("sdk", "sandbox", "inprocess", "spawn", "python-c")
NAIVE = ("spawn", "python-c")
BLOCKS = 10  # the runners measured together take turns, this many blocks of calls each
FUNCTION_PY = 'def add(a: int, b: int) -> int:\n    """Add two integers."""\n    return a + b\n'
FUNCTION_SPEC = {
    "name": "add",
    "description": "Add two integers.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
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
    """A bare `python -I -c` process per call: an interpreter start and nothing else, no isolation."""

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


def serve_sdk_floor() -> None:
    """The floor: the SDK's own MCPServer with one `@tool` add function over stdio, no funcsmith at all."""
    floor = MCPServer("sdk-floor", log_level="WARNING")

    @floor.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    anyio.run(floor.run_stdio_async)


def serve(kind: str, functions: Path, data: Path) -> None:
    """The server side of one measurement: the catalogue over stdio, with the chosen runner."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if kind == "sdk":
        serve_sdk_floor()
        return
    catalog = Catalog(functions)
    catalog.load()

    async def main() -> None:
        if kind in {"sandbox", "spawn"}:
            async with Sandbox(data, start="spawn" if kind == "spawn" else "fork") as sandbox:
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


def caller_for(kind: str, client: Client) -> Callable[[int], Awaitable[None]]:
    """One checked `add` call through `client`, the server of runner `kind`."""

    async def one(n: int) -> None:
        result = await client.call_tool("add", {"a": n, "b": 1})
        if result.is_error or result.structured_content != {"result": n + 1}:
            raise RuntimeError(f"{kind}: add({n}, 1) answered {result}")

    return one


async def measure(
    kinds: Sequence[str], functions: Path, data: Path, calls: int, levels: Sequence[int], pace_s: float = 0.0
) -> dict[str, dict[int, Stats]]:
    """Start one server per runner kind, then time `calls` tool calls of each at each concurrency level."""
    async with contextlib.AsyncExitStack() as stack:
        ones = {}
        for kind in kinds:
            params = StdioServerParameters(
                command=sys.executable,
                args=["-m", "bench.calls", "serve", kind, str(functions), str(data)],
                cwd=str(ROOT),
            )
            ones[kind] = caller_for(kind, await stack.enter_async_context(Client(params)))
        return await timed(ones, calls, levels, pace_s)


async def measure_raw(
    kind: str, data: Path, calls: int, levels: Sequence[int], pace_s: float = 0.0
) -> dict[int, Stats]:
    """Time `Sandbox.call` itself (no MCP, no server) with start method `kind` ("sandbox" forks, "spawn")."""
    async with Sandbox(data, start="spawn" if kind == "spawn" else "fork") as sandbox:
        return (await timed({kind: sandbox_caller(kind, sandbox)}, calls, levels, pace_s))[kind]


def sandbox_caller(kind: str, sandbox: Sandbox) -> Callable[[int], Awaitable[None]]:
    """One checked `add` call straight through `sandbox.call`, no MCP."""

    async def one(n: int) -> None:
        result = await sandbox.call(
            module="bench", source=FUNCTION_PY, filename="bench.py", function="add", arguments={"a": n, "b": 1}
        )
        if not result.ok or result.value != n + 1:
            raise RuntimeError(f"{kind}: add({n}, 1) answered {result}")

    return one


@dataclass(frozen=True)
class Usage:
    """CPU seconds and minor page faults of a process, and of its children it has reaped."""

    cpu_s: float
    faults: int
    children_cpu_s: float
    children_faults: int

    @classmethod
    def of_self(cls) -> Usage:
        """This process's own (its zygote is reaped only once the Sandbox closes)."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        return cls(own.ru_utime + own.ru_stime, own.ru_minflt, 0.0, 0)

    @classmethod
    def of(cls, pid: int) -> Usage:
        """From /proc/PID/stat (proc(5)): minflt, cminflt, utime, stime, cutime, cstime."""
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        minflt, cminflt = int(fields[7]), int(fields[8])
        utime, stime, cutime, cstime = (int(f) / os.sysconf("SC_CLK_TCK") for f in fields[11:15])
        return cls(utime + stime, minflt, cutime + cstime, cminflt)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.cpu_s - other.cpu_s,
            self.faults - other.faults,
            self.children_cpu_s - other.children_cpu_s,
            self.children_faults - other.children_faults,
        )


def zygote_pid() -> int:
    """The zygote: the one child of this process running `_zygote` (the Sandbox started it)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        try:
            parent = entry.name.isdigit() and (entry / "stat").read_text().rpartition(")")[2].split()[1]
            if parent == me and b"_zygote" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:  # it ended meanwhile
            continue
    raise RuntimeError("the sandbox has no zygote running")


@dataclass(frozen=True)
class Cost:
    """What `calls` sandboxed calls made back to back cost the server and the zygote's tree, and their wall time."""

    calls: int
    server: Usage
    tree: Usage  # the zygote's own, and its reaped children's: the call processes
    wall_s: float

    def per_call(self) -> dict[str, tuple[float, float]]:
        """CPU ms and page faults per call, by process."""
        rows = {
            "server": (self.server.cpu_s, self.server.faults),
            "zygote": (self.tree.cpu_s, self.tree.faults),
            "call processes": (self.tree.children_cpu_s, self.tree.children_faults),
        }
        return {name: (cpu / self.calls * 1000, faults / self.calls) for name, (cpu, faults) in rows.items()}

    def table(self) -> str:
        rows = self.per_call()
        lines = [f"{'process':<16}{'CPU ms/call':>12}{'faults/call':>12}"]
        lines += [f"{name:<16}{cpu:>12.2f}{faults:>12.0f}" for name, (cpu, faults) in rows.items()]
        total, wall = sum(cpu for cpu, _ in rows.values()), self.wall_s / self.calls * 1000
        lines += ["", f"all: {total:.2f} ms of CPU per call; {wall:.2f} ms of wall time per call"]
        lines.append("(call processes: those the zygote reaped during the calls; the clock ticks are 10 ms each)")
        return "\n".join(lines)


async def measure_cost(data: Path, calls: int) -> Cost:
    """What each sandboxed call costs, `Sandbox.call` back to back, by process."""
    async with Sandbox(data) as sandbox:
        one = sandbox_caller("sandbox", sandbox)
        for n in range(20):  # warm up the zygote, its pool and the caches
            await one(n)
        zygote = zygote_pid()
        server, tree = Usage.of_self(), Usage.of(zygote)
        started = time.perf_counter()
        for n in range(calls):
            await one(n)
        wall = time.perf_counter() - started
        return Cost(calls, Usage.of_self() - server, Usage.of(zygote) - tree, wall)


async def run_block(
    one: Callable[[int], Awaitable[None]], numbers: Sequence[int], level: int, latencies: list[float], pace_s: float
) -> float:
    """Make the calls `numbers` with `level` concurrent callers, each pausing `pace_s` after each answer; add each
    latency to `latencies`; the wall time."""

    async def caller(offset: int) -> None:
        for n in numbers[offset::level]:
            started = time.perf_counter()
            await one(n)
            latencies.append(time.perf_counter() - started)
            if pace_s:
                await anyio.sleep(pace_s)

    started = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        for offset in range(level):
            tasks.start_soon(caller, offset)
    return time.perf_counter() - started


async def timed(
    ones: Mapping[str, Callable[[int], Awaitable[None]]], calls: int, levels: Sequence[int], pace_s: float = 0.0
) -> dict[str, dict[int, Stats]]:
    """Warm up, then make `calls` calls of each `one` at each concurrency level, each caller waiting for its answer
    (and then `pace_s`: with a pause, a call's latency is its own path's, not a share of the work of the calls
    before it; back to back on 2 cores, one caller's p50 is bound by the CPU each call costs in all).

    The runners take turns, a block of calls each, so that a change in the machine's load
    (other jobs starting or ending) falls on every runner alike: their ratios hold on a busy machine.
    """
    for one in ones.values():
        for n in range(min(20, calls)):  # warm up the server, the zygote and the caches
            await one(n)
    results: dict[str, dict[int, Stats]] = {kind: {} for kind in ones}
    for level in levels:
        latencies: dict[str, list[float]] = {kind: [] for kind in ones}
        walls = dict.fromkeys(ones, 0.0)
        for block in range(BLOCKS):
            for kind, one in ones.items():
                walls[kind] += await run_block(one, range(block, calls, BLOCKS), level, latencies[kind], pace_s)
        for kind, measured in latencies.items():
            ordered = sorted(measured)
            results[kind][level] = Stats(
                p50_ms=statistics.median(ordered) * 1000,
                p95_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
                calls_per_s=len(ordered) / walls[kind],
            )
    return results


def report(results: Mapping[str, Mapping[int, Stats]], levels: Sequence[int]) -> str:
    """The table and the ratios the targets are stated in."""
    lines = [f"{'runner':<12}{'callers':>8}{'p50 ms':>10}{'p95 ms':>10}{'calls/s':>10}"]
    for kind, by_level in results.items():
        for level in levels:
            s = by_level[level]
            lines.append(f"{kind:<12}{level:>8}{s.p50_ms:>10.2f}{s.p95_ms:>10.2f}{s.calls_per_s:>10.1f}")
    one, top = min(levels), max(levels)
    lines.append("")
    if "sdk" in results:
        floor = results["sdk"][one].p50_ms
        if "sandbox" in results:
            ratio = results["sandbox"][one].p50_ms / floor
            lines.append(f"sandbox p50 / SDK floor p50 ({one} caller): {ratio:.2f}x (target <= 3x)")
        if "inprocess" in results:
            extra = results["inprocess"][one].p50_ms - floor
            ratio = results["inprocess"][one].p50_ms / floor
            lines.append(
                f"in-process p50 - SDK floor p50 ({one} caller): {extra:+.2f} ms, {ratio:.2f}x (target <= +0.3 ms)"
            )
    if "sandbox" in results:
        sandbox = results["sandbox"]
        if "inprocess" in results:
            ratio = sandbox[one].p50_ms / results["inprocess"][one].p50_ms
            lines.append(f"sandbox p50 / in-process p50 ({one} caller): {ratio:.2f}x")
        if "spawn" in results:
            ratio = results["spawn"][one].p50_ms / sandbox[one].p50_ms
            lines.append(f"naive sandbox (spawn) p50 / sandbox p50 ({one} caller): {ratio:.1f}x (target >= 15x)")
        if "python-c" in results:
            ratio = results["python-c"][one].p50_ms / sandbox[one].p50_ms
            lines.append(f"bare `python -c` p50 / sandbox p50 ({one} caller): {ratio:.1f}x (no lockdown: reference)")
        lines.append(f"sandbox throughput, {top} callers: {sandbox[top].calls_per_s:.0f} calls/s (target >= 150)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        serve(args[1], Path(args[2]), Path(args[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per concurrency level (default 400)")
    parser.add_argument("--naive-calls", type=int, default=100, help="calls per level, spawn and python-c runners")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    parser.add_argument("--raw", action="store_true", help="time Sandbox.call directly (sandbox and spawn only)")
    parser.add_argument("--cost", action="store_true", help="CPU and page faults per sandboxed call, by process")
    parser.add_argument(
        "--pace", type=float, default=0.0, metavar="MS", help="each caller pauses MS after each answer (default 0)"
    )
    options = parser.parse_args(args)
    pace_s = options.pace / 1000
    with tempfile.TemporaryDirectory(prefix=temp_prefix("bench")) as scratch:
        functions = Path(scratch) / "functions"
        functions.mkdir()
        (functions / "bench.py").write_text(FUNCTION_PY)
        (functions / "bench.json").write_text(json.dumps(FUNCTION_SPEC))
        data = Path(scratch) / "data"
        results: dict[str, dict[int, Stats]] = {}
        if options.cost:
            print(anyio.run(measure_cost, data, options.calls).table())
            return
        if options.raw:
            for kind in (k for k in options.runners if k in {"sandbox", "spawn"}):
                calls = options.naive_calls if kind in NAIVE else options.calls
                results[kind] = anyio.run(measure_raw, kind, data, calls, options.concurrency, pace_s)
        else:
            # The runners compared by the targets are measured together, taking turns; the naive ones after.
            together = [k for k in options.runners if k not in NAIVE]
            if together:
                results.update(
                    anyio.run(measure, together, functions, data, options.calls, options.concurrency, pace_s)
                )
            for kind in (k for k in options.runners if k in NAIVE):
                results.update(
                    anyio.run(measure, [kind], functions, data, options.naive_calls, options.concurrency, pace_s)
                )
    print(report(results, options.concurrency))


if __name__ == "__main__":
    main()
