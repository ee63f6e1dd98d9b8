"""Retrieval over a large catalogue: index build, rebuild after one change, and query time.

Run from the project root: `python -m bench.retrieve [--functions N] [--queries Q]`.

The catalogue is synthetic but shaped like the shipped one: each function's name,
description and parameter descriptions are drawn from the shipped functions' own
words, so term statistics look like a real catalogue's. Reported: the terms of every
function and bm25s's index over them (first build), a change to one function served at
once beside that index, the rebuild a worker thread then makes (the terms of the others
are reused), and the p50/p95 of `search` and `reuse`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcp_server.catalog import Catalog, FunctionEntry
from mcp_server.retrieve import CatalogIndex, terms

SHIPPED = Path(__file__).resolve().parent.parent / "functions"


class _Published:
    """A stand-in for the catalogue's published mapping, swapped on every change like the real one."""

    def __init__(self, entries: Mapping[str, FunctionEntry]) -> None:
        self.published: Mapping[str, FunctionEntry] = dict(entries)


def _vocabulary() -> list[str]:
    catalog = Catalog(SHIPPED)
    catalog.load()
    words: list[str] = []
    for entry in catalog.published.values():
        words.extend(entry.description.replace(",", " ").replace(".", " ").split())
    return words


def _entry(number: int, words: list[str], rng: random.Random) -> FunctionEntry:
    name = "_".join(rng.sample(words, 2)).lower().strip("_'()") + f"_{number}"
    name = "".join(c if c.isalnum() else "_" for c in name)
    spec: dict[str, Any] = {
        "name": name,
        "description": " ".join(rng.choices(words, k=rng.randint(15, 45))),
        "parameters": {
            "type": "object",
            "properties": {
                f"p{i}": {"type": "string", "description": " ".join(rng.choices(words, k=6))} for i in range(3)
            },
        },
        "responses": [{"type": "string"}],
    }
    path = Path(f"{name}.py")
    return FunctionEntry(name, name, spec, "", path, path.with_suffix(".json"))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=10_000, help="catalogue size (default 10000)")
    parser.add_argument("--queries", type=int, default=200, help="queries timed (default 200)")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    words = _vocabulary()
    entries = {e.name: e for e in (_entry(n, words, rng) for n in range(args.functions))}
    source = _Published(entries)
    index = CatalogIndex(source)  # type: ignore[arg-type]  # duck-typed: only .published is read

    started = time.perf_counter()
    index.current()
    first = time.perf_counter() - started
    changed = next(iter(entries))
    source.published = {**entries, changed: _entry(args.functions, words, rng)}
    started = time.perf_counter()
    index.current()
    beside = time.perf_counter() - started
    rebuilt = CatalogIndex(source, rebuild_after=0)  # type: ignore[arg-type]
    rebuilt.current()
    source.published = {**entries, changed: _entry(args.functions + 1, words, rng)}
    started = time.perf_counter()
    while rebuilt.current().pending:
        time.sleep(0.001)
    rebuild = time.perf_counter() - started

    queries = [" ".join(rng.choices(words, k=rng.randint(3, 10))) for _ in range(args.queries)]
    timed: dict[str, list[float]] = {"search": [], "reuse": []}
    for query in queries:
        for kind in timed:
            started = time.perf_counter()
            index.search(query, 10) if kind == "search" else index.reuse(query)
            timed[kind].append(time.perf_counter() - started)
    started = time.perf_counter()
    for entry in entries.values():
        terms(entry.description)
    tokenize = time.perf_counter() - started

    print(f"functions: {args.functions}")
    print(f"first build (terms + index): {first * 1000:.0f} ms (stemming the descriptions: {tokenize * 1000:.0f} ms)")
    print(f"one change, beside it:       {beside * 1000:.1f} ms")
    print(f"rebuild (worker thread):     {rebuild * 1000:.0f} ms")
    for kind, samples in timed.items():
        p50, p95 = _percentiles(samples)
        print(f"{kind:6} p50 / p95:          {p50 * 1000:.2f} / {p95 * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
