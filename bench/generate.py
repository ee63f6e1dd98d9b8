"""Function generation with the embedded Gemma 3 270M: what publishes, and where the time goes.

Run from the project root: `python -m bench.generate [--attempts N] [--json] [TASK ...]`.

Each task goes through the real pipeline (`Generator.create`: prompt, model, parse,
checks, examples in a real `Sandbox`, publish) into a fresh temporary catalogue,
one model for all tasks. Per task it reports the attempts, whether a tool was
published, how many checked examples passed in the last attempt, the model's
seconds and the pipeline's seconds (parse + check + verify + publish), and the
pipeline's share of the total. Model loading happens once, before the first
task, and is reported apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from mcp_server.catalog import Catalog
from mcp_server.generate import Generator, Outcome
from mcp_server.models import LlamaCppBackend, ModelError
from mcp_server.sandbox import Sandbox

TASKS = (
    "add two numbers a and b",
    "reverse a string",
    "convert celsius to fahrenheit",
    "count the words in a text",
    "multiply two numbers",
    "check whether a number is even",
    "make a string upper case",
    "find the maximum of a list of numbers",
)


@dataclass(frozen=True, slots=True)
class Row:
    task: str
    published: str
    attempts: int
    examples_passed: int
    examples_total: int
    model_seconds: float
    pipeline_seconds: float
    wall_seconds: float

    @classmethod
    def of(cls, outcome: Outcome, wall: float) -> Row:
        last = outcome.attempts[-1] if outcome.attempts else None
        return cls(
            task=outcome.task,
            published=", ".join(outcome.published),
            attempts=len(outcome.attempts),
            examples_passed=last.examples_passed if last else 0,
            examples_total=last.examples_total if last else 0,
            model_seconds=outcome.model_seconds,
            pipeline_seconds=outcome.pipeline_seconds,
            wall_seconds=wall,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "published": self.published,
            "attempts": self.attempts,
            "examples_passed": self.examples_passed,
            "examples_total": self.examples_total,
            "model_seconds": round(self.model_seconds, 3),
            "pipeline_seconds": round(self.pipeline_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
        }


async def run(tasks: Sequence[str], attempts: int) -> tuple[list[Row], float]:
    """Every task through the pipeline on one model; the rows and the model's load time."""
    backend = LlamaCppBackend()
    started = time.perf_counter()
    await anyio.to_thread.run_sync(backend.load)
    load_seconds = time.perf_counter() - started
    rows = []
    with tempfile.TemporaryDirectory(prefix="funcsmith-bench-") as scratch:
        folder = Path(scratch) / "functions"
        folder.mkdir()
        catalog = Catalog(folder)
        catalog.load()
        async with Sandbox(Path(scratch) / "data") as sandbox:
            generator = Generator(catalog, sandbox, lambda: backend, attempts=attempts, refresh=True)
            for task in tasks:
                began = time.perf_counter()
                outcome = await generator.create(task, generate_anyway=True)
                rows.append(Row.of(outcome, time.perf_counter() - began))
                logging.info("%s: %s", task, outcome.summary())
    return rows, load_seconds


def table(rows: Sequence[Row], load_seconds: float) -> str:
    """The results as a Markdown table, with totals and the pipeline's share."""
    lines = [
        "| task | published | attempts | examples passed | model s | pipeline s | pipeline share |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        total = row.model_seconds + row.pipeline_seconds
        share = row.pipeline_seconds / total if total else 0.0
        lines.append(
            f"| {row.task} | {row.published or 'no'} | {row.attempts} | "
            f"{row.examples_passed}/{row.examples_total} | {row.model_seconds:.2f} | "
            f"{row.pipeline_seconds:.3f} | {share:.1%} |"
        )
    model = sum(r.model_seconds for r in rows)
    pipeline = sum(r.pipeline_seconds for r in rows)
    share = pipeline / (model + pipeline) if model + pipeline else 0.0
    published = sum(1 for r in rows if r.published)
    lines.append(
        f"| **total** | **{published}/{len(rows)}** | {sum(r.attempts for r in rows)} | "
        f"{sum(r.examples_passed for r in rows)}/{sum(r.examples_total for r in rows)} | "
        f"{model:.2f} | {pipeline:.3f} | **{share:.1%}** |"
    )
    lines.append("")
    lines.append(f"Model load (once): {load_seconds:.2f} s. Examples passed: in the last attempt of each task.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="tasks in words (default: the fixed set)")
    parser.add_argument("--attempts", type=int, default=3, help="attempts per task (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a Markdown table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        rows, load_seconds = anyio.run(run, args.tasks or TASKS, args.attempts)
    except ModelError as exc:
        print(f"bench.generate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"load_seconds": round(load_seconds, 3), "tasks": [r.as_json() for r in rows]}, indent=2))
    else:
        print(table(rows, load_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
