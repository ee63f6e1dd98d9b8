"""Function generation with the embedded Gemma 3 270M: what publishes, whether it is right, and where the time goes.

Run from the project root: `python -m bench.generate [--attempts N] [--candidates N] [--json] [--dev] [--votes]
[--given] [TASK ...]`.

Each task goes through the real pipeline (`Generator.create`: prompt, model, parse,
checks, verification in a real `Sandbox`, publish) into an empty temporary catalogue
of its own, one model for all tasks. Then the bench checks the published function against
reference cases of its own: inputs and the results an everyday reading of the task
expects, called through the same sandbox on scratch data. The model never sees them,
and the prompts are not tuned to them. A task is then `correct` (published, every
reference case right), `wrong` (published, some case wrong) or `no` (not published).
Arguments are given in order and matched to the code's parameters in order, so the
model may name its parameters as it likes.

Per task it reports the verdict, the attempts, the answers asked of the model (every
candidate and follow-up), the reference cases passed, the model's seconds and the pipeline's seconds (everything
but the model: parse, checks, verification, publish), the pipeline's share, and for a task not published why
not: the last attempt's kind of failure, each attempt's, and the first problem the model was told.
Model loading happens once, before the first task, and is reported apart, with the
candidates asked per attempt and the machine's cores and load averages at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

from bench.predictions import DEV_TASKS
from mcp_server.catalog import Catalog, FunctionEntry
from mcp_server.codecheck import inspect_module
from mcp_server.draft import same_value
from mcp_server.generate import Generator, Outcome
from mcp_server.models import Generation, LlamaCppBackend, ModelError, PromptLike
from mcp_server.sandbox import Sandbox, temp_prefix


@dataclass(frozen=True, slots=True)
class Case:
    """One reference call: positional arguments and the expected result."""

    arguments: tuple[Any, ...]
    result: Any


@dataclass(frozen=True, slots=True)
class Task:
    words: str
    cases: tuple[Case, ...]
    # Two examples as a user would give them (`--given`), apart from the reference cases: named arguments
    # (in a user's names, which need not be the model's) and the result.
    given: tuple[tuple[dict[str, Any], Any], ...] = ()


def _task(words: str, *cases: tuple[tuple[Any, ...], Any], given: tuple[tuple[dict[str, Any], Any], ...]) -> Task:
    return Task(words, tuple(Case(arguments, result) for arguments, result in cases), given)


TASKS = (
    _task(
        "add two numbers a and b",
        ((2, 3), 5),
        ((-1, 1), 0),
        ((2.5, 0.25), 2.75),
        given=(({"a": 10, "b": 4}, 14), ({"a": -3, "b": 8}, 5)),
    ),
    _task(
        "reverse a string",
        (("abc",), "cba"),
        (("",), ""),
        (("ab c",), "c ba"),
        given=(({"text": "hello"}, "olleh"), ({"text": "dog"}, "god")),
    ),
    _task(
        "convert celsius to fahrenheit",
        ((0,), 32),
        ((100,), 212),
        ((-40,), -40),
        given=(({"celsius": 10}, 50), ({"celsius": 37}, 98.6)),
    ),
    _task(
        "count the words in a text",
        (("hello world",), 2),
        (("one",), 1),
        (("a b  c",), 3),
        given=(({"text": "one two three"}, 3), ({"text": "hi"}, 1)),
    ),
    _task(
        "multiply two numbers",
        ((3, 4), 12),
        ((0, 5), 0),
        ((-2, 3), -6),
        given=(({"a": 6, "b": 7}, 42), ({"a": -1, "b": 9}, -9)),
    ),
    _task(
        "check whether a number is even",
        ((4,), True),
        ((7,), False),
        ((0,), True),
        given=(({"number": 10}, True), ({"number": 3}, False)),
    ),
    _task(
        "make a string upper case",
        (("abc",), "ABC"),
        (("Hi there!",), "HI THERE!"),
        given=(({"text": "hello"}, "HELLO"), ({"text": "Big dog"}, "BIG DOG")),
    ),
    _task(
        "find the maximum of a list of numbers",
        (([1, 5, 3],), 5),
        (([-2, -1],), -1),
        (([7],), 7),
        given=(({"numbers": [4, 9, 2]}, 9), ({"numbers": [-7, -3]}, -3)),
    ),
    _task(
        "reverse the words in a sentence",
        (("the quick brown fox",), "fox brown quick the"),
        (("hello",), "hello"),
        given=(({"sentence": "one two three"}, "three two one"), ({"sentence": "good morning"}, "morning good")),
    ),
    _task(
        "compound interest: the final amount of a principal at an annual rate (a fraction) after a number of years",
        ((1000, 0.05, 10), 1000 * 1.05**10),
        ((100, 0.1, 1), 110.00000000000001),
        ((500, 0.0, 3), 500),
        given=(
            ({"principal": 200, "rate": 0.5, "years": 2}, 450),
            ({"principal": 1000, "rate": 0.1, "years": 2}, 1210),
        ),
    ),
    _task(
        "check whether a string is a palindrome",
        (("racecar",), True),
        (("hello",), False),
        (("a",), True),
        given=(({"text": "level"}, True), ({"text": "world"}, False)),
    ),
    _task(
        "count the vowels in a text",
        (("hello",), 2),
        (("sky",), 0),
        (("Apple pie",), 4),
        given=(({"text": "banana"}, 3), ({"text": "rhythm"}, 0)),
    ),
    _task(
        "convert fahrenheit to celsius",
        ((32,), 0),
        ((212,), 100),
        ((-40,), -40),
        given=(({"fahrenheit": 50}, 10), ({"fahrenheit": 41}, 5)),
    ),
    _task(
        "compute the factorial of a non-negative integer",
        ((0,), 1),
        ((1,), 1),
        ((5,), 120),
        given=(({"n": 3}, 6), ({"n": 4}, 24)),
    ),
    _task(
        "compute the average of a list of numbers",
        (([1, 2, 3],), 2),
        (([5],), 5),
        (([1, 2],), 1.5),
        given=(({"numbers": [2, 4, 6]}, 4), ({"numbers": [1, 4]}, 2.5)),
    ),
    _task(
        "check whether a number is prime",
        ((2,), True),
        ((9,), False),
        ((13,), True),
        ((1,), False),
        given=(({"number": 7}, True), ({"number": 8}, False)),
    ),
    _task(
        "sum a list of numbers",
        (([1, 2, 3],), 6),
        (([],), 0),
        (([-1, 1.5],), 0.5),
        given=(({"numbers": [2, 5, 8]}, 15), ({"numbers": [10, -4]}, 6)),
    ),
    _task(
        "find the minimum of a list of numbers",
        (([3, 1, 2],), 1),
        (([-5, 0],), -5),
        given=(({"numbers": [8, 2, 5]}, 2), ({"numbers": [0, -3, 4]}, -3)),
    ),
    _task(
        "compute the area of a circle from its radius",
        ((1,), math.pi),
        ((2,), 4 * math.pi),
        ((0,), 0),
        given=(({"radius": 3}, 9 * math.pi), ({"radius": 0.5}, 0.25 * math.pi)),
    ),
    _task(
        "remove the spaces from a string",
        (("a b c",), "abc"),
        (("none",), "none"),
        ((" x ",), "x"),
        given=(({"text": "h e y"}, "hey"), ({"text": "no spaces"}, "nospaces")),
    ),
    _task(
        "count how many times a character occurs in a text",
        (("banana", "a"), 3),
        (("kiwi", "z"), 0),
        given=(({"text": "hello", "character": "l"}, 2), ({"text": "mississippi", "character": "s"}, 4)),
    ),
    _task(
        "compute the absolute difference between two numbers",
        ((3, 5), 2),
        ((5, 3), 2),
        ((-1, 1), 2),
        given=(({"a": 10, "b": 4}, 6), ({"a": -2, "b": 5}, 7)),
    ),
)


# Development tasks, kept apart from these, with reference cases from their reference functions.
DEV = tuple(Task(d.words, tuple(Case(a, d.reference(*a)) for a in d.inputs)) for d in DEV_TASKS)

_REASON = 160  # characters of the first problem shown in the table; --json keeps it whole


class CountedBackend(LlamaCppBackend):
    """The embedded model, counting the answers it is asked for: every candidate and every follow-up."""

    answers = 0

    async def generate(self, prompt: PromptLike, **options: Any) -> Generation:
        self.answers += 1
        return await super().generate(prompt, **options)


@dataclass(frozen=True, slots=True)
class Row:
    task: str
    published: str
    verdict: str  # correct | wrong | no
    attempts: int
    answers: int  # model answers asked for: candidates and follow-ups
    cases_passed: int
    cases_total: int
    model_seconds: float
    pipeline_seconds: float
    wall_seconds: float
    wrong: tuple[str, ...]  # the reference cases a published function got wrong
    failure: str = ""  # why nothing was published: the last attempt's kind of failure
    reason: str = ""  # and its first problem, in the words the model was told
    kinds: tuple[str, ...] = ()  # the kind of failure of each attempt, in order

    @property
    def why(self) -> str:
        """The failure kind and its first problem, short enough for a table cell."""
        if not self.failure:
            return ""
        reason = self.reason if len(self.reason) <= _REASON else self.reason[: _REASON - 3] + "..."
        kinds = f" (attempts: {', '.join(self.kinds)})" if len(self.kinds) > 1 else ""
        return f"{self.failure}{kinds}: {reason}" if reason else f"{self.failure}{kinds}"

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "published": self.published,
            "verdict": self.verdict,
            "attempts": self.attempts,
            "answers": self.answers,
            "cases_passed": self.cases_passed,
            "cases_total": self.cases_total,
            "model_seconds": round(self.model_seconds, 3),
            "pipeline_seconds": round(self.pipeline_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "wrong": list(self.wrong),
            "failure": self.failure or None,
            "reason": self.reason or None,
            "attempt_failures": list(self.kinds),
        }


async def check(
    sandbox: Sandbox, source: str, module: str, function: str, cases: Sequence[Case], data_dir: Path
) -> list[str]:
    """The reference cases `function` of `source` gets wrong, each said as call -> got, expected."""
    names = inspect_module(source, f"{module}.py").functions[function].parameters
    wrong = []
    for case in cases:
        call = f"{function}{case.arguments!r}"
        if len(case.arguments) > len(names):
            wrong.append(f"{call}: it takes {len(names)} argument(s)")
            continue
        result = await sandbox.call(
            module=module,
            source=source,
            filename=f"{module}.py",
            function=function,
            arguments=dict(zip(names, case.arguments, strict=False)),
            data_dir=data_dir,
        )
        if not result.ok:
            wrong.append(f"{call} raised {result.error_message}, expected {case.result!r}")
        elif not same_value(case.result, result.value):
            wrong.append(f"{call} -> {result.value!r}, expected {case.result!r}")
    return wrong


@dataclass(frozen=True, slots=True)
class Run:
    """A bench run's rows and the conditions it ran in."""

    rows: list[Row]
    load_seconds: float
    candidates: int
    agreement: bool
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    votes: list[dict[str, Any]]  # with `--votes`: every examples vote, judged on the reference cases

    def conditions(self) -> str:
        agree = "two must agree" if self.agreement else "no agreement needed"
        before, after = (" / ".join(f"{x:.2f}" for x in load) for load in (self.load_before, self.load_after))
        return (
            f"Model load (once): {self.load_seconds:.2f} s. Candidates per attempt: {self.candidates} ({agree}). "
            f"Machine: {os.cpu_count()} cores, load averages (1/5/15 min) {before} at the start, {after} at the end."
        )


