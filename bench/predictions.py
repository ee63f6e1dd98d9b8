"""How often the embedded model's predicted example results are right: the evidence the examples' vote weighs.

Run from the project root: `python -m bench.predictions [--candidates N] [--json] [TASK ...]`.

A development set of everyday tasks kept apart from `bench.generate`'s, so that what the
pipeline's rules are built on is not what they are judged by. Each task has a reference
implementation written here. For each task the embedded Gemma 3 270M answers the first attempt's
prompt as the pipeline asks it (every candidate: code, then example calls whose results it predicts
from the task's words alone); each example's predicted result is compared with what the reference
gives for the example's own arguments. An example whose arguments the reference cannot take (a text
where it takes a number) is not counted. The model's code is not run: only the bench's own
reference functions are.

Reported per task: the candidates, the examples they predicted, how many are right, and how many
are an argument handed back unchanged (`"cat" -> "cat"`, the copy a small model falls back to).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import anyio

from mcp_server.draft import checkable, same_value, write
from mcp_server.draft import echoes as is_echo
from mcp_server.models import LlamaCppBackend, ModelError
from mcp_server.prompt import build_prompt


@dataclass(frozen=True, slots=True)
class DevTask:
    words: str
    reference: Callable[..., Any]
    inputs: tuple[tuple[Any, ...], ...]  # arguments of the reference cases, for `bench.generate --dev`


def _digits(text: str) -> int:
    return sum(char.isdigit() for char in text)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


DEV_TASKS = (
    DevTask("cube a number", lambda x: x**3, ((2,), (-3,), (0,))),
    DevTask("check whether a number is negative", lambda x: x < 0, ((-4,), (3,), (0,))),
    DevTask("get the last character of a string", lambda text: text[-1], (("hello",), ("a b",))),
    DevTask("double a number", lambda x: x * 2, ((4,), (-1.5,), (0,))),
    DevTask("count the digits in a string", _digits, (("a1b22",), ("none",), ("2024",))),
    DevTask("convert hours to minutes", lambda hours: hours * 60, ((2,), (0.5,), (0,))),
    DevTask("check whether a number is divisible by 3", lambda x: x % 3 == 0, ((9,), (10,), (0,))),
    DevTask("compute the product of a list of numbers", math.prod, (([2, 3, 4],), ([5],), ([1, -2],))),
    DevTask(
        "capitalize the first letter of a word",
        lambda word: word[:1].upper() + word[1:],
        (("hello",), ("World",), ("x",)),
    ),
    DevTask("count the spaces in a text", lambda text: text.count(" "), (("a b c",), ("none",), (" x ",))),
    DevTask("compute the perimeter of a square from the length of its side", lambda side: 4 * side, ((3,), (0.5,))),
    DevTask("convert inches to centimetres", lambda inches: inches * 2.54, ((1,), (10,), (0,))),
    DevTask("check whether a year is a leap year", _leap, ((2024,), (1900,), (2000,), (2023,))),
    DevTask("get the number of items in a list", len, (([1, 2, 3],), ([],), (["a"],))),
    DevTask("compute the average of two numbers", lambda a, b: (a + b) / 2, ((2, 4), (1, 2), (-3, 3))),
    DevTask(
        "check whether a string starts with a capital letter",
        lambda text: text[:1].isupper(),
        (("Hello",), ("hello",), ("",)),
    ),
    DevTask("raise a number a to the power b", lambda a, b: a**b, ((2, 3), (5, 0), (3, 2))),
    DevTask(
        "remove the vowels from a text",
        lambda text: "".join(c for c in text if c.lower() not in "aeiou"),
        (("banana",), ("sky",), ("Apple pie",)),
    ),
    DevTask("get the last element of a list", lambda items: items[-1], (([1, 2, 3],), (["a"],))),
    DevTask(
        "count the even numbers in a list",
        lambda numbers: sum(1 for n in numbers if n % 2 == 0),
        (([1, 2, 3, 4],), ([],), ([7],)),
    ),
    DevTask("compute the remainder of a divided by b", lambda a, b: a % b, ((7, 3), (6, 2), (1, 5))),
    DevTask("swap the case of each letter in a string", str.swapcase, (("Hello",), ("ABC def",))),
)


@dataclass(frozen=True, slots=True)
class Row:
    task: str
    candidates: int
    examples: int  # predicted results the reference could check
    right: int
    echoes: int  # predicted results that hand an argument back unchanged
    seconds: float


def judge(task: DevTask, examples: Sequence[dict[str, Any]]) -> tuple[int, int, int]:
    """The examples the reference can check, those predicted right, and those that echo an argument."""
    counted = right = echoes = 0
    for example in examples:
        if "result" not in example:
            continue
        arguments = list(example.get("parameters", {}).values())
        try:
            expected = task.reference(*arguments)
        except Exception:  # arguments of a kind the task does not take: not a prediction about the task
            continue
        counted += 1
        right += same_value(expected, example["result"])
        echoes += is_echo(example)
    return counted, right, echoes


async def run(tasks: Sequence[DevTask], candidates: int) -> list[Row]:
    backend = LlamaCppBackend()
    await anyio.to_thread.run_sync(backend.load)
    rows = []
    for task in tasks:
        started = time.perf_counter()
        prompt = build_prompt(task.words)
        examples = []
        for sample in range(candidates):
            draft, _ = await write(backend, prompt, sample=sample)
            examples.extend(e for spec in draft.specs[:1] for e in checkable(spec.get("examples")))
        counted, right, echoes = judge(task, examples)
        rows.append(Row(task.words, candidates, counted, right, echoes, time.perf_counter() - started))
        print(f"bench.predictions: {json.dumps(asdict(rows[-1]))}", file=sys.stderr, flush=True)
    return rows


def table(rows: Sequence[Row]) -> str:
    lines = ["| task | candidates | examples | right | echoes |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r.task} | {r.candidates} | {r.examples} | {r.right} | {r.echoes} |" for r in rows]
    examples, right, echoes = (sum(getattr(r, f) for r in rows) for f in ("examples", "right", "echoes"))
    share = right / examples if examples else 0.0
    lines.append(f"| **total** | | {examples} | **{right} ({share:.0%})** | {echoes} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="only the development tasks whose words contain one of these")
    parser.add_argument("--candidates", type=int, default=LlamaCppBackend.candidates, help="answers per task")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a Markdown table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    chosen = [t for t in DEV_TASKS if not args.tasks or any(word in t.words for word in args.tasks)]
    try:
        rows = anyio.run(run, chosen, args.candidates)
    except ModelError as exc:
        print(f"bench.predictions: {exc}", file=sys.stderr)
        return 1
    print(json.dumps([asdict(r) for r in rows], indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
