"""build_prompt: the rules and task reach the model, and every example answer we show is flawless."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from mcp_server.parse import parse_answer, reconcile
from mcp_server.prompt import _CALL_SHOTS, COMPLETION_STOP, build_prompt, calls_prompt, is_repair, render_call, task_of

TASK = "reverse the words in a sentence"
SCHEMA = json.loads(resources.files("mcp_server").joinpath("function.schema.json").read_text(encoding="utf-8"))


def _few_shot_answers(completion: str) -> list[tuple[str, str]]:
    """(task, answer) for every complete example in a completion prompt; the open task is left out."""
    return [(task, answer) for task, answer in (shot.split("\n", 1) for shot in completion.split("Task: ")[1:-1])]


def _run_examples(code: str, spec: dict[str, Any]) -> None:
    """Execute the spec's examples against the code, as the publishing checks do."""
    namespace: dict[str, Any] = {}
    exec(compile(code, "<few-shot>", "exec"), namespace)
    function = namespace[spec["name"]]
    for example in spec["examples"]:
        if "error" in example:
            with pytest.raises(namespace[example["error"]]):
                function(**example["parameters"])
        else:
            assert function(**example["parameters"]) == example["result"], example["prompt"]


def test_chat_prompt_holds_rules_format_and_task() -> None:
    prompt = build_prompt(f"  {TASK}\n")
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    system = prompt.messages[0]["content"]
    for rule in (
        "Python 3 only",
        "standard library only",
        "No classes as the interface, no scripts",
        "never print them",
        "raise a custom exception",
        "no example calls",
        "pickle or JSON files under `~/data/`",
        "exactly one ```python block",
        "one ```function_spec block per",
        '"required": [<params without defaults>]',
        '"responses"',
        '"errors"',
        "every result must be exactly right",
    ):
        assert rule in system, rule
    assert prompt.messages[1]["content"] == f"Task: {TASK}"


def test_worked_example_in_the_chat_prompt_is_flawless() -> None:
    parsed = parse_answer(build_prompt(TASK).messages[0]["content"])
    assert parsed.problems == ()
    assert parsed.repairs == ()
    assert parsed.code is not None
    (spec,) = parsed.specs
    jsonschema.validate(spec, SCHEMA)
    assert reconcile(parsed.code, spec) == (spec, ())
    assert any("error" in example for example in spec["examples"])
    _run_examples(parsed.code, spec)