async def run(
    tasks: Sequence[Task],
    attempts: int,
    candidates: int | None = None,
    judge_votes: bool = False,
    given: bool = False,
) -> Run:
    """Every task through the pipeline on one model, then its reference cases.

    `candidates` None leaves the count to the pipeline's default for the embedded model; `judge_votes`
    runs the code of every examples vote on the reference cases too; `given` passes each task's user
    examples to `create`, as a person would give them.
    """
    votes: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    backend = CountedBackend()
    started = time.perf_counter()
    await anyio.to_thread.run_sync(backend.load)
    load_seconds = time.perf_counter() - started
    rows = []
    count, agreement = 1, False
    with tempfile.TemporaryDirectory(prefix=temp_prefix("bench")) as scratch:
        async with Sandbox(Path(scratch) / "data") as sandbox:
            for number, task in enumerate(tasks):
                # A catalogue of its own per task: no name taken by an earlier task, nothing to reuse.
                folder = Path(scratch) / f"task-{number}"
                (folder / "functions").mkdir(parents=True)
                (folder / "reference").mkdir()
                catalog = Catalog(folder / "functions")
                catalog.load()
                generator = Generator(catalog, sandbox, lambda: backend, attempts=attempts, candidates=candidates)
                count, agreement = generator.sampling(backend)
                began, asked = time.perf_counter(), backend.answers
                examples = [{"parameters": p, "result": r} for p, r in task.given] if given else []
                outcome = await generator.create(task.words, examples=examples)
                wall = time.perf_counter() - began
                entry = catalog.get(outcome.published[0]) if outcome.published else None
                wrong = []
                if entry is not None:
                    reference = folder / "reference"
                    wrong = await check(sandbox, entry.source, entry.module, entry.name, task.cases, reference)
                rows.append(_row(task, outcome, backend.answers - asked, entry, wrong, wall))
                # Each task as it ends, on stderr: a long run shows its progress and a cut-off run keeps its rows.
                print(f"bench.generate: {json.dumps(rows[-1].as_json())}", file=sys.stderr, flush=True)
                if judge_votes:
                    votes.extend(await _judged_votes(sandbox, task, outcome, folder / "reference"))
    return Run(rows, load_seconds, count, agreement, load_before, os.getloadavg(), votes)


