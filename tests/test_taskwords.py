"""The inputs a task's words name, read on the generation bench's task words and on the phrases that are no input."""

from __future__ import annotations

import pytest

from bench.generate import DEV, TASKS
from mcp_server.taskwords import ANY, named_inputs


@pytest.mark.parametrize(
    ("task", "phrases"),
    [
        ("count how many times a character occurs in a text", [("a character", 1), ("a text", 1)]),
        ("compute the absolute difference between two numbers", [("two numbers", 2)]),
        ("find the maximum of a list of numbers", [("a list of numbers", 1)]),
        (
            "compound interest: the final amount of a principal at an annual rate (a fraction) after a number of years",
            [("a principal", 1), ("an annual rate", 1), ("a number of years", 1)],
        ),
        ("check whether a string is a palindrome", [("a string", 1)]),  # what it is: no input
        ("write a function that returns a list of the primes below a number", [("a number", 1)]),
        (
            "record an expense with an amount, a category and a date",
            [("an amount", 1), ("a category", 1), ("a date", 1)],
        ),
        ("raise a number a to the power b", [("a number", 1)]),  # names as letters count nothing
        ("convert celsius to fahrenheit", []),
    ],
)
def test_named_inputs(task: str, phrases: list[tuple[str, int]]) -> None:
    assert list(named_inputs(task).phrases) == phrases


def test_it_counts_more_inputs_than_a_bench_reference_takes_on_one_task_only() -> None:
    """A lower bound: on the 44 bench and development tasks it never counts more inputs than the reference
    function takes, except "starts with a capital letter", which reads as an input it is not."""
    over = [t.words for t in (*TASKS, *DEV) if named_inputs(t.words).count > len(t.cases[0].arguments)]
    assert over == ["check whether a string starts with a capital letter"]


def test_the_problem_names_the_inputs_and_the_parameters() -> None:
    needs = named_inputs("count how many times a character occurs in a text")
    assert needs.missing("count", ["text", "character"]) is None
    assert "names 2 inputs (a character, a text), but count takes only text" in (needs.missing("count", ["text"]) or "")
    assert "takes no parameters" in (needs.missing("count", []) or "")
    assert "the task names 1 input (a number), but" in (named_inputs("cube a number").missing("cube", []) or "")
    assert ANY.missing("count", []) is None
