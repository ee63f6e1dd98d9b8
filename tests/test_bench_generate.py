"""The generation bench's own judge: reference cases called through the real sandbox, by position."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.generate import TASKS, Case, Row, check, table
from mcp_server.catalog import Catalog
from mcp_server.sandbox import Sandbox

pytestmark = pytest.mark.anyio


def test_the_bench_holds_twenty_everyday_tasks_each_with_reference_cases() -> None:
    assert len(TASKS) >= 20 and len({t.words for t in TASKS}) == len(TASKS)
    assert all(len(t.cases) >= 2 for t in TASKS)


async def test_reference_cases_judge_a_published_function(catalog: Path, tmp_path: Path) -> None:
    loaded = Catalog(catalog)
    loaded.load()
    add = loaded.get("add")
    divide = loaded.get("divide")
    assert add is not None and divide is not None
    data = tmp_path / "reference"
    data.mkdir()
    async with Sandbox(tmp_path / "data") as sandbox:
        assert await check(sandbox, add, [Case((2, 3), 5), Case((2.5,), 2.5)], data) == []
        wrong = await check(sandbox, add, [Case((2, 3), 6), Case((1, 2, 3), 6)], data)
        failed = await check(sandbox, divide, [Case((1, 0), 0)], data)
    assert wrong == ["add(2, 3) -> 5, expected 6", "add(1, 2, 3): it takes 2 argument(s)"]
    assert len(failed) == 1 and failed[0].startswith("divide(1, 0) raised ") and "cannot divide 1 by zero" in failed[0]


def test_the_table_counts_verdicts_and_names_what_was_wrong() -> None:
    rows = [
        Row("add", "add", "correct", 1, 2, 3, 3, 4.0, 0.1, 4.2, ()),
        Row("flip", "flip", "wrong", 2, 4, 1, 2, 6.0, 0.2, 6.3, ("flip('ab') -> 'ab', expected 'ba'",)),
        Row("sort", "", "no", 3, 3, 0, 2, 9.0, 0.3, 9.4, ()),
    ]
    text = table(rows, "Model load (once): 1.50 s.")
    assert "| **total** | 2/3 | **1 correct, 1 wrong, 1 not published** | 6 | 9 |" in text
    assert "| sort | - | no | 3 | 3 | - |" in text
    assert "- wrong: flip: flip('ab') -> 'ab', expected 'ba'" in text and "Model load (once): 1.50 s." in text