async def _judged_votes(sandbox: Sandbox, task: Task, outcome: Outcome, data_dir: Path) -> list[dict[str, Any]]:
    """Every examples vote of the task's attempts beside whether the judged code passes the reference cases:
    what a rule for trusting a small model's examples can be worked out on (with `--dev`, not the bench's tasks)."""
    judged = []
    for attempt in outcome.attempts:
        for vote in attempt.votes:
            wrong = await check(sandbox, vote.code, "judged", vote.function, task.cases, data_dir)
            row = {"task": task.words, "attempt": attempt.number, **asdict(vote), "correct": not wrong}
            del row["code"]
            judged.append(row)
            print(f"bench.generate vote: {json.dumps(row)}", file=sys.stderr, flush=True)
    return judged


def _row(task: Task, outcome: Outcome, answers: int, entry: FunctionEntry | None, wrong: list[str], wall: float) -> Row:
    total = len(task.cases)
    return Row(
        task=task.words,
        published=", ".join(outcome.published),
        verdict="no" if entry is None else ("wrong" if wrong else "correct"),
        attempts=len(outcome.attempts),
        answers=answers,
        cases_passed=total - len(wrong) if entry is not None else 0,
        cases_total=total,
        model_seconds=outcome.model_seconds,
        pipeline_seconds=outcome.pipeline_seconds,
        wall_seconds=wall,
        wrong=tuple(wrong),
        failure="" if entry is not None or outcome.failure is None else outcome.failure.name.lower(),
        reason="" if entry is not None else next(iter(outcome.problems), ""),
        kinds=tuple(a.failure.name.lower() if a.failure else "-" for a in outcome.attempts),
    )