def test_repair_round_passes_previous_answer_and_problems() -> None:
    previous = "```python\ndef reverse_words(s):\n    print(s[::-1])\n```"
    problems = ["no function_spec block found", "reverse_words prints instead of returning"]
    prompt = build_prompt(TASK, feedback=problems, previous_answer=previous)
    roles = [m["role"] for m in prompt.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert prompt.messages[2]["content"] == previous
    assert prompt.messages[3]["content"] == (
        "Your previous answer had these problems:\n"
        "- no function_spec block found\n"
        "- reverse_words prints instead of returning\n"
        "Answer again with the complete corrected code and specs."
    )


def test_feedback_without_previous_answer_still_reaches_the_model() -> None:
    prompt = build_prompt(TASK, feedback=["function_spec block 1: invalid JSON at line 2 column 3: x"])
    assert [m["role"] for m in prompt.messages] == ["system", "user", "user"]
    assert "function_spec block 1: invalid JSON at line 2 column 3: x" in prompt.messages[2]["content"]


def test_completion_prompt_ends_where_the_answer_starts() -> None:
    completion = build_prompt(TASK).completion
    assert completion.endswith(f"\n\nTask: {TASK}\n```python\n")
    assert completion.startswith("Task: ")
    assert "Rules" not in completion, "a base model gets patterns, not instructions"
    assert all(stop not in completion.rsplit("Task: ", 1)[1] for stop in COMPLETION_STOP)


def test_completion_feedback_is_one_short_line() -> None:
    long_problem = "parameter 'text' is missing from the spec " * 20
    plain = build_prompt(TASK).completion
    completion = build_prompt(TASK, feedback=[long_problem], previous_answer="junk").completion
    tail = completion.removeprefix(plain.removesuffix(f"Task: {TASK}\n```python\n"))
    task_line, note, fence, end = tail.split("\n")
    assert (task_line, fence, end) == (f"Task: {TASK}", "```python", "")
    assert note.startswith("Avoid: parameter 'text' is missing")
    assert len(note) <= 210
    assert "junk" not in completion


def test_completion_has_three_or_four_distinct_examples() -> None:
    answers = _few_shot_answers(build_prompt(TASK).completion)
    assert 3 <= len(answers) <= 4
    assert len({task for task, _ in answers}) == len(answers)


def test_every_few_shot_answer_parses_cleanly_and_reconciles_unchanged() -> None:
    for task, answer in _few_shot_answers(build_prompt(TASK).completion):
        parsed = parse_answer(answer)
        assert parsed.problems == (), task
        assert parsed.repairs == (), task
        assert parsed.code is not None
        assert len(parsed.specs) == 1, task
        spec = parsed.specs[0]
        jsonschema.validate(spec, SCHEMA)
        assert reconcile(parsed.code, spec) == (spec, ()), task
        assert 1 <= len(spec["examples"]) <= 2
        assert all("result" in example for example in spec["examples"])
        _run_examples(parsed.code, spec)


def test_continuation_cut_at_the_stop_sequence_parses() -> None:
    """What a base model writes after the prompt: code, closing fence, spec, then a made-up next task."""
    answers = _few_shot_answers(build_prompt(TASK).completion)
    imitation = answers[0][1].removeprefix("```python\n") + "\nTask: add two numbers\n```python\n"
    for stop in COMPLETION_STOP:
        imitation = imitation.split(stop)[0]
    parsed = parse_answer(imitation)
    assert parsed.problems == ()
    assert parsed.repairs == ("added the missing opening ```python fence",)
    assert len(parsed.specs) == 1


def test_calls_prompt_shows_correct_calls_and_ends_at_the_task_heading() -> None:
    text = calls_prompt(f" {TASK} ")
    assert text.endswith(f"\n# {TASK}\n")
    lines = text.splitlines()[:-1]
    assert sum(line.startswith("# ") for line in lines) == len(_CALL_SHOTS)
    calls = [line for line in lines if not line.startswith("# ")]
    assert all(" -> " in line for line in calls)
    assert render_call("f", {"a": 2, "text": "hi", "xs": [1, 2]}) == 'f(a=2, text="hi", xs=[1, 2])'
    # A repair round sees the same lines in another order.
    again = calls_prompt(TASK, 1)
    assert again != text and sorted(again.splitlines()) == sorted(text.splitlines())


def test_call_shots_results_are_right() -> None:
    """The shown results are what such functions return: a wrong shot would teach wrong answers."""
    functions = {
        "subtract": lambda a, b: a - b,
        "to_lower": str.lower,
        "is_odd": lambda n: n % 2 == 1,
        "first_letter": lambda word: word[0],
        "square": lambda x: x * x,
        "second_item": lambda items: items[1],
        "count_a": lambda word: word.count("a"),
        "repeat": lambda word, n: word * n,
        "is_empty": lambda text: not text,
        "sort_numbers": sorted,
        "text_length": len,
        "m_to_cm": lambda metres: metres * 100,
        "join_words": lambda first, second: f"{first} {second}",
        "halve": lambda x: x / 2,
    }
    assert {name for _, name, _ in _CALL_SHOTS} == set(functions)
    for _, name, calls in _CALL_SHOTS:
        for arguments, result in calls:
            assert functions[name](*arguments.values()) == result, (name, arguments)


def test_repair_marks_the_completion_without_leaking_example_values() -> None:
    wrong = "example 1 of add: add(**{'a': 1, 'b': 2}) should return 2 but returned 3"
    other = "function add: parameter 'c' is not in the signature"
    plain = build_prompt(TASK).completion
    repair = build_prompt(TASK, feedback=[wrong, wrong.replace("1 of", "2 of"), other]).completion
    assert task_of(plain) == task_of(repair) == TASK
    assert not is_repair(plain) and is_repair(repair)
    note = repair.splitlines()[-2]
    assert note == f"Avoid: an example result did not match the code; {other}"
    assert "should return" not in repair


def test_reordered_completions_hold_the_same_shots_in_other_orders() -> None:
    """Each reordering is one more greedy candidate for a base model: the same tasks and the same ending."""
    prompt = build_prompt("reverse a string", feedback=["the code was wrong"])
    completions = (prompt.completion, *prompt.reordered)
    assert len(set(completions)) == len(completions) == 4
    firsts = [c.split("\n", 1)[0] for c in completions]
    assert len(set(firsts)) == 4  # each starts with another task
    assert all(sorted(c.split("Task: ")) == sorted(prompt.completion.split("Task: ")) for c in completions)
