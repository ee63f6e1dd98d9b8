"""The generation bench's own judge: reference cases called through the real sandbox, by position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.generate import DEV, TASKS, Case, Row, Task, _row, check, table
from mcp_server.catalog import Catalog
from mcp_server.draft import telling
from mcp_server.generate import Attempt, Outcome, user_examples_problems
from mcp_server.sandbox import Sandbox
from mcp_server.verify import Failure

pytestmark = pytest.mark.anyio


def test_the_bench_holds_twenty_everyday_tasks_each_with_reference_cases() -> None:
    assert len(TASKS) >= 20 and len({t.words for t in TASKS}) == len(TASKS)
    assert all(len(t.cases) >= 2 for t in TASKS)


def test_each_bench_task_has_two_user_examples_apart_from_its_reference_cases() -> None:
    """What `--given` passes to `create`: examples that tell right code from wrong, never a reference case."""
    for task in TASKS:
        given = [{"parameters": p, "result": r} for p, r in task.given]
        assert len(given) == 2 and telling(given) and user_examples_problems(given) == [], task.words
        assert all(len(p) == len(task.cases[0].arguments) for p, _ in task.given), task.words
        cases = {json.dumps(c.arguments) for c in task.cases}
        assert not {json.dumps(list(p.values())) for p, _ in task.given} & cases, task.words


def test_the_development_tasks_take_their_cases_from_their_references() -> None:
    assert len(DEV) >= 20 and not {t.words for t in DEV} & {t.words for t in TASKS}
    assert all(len(t.cases) >= 2 for t in DEV)
    (cube,) = [t for t in DEV if t.words == "cube a number"]
    assert cube.cases[0] == Case((2,), 8)


async def test_reference_cases_judge_a_published_function(catalog: Path, tmp_path: Path) -> None:
    loaded = Catalog(catalog)
    loaded.load()
    add = loaded.get("add")
    divide = loaded.get("divide")
    assert add is not None and divide is not None
    data = tmp_path / "reference"
    data.mkdir()
    async with Sandbox(tmp_path / "data") as sandbox:
        adding = (add.source, add.module, add.name)
        assert await check(sandbox, *adding, [Case((2, 3), 5), Case((2.5,), 2.5)], data) == []
        wrong = await check(sandbox, *adding, [Case((2, 3), 6), Case((1, 2, 3), 6)], data)
        failed = await check(sandbox, divide.source, divide.module, divide.name, [Case((1, 0), 0)], data)
    assert wrong == ["add(2, 3) -> 5, expected 6", "add(1, 2, 3): it takes 2 argument(s)"]
    assert len(failed) == 1 and failed[0].startswith("divide(1, 0) raised ") and "cannot divide 1 by zero" in failed[0]


def test_the_table_counts_verdicts_and_names_what_was_wrong() -> None:
    rows = [
        Row("add", "add", "correct", 1, 2, 3, 3, 4.0, 0.1, 4.2, ()),
        Row("flip", "flip", "wrong", 2, 4, 1, 2, 6.0, 0.2, 6.3, ("flip('ab') -> 'ab', expected 'ba'",)),
        Row("sort", "", "no", 3, 3, 0, 2, 9.0, 0.3, 9.4, (), "weak", "examples | tell nothing", ("disagree", "weak")),
        Row("sum", "", "no", 1, 3, 0, 2, 9.0, 0.3, 9.4, (), "weak", "a" * 200, ("weak",)),
    ]
    text = table(rows, "Model load (once): 1.50 s.")
    assert "| **total** | 2/4 | **1 correct, 1 wrong, 2 not published** | 7 | 12 |" in text
    assert "| sort | - | no | 3 | 3 | - |" in text
    assert "| weak (attempts: disagree, weak): examples \\| tell nothing |" in text
    assert f"| weak: {'a' * 157}... |" in text and text.count("| weak 2 |") == 1
    assert "- wrong: flip: flip('ab') -> 'ab', expected 'ba'" in text and "Model load (once): 1.50 s." in text


def test_a_row_says_why_a_task_was_not_published() -> None:
    outcome = Outcome(task="sort a list")
    outcome.attempts = [Attempt(1, failure=Failure.DISAGREE), Attempt(2, failure=Failure.EXAMPLE)]
    outcome.failure, outcome.problems = Failure.EXAMPLE, ["example 1 of sort: the example is wrong", "another"]
    row = _row(Task("sort a list", ()), outcome, 6, None, [], 1.0)
    assert (row.verdict, row.failure, row.kinds) == ("no", "example", ("disagree", "example"))
    assert row.reason == "example 1 of sort: the example is wrong"
    shown = row.as_json()
    assert shown["failure"] == "example" and shown["attempt_failures"] == ["disagree", "example"]
    assert row.why == "example (attempts: disagree, example): example 1 of sort: the example is wrong"