def table(rows: Sequence[Row], conditions: str) -> str:
    """The results as a Markdown table, with totals, the pipeline's share, the conditions, what was wrong,
    and why each task that was not published was not."""
    lines = [
        "| task | published | verdict | attempts | model answers | reference cases | model s | pipeline s | share "
        "| why not published |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        total = row.model_seconds + row.pipeline_seconds
        share = row.pipeline_seconds / total if total else 0.0
        cases = f"{row.cases_passed}/{row.cases_total}" if row.published else "-"
        lines.append(
            f"| {row.task} | {row.published or '-'} | {row.verdict} | {row.attempts} | {row.answers} | "
            f"{cases} | {row.model_seconds:.2f} | {row.pipeline_seconds:.3f} | {share:.1%} | {_cell(row.why)} |"
        )
    model = sum(r.model_seconds for r in rows)
    pipeline = sum(r.pipeline_seconds for r in rows)
    share = pipeline / (model + pipeline) if model + pipeline else 0.0
    verdicts = {v: sum(1 for r in rows if r.verdict == v) for v in ("correct", "wrong", "no")}
    lines.append(
        f"| **total** | {sum(1 for r in rows if r.published)}/{len(rows)} | **{verdicts['correct']} correct, "
        f"{verdicts['wrong']} wrong, {verdicts['no']} not published** | {sum(r.attempts for r in rows)} | "
        f"{sum(r.answers for r in rows)} | | {model:.2f} | {pipeline:.3f} | **{share:.1%}** | {_kinds(rows)} |"
    )
    lines.append("")
    lines.append(conditions)
    for row in rows:
        for problem in row.wrong:
            lines.append(f"- wrong: {row.task}: {problem}")
    return "\n".join(lines)


def _kinds(rows: Sequence[Row]) -> str:
    """How many unpublished tasks failed in each way, most first."""
    counts = Counter(r.failure for r in rows if r.failure)
    return ", ".join(f"{kind} {count}" for kind, count in counts.most_common())


def _cell(text: str) -> str:
    """Text that stays in one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="only the bench tasks whose words contain one of these")
    parser.add_argument("--attempts", type=int, default=3, help="attempts per task (default 3)")
    parser.add_argument(
        "--candidates",
        type=int,
        help="independent answers per attempt (default: the pipeline's default for the embedded model)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a Markdown table")
    parser.add_argument(
        "--dev",
        action="store_true",
        help="the development tasks of bench.predictions instead of the bench's, their cases from its references",
    )
    parser.add_argument(
        "--votes", action="store_true", help="also judge the code of every examples vote on the reference cases"
    )
    parser.add_argument(
        "--given",
        action="store_true",
        help="give each bench task two examples of a user's (apart from its reference cases) as create's examples",
    )
    args = parser.parse_args(argv)
    if args.given and args.dev:
        print("bench.generate: --given has examples for the bench's tasks only, not --dev", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    tasks = DEV if args.dev else TASKS
    chosen = [t for t in tasks if not args.tasks or any(word in t.words for word in args.tasks)]
    if not chosen:
        print(f"bench.generate: no bench task matches {args.tasks}", file=sys.stderr)
        return 2
    try:
        done = anyio.run(run, chosen, args.attempts, args.candidates, args.votes, args.given)
    except ModelError as exc:
        print(f"bench.generate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        shown = {"conditions": done.conditions(), "tasks": [r.as_json() for r in done.rows], "votes": done.votes}
        print(json.dumps(shown, indent=2))
    else:
        print(table(done.rows, done.conditions()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
