"""The prediction bench's development set and its judge (no model: the judging alone)."""

from __future__ import annotations

from bench.generate import TASKS
from bench.predictions import DEV_TASKS, judge
from mcp_server.prompt import _CALL_SHOTS, _FEW_SHOT, _WORKED
from mcp_server.retrieve import terms


def test_the_development_set_is_apart_from_the_bench() -> None:
    words = {t.words for t in DEV_TASKS}
    assert len(words) == len(DEV_TASKS) >= 20
    assert not words & {t.words for t in TASKS}


def test_no_task_the_prompts_show_is_a_task_the_benches_judge() -> None:
    """A task shown with its answer in a prompt would be copied, not solved: neither bench may judge one, in
    the same words or in the same content words (stemmed, function and filler words left out, so
    "multiply two numbers" is "multiply two numbers x and y")."""
    shown = {task for task, _, _ in _CALL_SHOTS} | {e.task for e in (*_FEW_SHOT, _WORKED)}
    judged = {t.words for t in TASKS} | {t.words for t in DEV_TASKS}
    alike = {(s, j) for s in shown for j in judged if s == j or set(terms(s)) == set(terms(j))}
    assert not alike, f"the prompts show tasks that a bench judges: {sorted(alike)}"


def test_predictions_are_judged_by_the_reference_on_their_own_arguments() -> None:
    (cube,) = [t for t in DEV_TASKS if t.words == "cube a number"]
    examples = [
        {"parameters": {"n": 3}, "result": 27},  # right
        {"parameters": {"n": 3}, "result": 6},  # wrong
        {"parameters": {"n": 1}, "result": 1},  # right, and the argument handed back
        {"parameters": {"n": "cat"}, "result": "cat"},  # the reference cannot take it: not counted
        {"parameters": {"n": 2}, "error": "ValueError"},  # no result predicted: not counted
    ]
    assert judge(cube, examples) == (3, 2, 1)
