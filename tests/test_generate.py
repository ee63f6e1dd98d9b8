"""Generation end to end against an Ollama look-alike replaying recorded answers, with the real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from subprocess import PIPE
from typing import Any

import mcp_types as types
import pytest
from jsonschema import Draft202012Validator

from mcp_server.catalog import Catalog
from mcp_server.draft import Draft, outvotes, read, same_value, telling
from mcp_server.generate import Generator, Outcome, Progress, shown_answers
from mcp_server.models import OllamaBackend
from mcp_server.sandbox import Sandbox
from mcp_server.tools import argument_problems
from mcp_server.verify import Answer, Failure, everyday, generate_inputs
from tests.fake_ollama import FakeOllama, recording
from tests.mcp_helpers import handshake_client, stdio_params, texts

pytestmark = pytest.mark.anyio


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "functions"
    folder.mkdir()
    return folder


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(tmp_path / "data") as sandbox:
        yield sandbox


def generator(folder: Path, sandbox: Sandbox, fake: FakeOllama, tag: str = "gemma3:4b", **options: Any) -> Generator:
    catalog = Catalog(folder)
    catalog.load()
    return Generator(catalog, sandbox, lambda: OllamaBackend(tag, host=fake.host), **options)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


async def test_clean_answer_with_two_functions_sharing_code(folder: Path, sandbox: Sandbox) -> None:
    with FakeOllama(answers=["clean_two_functions"]) as fake:
        outcome = await generator(folder, sandbox, fake).create("convert temperatures between C and F")
    assert outcome.ok, outcome.problems
    assert outcome.published == ["celsius_to_fahrenheit", "fahrenheit_to_celsius"]
    assert len(outcome.attempts) == 1
    assert outcome.attempts[0].examples_passed == outcome.attempts[0].examples_total == 5
    assert files(folder) == ["celsius_to_fahrenheit.json", "celsius_to_fahrenheit.py"]
    specs = json.loads((folder / "celsius_to_fahrenheit.json").read_text())
    assert [s["name"] for s in specs] == outcome.published
    fresh = Catalog(folder)
    fresh.load()
    assert sorted(fresh.published) == outcome.published and fresh.ok


async def test_a_published_function_shows_its_answers_on_inputs_its_examples_do_not_hold(
    folder: Path, sandbox: Sandbox
) -> None:
    with FakeOllama(answers=["clean_two_functions"]) as fake:
        outcome = await generator(folder, sandbox, fake).create("convert temperatures between C and F")
    assert outcome.ok, outcome.problems
    specs = {s["name"]: s for s in json.loads((folder / "celsius_to_fahrenheit.json").read_text())}
    formulas = {  # as the recorded code computes them, rounded to 2 decimals
        "celsius_to_fahrenheit": lambda c: round(c * 9 / 5 + 32, 2),
        "fahrenheit_to_celsius": lambda f: round((f - 32) * 5 / 9, 2),
    }
    assert 1 <= len(outcome.answers) <= 3
    for answer in outcome.answers:
        (argument,) = answer.arguments.values()
        assert answer.value == pytest.approx(formulas[answer.function](argument))
        assert dict(answer.arguments) not in [e["parameters"] for e in specs[answer.function]["examples"]]
        assert str(answer) in outcome.summary() and str(answer) in outcome.as_json()["answers"]
    assert len({json.dumps(a.value) for a in outcome.answers}) == len(outcome.answers)  # different results first


def test_the_answers_shown_are_short_new_and_of_each_function_and_result_first() -> None:
    calls = [({"number": n}, n in (3, 9)) for n in (4, 0, 1, 9, 3, 12345678901234567890)]
    answers = [Answer("is_prime", arguments, value) for arguments, value in calls]
    examples = [{"parameters": {"number": 4}, "result": False}, {"parameters": {"number": 3}, "result": True}]
    draft = Draft("", "", ({"name": "is_prime", "examples": examples},), (), ())
    shown = [str(a) for a in shown_answers([*answers, Answer("is_prime", {"number": "x" * 120}, False)], draft)]
    assert shown == ["is_prime(number=9) -> true", "is_prime(number=0) -> false", "is_prime(number=1) -> false"]
    other = Answer("is_even", {"number": 1000}, True)  # each function is shown before any second result
    shown = [str(a) for a in shown_answers([*answers, other], draft)]
    assert shown == ["is_prime(number=9) -> true", "is_prime(number=0) -> false", "is_even(number=1000) -> true"]


async def test_messy_answer_is_repaired(folder: Path, sandbox: Sandbox) -> None:
    with FakeOllama(answers=["messy_needs_repairs"]) as fake:
        outcome = await generator(folder, sandbox, fake).create("count the words in a text")
    assert outcome.published == ["count_words"], outcome.problems
    repairs = " ".join(outcome.attempts[0].repairs)
    assert "minimum_length" in repairs and "min_length" in repairs
    spec = json.loads((folder / "count_words.json").read_text())
    assert list(spec["parameters"]["properties"]) == ["text", "min_length"]
    assert spec["parameters"]["required"] == ["text"]


async def test_failing_examples_are_fixed_on_the_second_attempt(folder: Path, sandbox: Sandbox) -> None:
    with FakeOllama(answers=["failing_examples", "failing_examples_fixed"]) as fake:
        outcome = await generator(folder, sandbox, fake).create("reverse a string")
        second = fake.chats()[1].body
    assert outcome.published == ["reverse_string"]
    assert len(outcome.attempts) == 2
    assert outcome.attempts[0].examples_passed == 1 and outcome.attempts[0].examples_total == 2
    feedback = second["messages"][-1]["content"]
    assert "should return 'htimcsnuf' but returned 'htimscnuf'" in feedback
    assert second["messages"][-2]["role"] == "assistant"


async def test_after_a_cut_prompt_the_repair_prompt_leaves_out_the_previous_answer(
    folder: Path, sandbox: Sandbox
) -> None:
    # Ollama reports 12 prompt tokens for every request: it cut each prompt to fit its window.
    with FakeOllama(answers=["failing_examples", "failing_examples_fixed"], prompt_eval_count=12) as fake:
        outcome = await generator(folder, sandbox, fake).create("reverse a string")
        second = fake.chats()[1].body
    assert outcome.published == ["reverse_string"] and len(outcome.attempts) == 2
    assert [m["role"] for m in second["messages"]] == ["system", "user", "user"]
    assert "should return 'htimcsnuf' but returned 'htimscnuf'" in second["messages"][-1]["content"]
    assert recording("failing_examples").strip() not in json.dumps(second)
    assert any("leaves out the previous answer" in w for w in outcome.warnings), outcome.warnings


async def test_never_valid_answer_fails_clearly_and_writes_nothing(folder: Path, sandbox: Sandbox) -> None:
    with FakeOllama(answers=["never_valid"] * 3) as fake:
        outcome = await generator(folder, sandbox, fake).create("add two numbers")
    assert not outcome.ok
    assert len(outcome.attempts) == 3
    assert files(folder) == []
    summary = outcome.summary()
    assert summary.startswith("no function published after 3 attempt(s): the code was wrong")
    assert any("syntax" in p.lower() for p in outcome.problems), outcome.problems
    assert outcome.failure is Failure.CODE and outcome.last_answer == recording("never_valid")
    assert "Next step: describe the task in more detail" in summary


async def test_existing_function_is_offered_and_overwrite_keeps_history(folder: Path, sandbox: Sandbox) -> None:
    with FakeOllama(answers=["failing_examples_fixed"]) as fake:
        gen = generator(folder, sandbox, fake)
        assert (await gen.create("reverse a string")).ok
    with FakeOllama(answers=["failing_examples_fixed"]) as fake:
        gen = generator(folder, sandbox, fake)
        found = await gen.create("reverse the characters of a string")
        assert found.existing == ["reverse_string"] and not found.attempts and fake.chats() == []
        assert "already has a function" in found.summary()
        clash = await gen.create("reverse the characters of a string", generate_anyway=True, attempts=1)
        assert not clash.ok and "already exists" in clash.problems[0]
    with FakeOllama(answers=["failing_examples_fixed"]) as fake:
        gen = generator(folder, sandbox, fake)
        replaced = await gen.create("reverse a string", generate_anyway=True, overwrite=True)
    assert replaced.ok and replaced.replaced == "reverse_string"
    kept = list((folder / ".funcsmith" / "history" / "reverse_string").iterdir())
    assert len(kept) == 1


async def test_model_not_available_is_a_clear_problem(folder: Path, sandbox: Sandbox) -> None:
    with FakeOllama(models=["llama3:8b"]) as fake:
        outcome = await generator(folder, sandbox, fake).create("add two numbers")
    assert not outcome.ok and "ollama pull gemma3:4b" in outcome.problems[0]


async def test_create_function_over_mcp_reports_progress(folder: Path, tmp_path: Path) -> None:
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[str] = []
    changed: list[object] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.append(message)

    with FakeOllama(answers=["failing_examples", "failing_examples_fixed"], chunk_delay=0.002) as fake:
        env = {"FUNCSMITH_MODEL": "ollama:gemma3:4b", "OLLAMA_HOST": fake.host}
        params = stdio_params(folder, tmp_path / "data", env=env)
        async with handshake_client(params, logging_callback=on_log, message_handler=on_message) as client:
            result = await client.call_tool(
                "create_function", {"task": "reverse a string"}, progress_callback=on_progress
            )
            assert not result.is_error, texts(result)
            assert result.structured_content["published"] == ["reverse_string"]
            assert result.structured_content["attempts"] == 2
            shown = result.structured_content["answers"]
            assert shown and all(a.startswith("reverse_string(text=") and a in texts(result) for a in shown)
            tools = [t.name for t in (await client.list_tools()).tools]
            assert "reverse_string" in tools
            answer = await client.call_tool("reverse_string", {"text": "abc"})
            assert answer.structured_content == {"result": "cba"}
            missing = await client.call_tool("create_function", {"task": ""})
            assert missing.is_error and "needs 'task'" in texts(missing)
    values = [p[0] for p in progress]
    assert len(values) >= 6 and values == sorted(values)
    assert any("tokens" in (p[2] or "") for p in progress)
    assert any("attempt 2/3" in (p[2] or "") for p in progress)
    assert any("published reverse_string" in line for line in logs)
    assert changed


async def test_create_function_failure_is_a_tool_error_with_its_outcome_in_meta(folder: Path, tmp_path: Path) -> None:
    with FakeOllama(answers=["never_valid"]) as fake:
        env = {"FUNCSMITH_MODEL": "ollama:gemma3:4b", "OLLAMA_HOST": fake.host}
        async with handshake_client(stdio_params(folder, tmp_path / "data", env=env)) as client:
            result = await client.call_tool("create_function", {"task": "reverse a string", "attempts": 1})
    assert result.is_error and texts(result).startswith("no function published after 1 attempt(s)")
    assert result.structured_content is None
    error = result.meta["funcsmith/error"]
    assert error["type"] == "NotPublished" and error["outcome"]["attempts"] == 1 and error["outcome"]["problems"]


def test_same_value_compares_json_by_value() -> None:
    assert same_value(5, 5.0) and same_value([1, {"a": 0.1 + 0.2}], [1, {"a": 0.3}])
    assert not same_value(True, 1) and not same_value({"a": 1}, {"a": 1, "b": 2}) and not same_value("1", 1)


def test_outcome_summary_lists_every_problem() -> None:
    outcome = Outcome(task="x", problems=["first", "second"])
    outcome.attempts = []
    assert "- first\n- second" in outcome.summary()
    assert Progress(2, 3, "verifying").fraction == pytest.approx(1.5)
    assert recording("never_valid")


def generate_command(folder: Path, data: Path, fake: FakeOllama, *args: str) -> subprocess.CompletedProcess[str]:
    """`funcsmith generate ...` against the fake Ollama, as a person would run it."""
    command = ["--functions", str(folder), "--data-dir", str(data), "--model", "ollama:gemma3:4b", "generate", *args]
    return subprocess.run(
        [sys.executable, "-m", "mcp_server.cli", *command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OLLAMA_HOST": fake.host},
    )


def test_generate_command_shows_progress_and_publishes(folder: Path, tmp_path: Path) -> None:
    with FakeOllama(answers=["failing_examples", "failing_examples_fixed"]) as fake:
        done = generate_command(folder, tmp_path / "data", fake, "reverse a string")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("published reverse_string (module reverse_string) after 2 attempt(s)")
    assert "to look over: reverse_string(text=" in done.stdout  # answers a person can check by eye
    assert "attempt 2/3" in done.stderr and "attempts" in done.stderr  # the progress bar
    assert "examples 2/2" in done.stderr
    assert files(folder) == ["reverse_string.json", "reverse_string.py"]

    with FakeOllama(answers=["never_valid"] * 3) as fake:
        failed = generate_command(folder, tmp_path / "data", fake, "add two numbers", "--generate-anyway")
    assert failed.returncode == 1
    assert "no function published after 3 attempt(s)" in failed.stdout


# -- checks that do not rest on the model's word ------------------------------------------------


def test_generated_inputs_fit_an_object_schema_and_repeat() -> None:
    """hypothesis-jsonschema 0.23.1 breaks on object schemas with hypothesis 6.170.10+; this catches it."""
    schema = {
        "type": "object",
        "properties": {"count": {"type": "integer"}, "label": {"type": "string"}, "tags": {"type": "array"}},
        "required": ["count"],
    }
    inputs = generate_inputs(schema, 20)
    assert len(inputs) >= 10, "hypothesis-jsonschema generated no inputs: check the hypothesis pin"
    assert inputs == generate_inputs(schema, 20)  # derandomized: the same inputs every time
    assert all(
        isinstance(i, dict) and isinstance(i["count"], int) and set(i) <= set(schema["properties"]) for i in inputs
    )
    assert all(-1000 <= i["count"] <= 1000 and len(i.get("label", "")) <= 20 for i in inputs)
    assert any("label" in i for i in inputs) and any("label" not in i for i in inputs)
    assert everyday({"type": "integer", "minimum": 5})["minimum"] == 5


ROOT = 'import math\n\n\ndef root(x: float) -> float:\n    """The square root of x."""\n    return math.sqrt({})\n'


async def test_an_undeclared_exception_on_valid_input_is_found_and_fixed(folder: Path, sandbox: Sandbox) -> None:
    unguarded = _answer(ROOT.format("x"), "root", "x", "number", "number", (4, 2.0), (9, 3.0))
    guarded = _answer(ROOT.format("max(x, 0)"), "root", "x", "number", "number", (4, 2.0), (9, 3.0))
    with FakeOllama(answers=[unguarded, guarded]) as fake:
        outcome = await generator(folder, sandbox, fake).create("the square root of a number")
        second = fake.chats()[1].body
    assert outcome.published == ["root"], outcome.problems
    first = outcome.attempts[0]
    assert first.failure is Failure.CODE and first.examples_passed == first.examples_total == 2
    feedback = second["messages"][-1]["content"]
    assert "(a valid input for its parameters) raised ValueError: math domain error" in feedback
    assert outcome.attempts[1].generated_inputs > 5


async def test_a_function_raising_on_an_empty_list_alone_takes_non_empty_ones(folder: Path, sandbox: Sandbox) -> None:
    """`sum(numbers) / len(numbers)` raises ZeroDivisionError on [] and on nothing else: it is published at once
    with the list required to be non-empty, so its generated inputs leave [] out and the server refuses []."""
    with FakeOllama(answers=["mean_unguarded"]) as fake:
        outcome = await generator(folder, sandbox, fake).create("the mean of a list of numbers", attempts=1)
    assert outcome.published == ["mean"], outcome.problems
    assert outcome.attempts[0].generated_inputs > 5
    spec = json.loads((folder / "mean.json").read_text())
    assert spec["parameters"]["properties"]["numbers"]["minItems"] == 1
    assert all(i["numbers"] for i in generate_inputs(spec["parameters"], 20))
    (problem,) = argument_problems(Draft202012Validator(spec["parameters"]), {"numbers": []})
    assert "numbers" in problem and "should be non-empty" in problem


def _answer(
    code: str,
    name: str,
    parameter: str,
    kind: str,
    response: str,
    *examples: tuple[Any, Any],
    description: str | None = None,
) -> str:
    """A literal answer of one function of one parameter, in the format the model is asked for."""
    spec = {
        "name": name,
        "description": description or f"{name} of a {kind}",
        "parameters": {"type": "object", "properties": {parameter: {"type": kind}}, "required": [parameter]},
        "responses": [{"type": response}],
        "examples": [{"prompt": "an example", "parameters": {parameter: x}, "result": r} for x, r in examples],
    }
    return f"```python\n{code}```\n\n```function_spec\n{json.dumps(spec)}\n```\n"


ALWAYS_TRUE = _answer(
    'def is_palindrome(text: str) -> bool:\n    """Whether the text reads the same backwards."""\n'
    "    return text.lower() == text.lower()\n",
    "is_palindrome",
    "text",
    "string",
    "boolean",
    ("racecar", True),
)
UNCHANGED = _answer(
    'def reverse_text(text: str) -> str:\n    """The text backwards."""\n    return text\n',
    "reverse_text",
    "text",
    "string",
    "string",
    ("cat", "cat"),
)
SAVES = _answer(
    "import os\n\n\ndef save_note(text: str) -> str:\n"
    '    """Keep a note in the data folder."""\n'
    '    folder = os.path.expanduser("~/data")\n    os.makedirs(folder, exist_ok=True)\n'
    '    with open(os.path.join(folder, "notes.txt"), "a") as handle:\n        handle.write(text + "\\n")\n'
    '    return "saved"\n',
    "save_note",
    "text",
    "string",
    "string",
    ("buy milk", "saved"),
)


async def test_a_function_whose_result_ignores_its_input_is_not_published(folder: Path, sandbox: Sandbox) -> None:
    """Its one example passes, and so would any example whose result is that constant or the input itself."""
    with FakeOllama(answers=[ALWAYS_TRUE, UNCHANGED]) as fake:
        palindrome = await generator(folder, sandbox, fake).create("check whether a text is a palindrome", attempts=1)
        reverse = await generator(folder, sandbox, fake).create("reverse a text", attempts=1)
    assert not palindrome.ok and palindrome.failure is Failure.CODE and files(folder) == []
    assert any("returned True for each of" in p and "does not depend on its input" in p for p in palindrome.problems)
    assert not reverse.ok and any("returned its argument 'text' unchanged" in p for p in reverse.problems)


REMOVE_SPACES = _answer(
    'def remove_spaces(text: str) -> str:\n    """The text without its spaces."""\n    return text.replace(" ", "")\n',
    "remove_spaces",
    "text",
    "string",
    "string",
    ("a b c", "abc"),
)


async def test_a_function_its_examples_show_changing_its_input_is_not_trivial(folder: Path, sandbox: Sandbox) -> None:
    """Generated strings seldom hold a space, so the right code hands each of them back unchanged; its passing
    example "a b c" -> "abc" shows that it does not ignore its input."""
    with FakeOllama(answers=[REMOVE_SPACES]) as fake:
        outcome = await generator(folder, sandbox, fake).create("remove the spaces from a text", attempts=1)
    assert outcome.published == ["remove_spaces"], outcome.problems
    assert outcome.attempts[0].generated_inputs >= 5


async def test_a_function_that_keeps_data_may_answer_alike_to_every_input(folder: Path, sandbox: Sandbox) -> None:
    with FakeOllama(answers=[SAVES]) as fake:
        outcome = await generator(folder, sandbox, fake).create("save a note", attempts=1)
    assert outcome.published == ["save_note"], outcome.problems


async def test_user_examples_are_enforced_and_written_into_the_spec(folder: Path, sandbox: Sandbox) -> None:
    example = {"parameters": {"text": "the quick brown fox"}, "result": "fox brown quick the"}
    with FakeOllama(answers=["reverse_words_joined", "reverse_words_reversed_words"]) as fake:
        outcome = await generator(folder, sandbox, fake).create(
            "reverse the words in a sentence", examples=[example], generate_anyway=True
        )
        second = fake.chats()[1].body
    assert outcome.published == ["reverse_words"], outcome.problems
    assert "should return 'fox brown quick the' but returned 'thequickbrownfox'" in second["messages"][-1]["content"]
    spec = json.loads((folder / "reverse_words.json").read_text())
    assert {**example, "prompt": "an example given with the task"} in spec["examples"]


async def test_agreeing_candidates_say_the_example_is_wrong(folder: Path, sandbox: Sandbox) -> None:
    """A small model (gemma3:1b) gets three candidates per attempt and must have two that agree."""
    answers = ["c_to_f_example_wrong"] * 4 + ["c_to_f_example_fixed"] * 3 + ["c_to_f_examples"]
    with FakeOllama(answers=answers, models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create("convert celsius to fahrenheit")
        chats = fake.chats()
    assert outcome.published == ["celsius_to_fahrenheit"], outcome.problems
    first = outcome.attempts[0]
    assert first.failure is Failure.EXAMPLE and first.candidates == 3 and first.agreeing == 3
    assert "function_spec blocks only" in chats[3].body["messages"][-1]["content"]  # a follow-up, which said the same
    feedback = chats[4].body["messages"][-1]["content"]
    assert "should return 210" not in feedback
    assert "3 independently written versions of the code agree that it returns 212.0" in feedback
    assert "the example is wrong, not the code" in feedback
    seeds = [c.body["options"]["seed"] for c in chats[:3]]
    assert len(set(seeds)) == 3  # independent samples


async def test_a_wrong_example_is_outvoted_by_examples_the_agreeing_code_passes(folder: Path, sandbox: Sandbox) -> None:
    """Three agreeing candidates contradict their one example (100 -> 210); the follow-up's two examples agree
    with the code, so the wrong one is outvoted and left out of the published spec."""
    answers = ["c_to_f_example_wrong"] * 3 + ["c_to_f_examples"]
    with FakeOllama(answers=answers, models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create(
            "convert celsius to fahrenheit", attempts=1
        )
    assert outcome.published == ["celsius_to_fahrenheit"], outcome.problems
    examples = json.loads((folder / "celsius_to_fahrenheit.json").read_text())["examples"]
    assert [(e["parameters"], e["result"]) for e in examples] == [({"celsius": 0}, 32), ({"celsius": 10}, 50)]
    assert outcome.attempts[0].examples_passed == outcome.attempts[0].examples_total == 2


async def test_candidates_examples_are_pooled_and_judged_by_the_agreeing_code(folder: Path, sandbox: Sandbox) -> None:
    """CodeT's dual agreement: each candidate brings one example, none telling alone; pooled (across the names
    the candidates chose), the agreeing code passes both and no follow-up is needed."""
    renamed = (
        recording("c_to_f_example_fixed")
        .replace('"celsius"', '"degrees"')
        .replace("(celsius: float)", "(degrees: float)")
        .replace("return celsius", "return degrees")
        .replace('{"degrees": 100}, "result": 212', '{"degrees": 0}, "result": 32')
    )
    wrong = recording("c_to_f_example_fixed").replace("celsius * 9 / 5 + 32", "celsius * 2 + 12")
    with FakeOllama(answers=["c_to_f_example_fixed", renamed, wrong], models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create(
            "convert celsius to fahrenheit", attempts=1
        )
        asked = len(fake.chats())
    assert outcome.published == ["celsius_to_fahrenheit"], outcome.problems
    assert asked == 3 and outcome.attempts[0].agreeing == 2
    assert outcome.attempts[0].implementations == 1  # the same formula under another parameter name
    examples = json.loads((folder / "celsius_to_fahrenheit.json").read_text())["examples"]
    assert [(e["parameters"], e["result"]) for e in examples] == [({"celsius": 100}, 212), ({"celsius": 0}, 32)]


def _c_to_f(formula: str, *examples: tuple[float, float]) -> str:
    """A recorded celsius-to-fahrenheit answer with this formula and these examples."""
    shown = ", ".join(f'{{"prompt": "{c} C", "parameters": {{"celsius": {c}}}, "result": {f}}}' for c, f in examples)
    return (
        recording("c_to_f_example_fixed")
        .replace("celsius * 9 / 5 + 32", formula)
        .replace(recording("c_to_f_example_fixed").split('"examples": ')[1].split("\n")[0], f"[{shown}]")
    )


async def test_a_larger_group_agreeing_on_a_wrong_idea_loses_to_the_examples(folder: Path, sandbox: Sandbox) -> None:
    """Five candidates: three agree on the rule of thumb F = 2C + 30 (which gives the right 50 for 10 C),
    two on the formula. Scored by size times the pooled examples passed, the two win (2 x 3 against
    3 x 1) and are published without a follow-up; the largest group first would have been asked about."""
    wrong = _c_to_f("celsius * 2 + 30", (10, 50))
    right = [_c_to_f("celsius * 9 / 5 + 32", (100, 212), (0, 32)), _c_to_f("(celsius * 9) / 5 + 32", (10, 50))]
    with FakeOllama(answers=[wrong, wrong, wrong, *right], models=["gemma3:1b"]) as fake:
        gen = generator(folder, sandbox, fake, tag="gemma3:1b", candidates=5)
        outcome = await gen.create("convert celsius to fahrenheit", attempts=1)
        asked = len(fake.chats())
    assert outcome.published == ["celsius_to_fahrenheit"], outcome.problems
    assert asked == 5 and outcome.attempts[0].agreeing == 2
    assert outcome.attempts[0].implementations == 1  # brackets that change nothing change nothing
    assert outcome.attempts[0].votes[0].implementations == 1
    assert "celsius * 9 / 5 + 32" in (folder / "celsius_to_fahrenheit.py").read_text()


async def test_a_small_models_passed_examples_outweigh_twice_as_many_failed(folder: Path, sandbox: Sandbox) -> None:
    """Its predicted results are mostly wrong, so a failed one says little: the agreeing formula passes two
    pooled examples and fails three (predicted 7, 10 and 100 for 1, 2 and 3 C), and is published with the
    two; with one passed example it is not."""
    guesses = _c_to_f("celsius * 9 / 5 + 32", (1, 7), (2, 10), (3, 100))
    passed = [_c_to_f("celsius * 9 / 5 + 32", (100, 212)), _c_to_f("celsius * 9 / 5 + 32", (0, 32))]
    with FakeOllama(answers=[guesses, *passed], models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create(
            "convert celsius to fahrenheit", attempts=1
        )
    assert outcome.published == ["celsius_to_fahrenheit"], outcome.problems
    examples = json.loads((folder / "celsius_to_fahrenheit.json").read_text())["examples"]
    assert [(e["parameters"], e["result"]) for e in examples] == [({"celsius": 100}, 212), ({"celsius": 0}, 32)]
    fails = [{"parameters": {"celsius": c}, "result": 999} for c in range(5)]
    assert not outvotes([examples[0]], []) and outvotes(examples, fails[:4]) and not outvotes(examples, fails)


async def test_a_small_models_true_or_false_predictions_vouch_for_nothing(folder: Path, sandbox: Sandbox) -> None:
    """Three candidates agree on the wrong parity, and the model's own true/false guesses pass it twice: on the
    development tasks (`python -m bench.generate --dev --votes`) such guesses passed wrong code 30% of the time
    and right code 50%, so they are no evidence, and nothing is published (a follow-up brings no more)."""
    wrong = _even("number % 2 == 1", (3, True), (8, False), (5, True))
    with FakeOllama(answers=[wrong, wrong, wrong, "I cannot think of more examples.\n"], models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create(
            "check whether a number is even", attempts=1
        )
    assert not outcome.published
    assert outcome.failure is Failure.WEAK, outcome.problems
    assert "true or false" in outcome.problems[0]


def test_an_echoed_prediction_counts_neither_way() -> None:
    """A predicted result that hands an argument back ("go" -> "go") was right 2 times in 20 for right code
    on the development tasks: it neither vouches for code nor counts against it."""
    passed = [{"parameters": {"text": "ab"}, "result": "ba"}, {"parameters": {"text": "cat"}, "result": "tac"}]
    echoes = [{"parameters": {"text": t}, "result": t} for t in ("go", "sun", "hi", "cat", "dog")]
    assert outvotes(passed, echoes) and outvotes(passed, echoes[:1] * 4 + [{"parameters": {}, "result": 1}] * 4)
    assert not outvotes(passed, [{"parameters": {}, "result": 1}] * 5)
    assert not outvotes([passed[0], echoes[0], echoes[1]], [])


async def test_a_users_example_is_never_outvoted(folder: Path, sandbox: Sandbox) -> None:
    """The code agrees with its own examples and with the other candidates, but not with the user's 10 -> 49."""
    answers = ["c_to_f_example_fixed"] * 3
    user = {"parameters": {"celsius": 10}, "result": 49}
    with FakeOllama(answers=answers, models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create(
            "convert celsius to fahrenheit", attempts=1, examples=[user]
        )
    assert not outcome.ok and files(folder) == []
    assert any("should return 49 but returned 50.0" in p for p in outcome.problems), outcome.problems


async def _double_with(folder: Path, sandbox: Sandbox, answers: list[str], given: list[Any]) -> Outcome:
    """ "double a whole number" by a small model replaying `answers`, with the user's examples `given`."""
    with FakeOllama(answers=answers, models=["gemma3:1b"]) as fake:
        return await generator(folder, sandbox, fake, tag="gemma3:1b").create(
            "double a whole number", attempts=1, examples=given
        )


def _published_examples(spec: Path) -> list[tuple[dict[str, Any], Any]]:
    return [(e["parameters"], e["result"]) for e in json.loads(spec.read_text())["examples"]]


async def test_a_users_examples_reach_a_function_that_names_its_parameters_otherwise(
    folder: Path, sandbox: Sandbox
) -> None:
    """A user cannot know which names the model will give the parameters: their examples name `x`, the code
    takes `n`. Matched by position they are checks the code must pass, written into the spec in its names."""
    answers = [_double("n * 2", (2, 5))] * 3
    given = [{"parameters": {"x": 3}, "result": 6}, {"parameters": {"x": 7}, "result": 14}]
    outcome = await _double_with(folder, sandbox, answers, given)
    assert outcome.published == ["double"], outcome.problems
    assert _published_examples(folder / "double.json") == [({"n": 3}, 6), ({"n": 7}, 14)]

    wrong = [{"parameters": {"x": 3}, "result": 7}, {"parameters": {"x": 7}, "result": 14}]
    again = folder.parent / "again"
    again.mkdir()
    outcome = await _double_with(again, sandbox, answers, wrong)
    assert not outcome.ok and any("double(n=3) should return 7 but returned 6" in p for p in outcome.problems)


async def test_a_users_examples_match_parameters_by_name_first_and_the_rest_in_order(
    folder: Path, sandbox: Sandbox
) -> None:
    """`text` is matched by name wherever it stands; `char`, which the code calls `character`, by what is left."""
    answers = [_count_char(CHARACTER, "count_character", ({"text": "aa", "character": "a"}, 5))] * 3
    given = [
        {"parameters": {"char": "a", "text": "banana"}, "result": 3},
        {"parameters": {"char": "n", "text": "banana"}, "result": 2},
    ]
    with FakeOllama(answers=answers, models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create(
            "count how many times a character occurs in a text", attempts=1, examples=given
        )
    assert outcome.published == ["count_character"], outcome.problems
    assert _published_examples(folder / "count_character.json") == [
        ({"character": "a", "text": "banana"}, 3),
        ({"character": "n", "text": "banana"}, 2),
    ]


def _wrong_guesses() -> list[str]:
    """Three candidates that agree on right code, and all six of their predicted results wrong."""
    return [_double("n * 2", (2, 5), (3, 7)), _double("n * 2", (4, 9), (5, 11)), _double("n * 2", (6, 13), (1, 3))]


async def test_a_users_examples_outweigh_any_number_of_a_small_models_wrong_guesses(
    folder: Path, sandbox: Sandbox
) -> None:
    """The six wrong guesses are more than twice the user's two examples, which the code passes. The user's
    examples settle it: the model's guesses are dropped."""
    given = [{"parameters": {"n": 10}, "result": 20}, {"parameters": {"n": 21}, "result": 42}]
    outcome = await _double_with(folder, sandbox, _wrong_guesses(), given)
    assert outcome.published == ["double"], outcome.problems
    assert _published_examples(folder / "double.json") == [({"n": 10}, 20), ({"n": 21}, 42)]


async def test_a_small_models_wrong_examples_point_the_user_to_examples_of_their_own(
    folder: Path, sandbox: Sandbox
) -> None:
    """Where a small model's code agrees but its guessed results do not, the next step is the user's examples."""
    outcome = await _double_with(folder, sandbox, [*_wrong_guesses(), _wrong_guesses()[0]], [])
    assert not outcome.ok and outcome.failure is Failure.EXAMPLE, outcome.problems
    step = outcome.next_step or ""
    assert "examples of your own" in step and "--example" in step and "`examples`" in step, step
    assert "ollama pull gemma3:4b" in step


async def test_candidates_that_disagree_publish_nothing(folder: Path, sandbox: Sandbox) -> None:
    answers = ["reverse_words_joined", "reverse_words_reversed_words", "reverse_words_reversed_text"]
    with FakeOllama(answers=answers, models=["gemma3:1b"]) as fake:
        gen = generator(folder, sandbox, fake, tag="gemma3:1b")
        outcome = await gen.create("reverse the words in a sentence", attempts=1, generate_anyway=True)
    assert not outcome.ok and outcome.failure is Failure.DISAGREE
    assert "no two agree" in outcome.problems[0]
    assert "ollama pull gemma3:4b" in (outcome.next_step or "")
    assert files(folder) == []


async def test_the_tutorial_expense_tracker_publishes_unverified_and_works(folder: Path, tmp_path: Path) -> None:
    """An answer in the seed tutorial's format, replayed through Ollama's wire format.

    tests/recordings/tutorial_expense_tracker.md is written here in the format of the tutorial's
    recorded Gemma 3 27B answer (specs without examples, written before the code; the tutorial's own
    recording is not shipped with funcsmith). Asked for examples only, the model answers the same again.
    """
    with FakeOllama(answers=["tutorial_expense_tracker"] * 2, models=["gemma3:27b"]) as fake:
        env = {"FUNCSMITH_MODEL": "ollama:gemma3:27b", "OLLAMA_HOST": fake.host}
        params = stdio_params(folder, tmp_path / "data", env=env)
        async with handshake_client(params) as client:
            task = "track my expenses: record any expense I make, and query all the expenses I've made so far"
            created = await client.call_tool("create_function", {"task": task, "generate_anyway": True})
            assert not created.is_error, texts(created)
            assert created.structured_content["published"] == ["record_expense", "query_expenses"]
            assert created.structured_content["unverified"] == ["record_expense", "query_expenses"]
            follow_up = fake.chats()[1].body["messages"][-1]["content"]
            assert "answer with the ```function_spec blocks only" in follow_up
            recorded = await client.call_tool(
                "record_expense", {"description": "cab", "amount": 300, "category": "travel"}
            )
            assert recorded.structured_content == {"message": "Expense recorded successfully."}
            negative = await client.call_tool("record_expense", {"description": "x", "amount": -5, "category": "food"})
            assert negative.is_error and "InvalidExpenseData" in texts(negative)
            queried = await client.call_tool("query_expenses", {})
            (expense,) = queried.structured_content["result"]  # generation's own calls ran on scratch data
            assert expense["amount"] == 300 and expense["date"] == date.today().isoformat()
            listed = await client.call_tool("list_functions", {})
            statuses = {f["name"]: f["status"] for f in listed.structured_content["functions"]}
            assert statuses == {"record_expense": "unverified", "query_expenses": "unverified"}
    listing = subprocess.run(
        [sys.executable, "-m", "mcp_server.cli", "--functions", str(folder), "list"], capture_output=True, text=True
    )
    assert "record_expense  unverified" in listing.stdout
    checked = subprocess.run(
        [sys.executable, "-m", "mcp_server.cli", "--functions", str(folder), "check"], capture_output=True, text=True
    )
    assert "unverified (published without checked examples): query_expenses, record_expense" in checked.stdout


# -- generation never touches real data ----------------------------------------------------------

_NOTES = '''import json
import os


def count_notes() -> int:
    """How many notes there are."""
    path = os.path.expanduser("~/data/notes.json")
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as handle:
        return len(json.load(handle))


def clear_notes() -> int:
    """Forget the notes (not yet written)."""
    return 0
'''


async def test_an_overwrite_whose_example_deletes_data_runs_on_scratch_only(folder: Path, tmp_path: Path) -> None:
    (folder / "notes.py").write_text(_NOTES)
    spec = {"parameters": {"type": "object", "properties": {}}, "responses": [{"type": "integer"}]}
    examples = [{"prompt": "how many", "parameters": {}, "result": 0}]
    specs = [
        {"name": name, "description": f"{name}.", **spec, "examples": examples}
        for name in ("count_notes", "clear_notes")
    ]
    (folder / "notes.json").write_text(json.dumps(specs))
    real = tmp_path / "data" / "notes" / "data" / "notes.json"
    real.parent.mkdir(parents=True)
    real.write_text(json.dumps(["buy milk", "call mum"]))
    async with Sandbox(tmp_path / "data") as sandbox:
        with FakeOllama(answers=["clear_notes"]) as fake:
            outcome = await generator(folder, sandbox, fake).create(
                "delete all my notes", overwrite=True, generate_anyway=True
            )
    assert outcome.published == ["clear_notes"] and outcome.replaced == "notes", outcome.problems
    assert json.loads(real.read_text()) == ["buy milk", "call mum"]


# -- two processes publishing into one folder ----------------------------------------------------


def test_two_generate_processes_at_once_publish_one_function(folder: Path, tmp_path: Path) -> None:
    with FakeOllama(answers=["failing_examples_fixed"] * 2, together=2, chunk_delay=0.002) as fake:
        command = [
            sys.executable, "-m", "mcp_server.cli", "--functions", str(folder), "--data-dir", str(tmp_path / "data"),
            "--model", "ollama:gemma3:4b", "--attempts", "1", "generate", "reverse a string",
        ]  # fmt: skip
        env = {**os.environ, "OLLAMA_HOST": fake.host}
        runs = [subprocess.Popen(command, stdout=PIPE, stderr=PIPE, text=True, env=env) for _ in range(2)]
        outputs = [run.communicate(timeout=120) for run in runs]
        done = [(run.returncode, out, err) for run, (out, err) in zip(runs, outputs, strict=True)]
    published = [out for code, out, _ in done if code == 0]
    refused = [out for code, out, _ in done if code != 0]
    assert len(published) == 1 and len(refused) == 1, done
    assert published[0].startswith("published reverse_string (module reverse_string)")
    assert refused[0].startswith("no function published") and "already exists" in refused[0]
    assert files(folder) == ["reverse_string.json", "reverse_string.py"]
    fresh = Catalog(folder)
    fresh.load()
    assert fresh.ok and list(fresh.published) == ["reverse_string"]


async def test_a_failure_over_mcp_carries_the_last_answer_in_meta(folder: Path, tmp_path: Path) -> None:
    with FakeOllama(answers=["never_valid"]) as fake:
        env = {"FUNCSMITH_MODEL": "ollama:gemma3:4b", "OLLAMA_HOST": fake.host}
        async with handshake_client(stdio_params(folder, tmp_path / "data", env=env)) as client:
            result = await client.call_tool("create_function", {"task": "add two numbers", "attempts": 1})
            bad = await client.call_tool("create_function", {"task": "add", "examples": [{"parameters": {}}]})
    assert result.is_error and "the code was wrong" in texts(result) and "Next step" in texts(result)
    assert result.meta is not None and result.meta["funcsmith/error"]["last_answer"] == recording("never_valid")
    assert bad.is_error and "example 1 needs exactly one of 'result'" in texts(bad)


def test_generate_command_enforces_examples_and_shows_the_last_answer(folder: Path, tmp_path: Path) -> None:
    example = '{"parameters": {"text": "the quick brown fox"}, "result": "fox brown quick the"}'
    with FakeOllama(answers=["reverse_words_joined"]) as fake:
        args = ("reverse the words in a sentence", "--example", example, "--attempts", "1", "--generate-anyway", "-v")
        done = generate_command(folder, tmp_path / "data", fake, *args)
    assert done.returncode == 1, done.stderr
    assert "no function published after 1 attempt(s): the code and its examples disagree" in done.stdout
    assert "should return 'fox brown quick the' but returned 'thequickbrownfox'" in done.stdout
    assert "Next step:" in done.stdout
    assert "the model's last answer:\n" + recording("reverse_words_joined") in done.stderr
    with FakeOllama() as fake:
        bad = generate_command(folder, tmp_path / "data", fake, "reverse", "--example", "{not json")
    assert bad.returncode == 2 and "--example '{not json' is not JSON" in bad.stderr


async def test_candidates_agree_across_names_they_chose_themselves(folder: Path, sandbox: Sandbox) -> None:
    renamed = (
        recording("c_to_f_example_fixed")
        .replace("celsius_to_fahrenheit", "to_fahrenheit")
        .replace('"celsius"', '"degrees"')
        .replace("(celsius: float)", "(degrees: float)")
        .replace("return celsius", "return degrees")
    )
    wrong = recording("c_to_f_example_fixed").replace("celsius * 9 / 5 + 32", "celsius * 2 + 12")
    more = (
        recording("c_to_f_examples").replace("celsius_to_fahrenheit", "to_fahrenheit").replace('"celsius"', '"degrees"')
    )
    with FakeOllama(answers=[wrong, renamed, "c_to_f_example_fixed", more], models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create("convert celsius to fahrenheit")
    assert outcome.ok, outcome.problems
    assert outcome.published == ["to_fahrenheit"] and outcome.attempts[0].agreeing == 2


def _even(body: str, *examples: tuple[int, bool]) -> str:
    """A small model's answer for "check whether a number is even", with the code and examples given."""
    code = f'def is_even(number: int) -> bool:\n    """Whether the number is even."""\n    return {body}\n'
    return _answer(code, "is_even", "number", "integer", "boolean", *examples, description="Whether a number is even.")


def test_pooled_examples_that_do_not_fit_the_parameters_are_left_out() -> None:
    """One candidate of "check whether a number is prime" took a text: its example "cat" would make the
    other's spec invalid (and stop it) if it moved over by position."""
    prime = 'def is_prime(n: int) -> bool:\n    """Whether n is prime."""\n    return n > 1\n'
    texts = 'def is_prime(word: str) -> bool:\n    """Whether it is prime."""\n    return False\n'
    own = read(_answer(prime, "is_prime", "n", "integer", "boolean", (7, True)))
    other = read(_answer(texts, "is_prime", "word", "string", "boolean", ("cat", False)))
    fits = read(_answer(prime, "is_prime", "n", "integer", "boolean", (4, False)))
    pooled = own.pooled([other, fits])
    assert [e["parameters"] for e in pooled.specs[0]["examples"]] == [{"n": 7}, {"n": 4}]


def test_examples_that_a_trivial_function_passes_tell_nothing() -> None:
    def ex(result: Any, **parameters: Any) -> dict[str, Any]:
        return {"parameters": parameters, "result": result}

    assert not telling([ex(True, number=3), ex(True, number=7)])  # a constant passes them
    assert not telling([ex("cat", text="cat"), ex("go", text="go")])  # so does handing the text back
    assert not telling([ex(5, a=2, b=3)]) and not telling([]) and not telling([{"parameters": {}, "error": "E"}])
    assert telling([ex(True, number=4), ex(False, number=3)])
    assert telling([ex(2, number=2), {"parameters": {"number": -1}, "error": "ValueError"}])


def test_a_list_function_that_hands_back_the_first_item_is_trivial() -> None:
    """The bench published `find_minimum` returning `numbers[0]`: two candidates agreed, and it passed the
    predictions [5, 6, 7, 8] -> 5 and [4, 1, 7, 9] -> 4 (failing two others), which the first item gives too."""

    def ex(result: Any, numbers: list[int]) -> dict[str, Any]:
        return {"parameters": {"numbers": numbers}, "result": result}

    passed = [ex(5, [5, 6, 7, 8]), ex(4, [4, 1, 7, 9])]
    failed = [ex(3, [5, 4, 3, 2]), ex(3, [1, 2, 3, 4])]
    assert not telling(passed) and not outvotes(passed, failed)
    assert telling([ex(5, [5, 6, 7, 8]), ex(1, [4, 1, 7, 9])])  # the minimum: not the first item of both
    assert telling([{"parameters": {"text": "cat"}, "result": "c"}, {"parameters": {"text": "go"}, "result": "o"}])


async def test_a_small_models_agreement_on_examples_that_tell_nothing_publishes_nothing(
    folder: Path, sandbox: Sandbox
) -> None:
    """Three candidates agree on inverted code whose examples (3 -> True, 7 -> True) a constant passes too."""
    inverted = _even("not (number % 2 == 0)", (3, True), (7, True))
    with FakeOllama(answers=[inverted] * 3 + [inverted], models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create(
            "check whether a number is even", attempts=1
        )
        follow_up = fake.chats()[3].body["messages"][-1]["content"]
    assert "would pass as well" in follow_up and "give examples with different results" in follow_up
    assert not outcome.ok and outcome.failure is Failure.WEAK and files(folder) == []
    assert "cannot tell right code from wrong" in outcome.problems[0]


async def test_a_small_model_publishes_once_its_examples_tell_right_from_wrong(folder: Path, sandbox: Sandbox) -> None:
    """One example (2 -> 4) cannot tell doubling from squaring; the follow-up's second one (3 -> 6) can."""
    right = _double("n * 2", (2, 4))
    with FakeOllama(answers=[right] * 3 + [_double("n * 2", (2, 4), (3, 6))], models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create("double a whole number", attempts=1)
    assert outcome.published == ["double"], outcome.problems
    assert len(json.loads((folder / "double.json").read_text())["examples"]) == 2  # 2 -> 4 once


def _double(body: str, *examples: tuple[int, Any]) -> str:
    """A small model's answer for "double a whole number", with the return expression and examples given."""
    code = f'def double(n: int) -> float:\n    """Twice the number."""\n    return {body}\n'
    return _answer(code, "double", "n", "integer", "number", *examples, description="Twice a whole number.")


async def test_candidates_returning_a_number_as_int_or_float_agree(folder: Path, sandbox: Sandbox) -> None:
    """4 and 4.0 are the same result (examples compare numbers by value), so two such candidates agree."""
    answers = [_double("n * 2", (2, 4), (5, 10)), _double("float(n * 2)", (3, 6.0)), _double("n + 2", (2, 4))]
    with FakeOllama(answers=answers, models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create("double a whole number", attempts=1)
    assert outcome.published == ["double"], outcome.problems
    assert outcome.attempts[0].agreeing == 2
    examples = json.loads((folder / "double.json").read_text())["examples"]
    assert [(e["parameters"], e["result"]) for e in examples] == [({"n": 2}, 4), ({"n": 5}, 10), ({"n": 3}, 6.0)]


def _count_char(code: str, name: str, *examples: tuple[dict[str, Any], int]) -> str:
    """A small model's answer for "count how many times a character occurs in a text"."""
    properties = {p: {"type": "string"} for p in examples[0][0]}
    spec = {
        "name": name,
        "description": "Count how many times a character occurs in a text.",
        "parameters": {"type": "object", "properties": properties, "required": list(properties)},
        "responses": [{"type": "integer"}],
        "examples": [{"prompt": "an example", "parameters": p, "result": r} for p, r in examples],
    }
    return f"```python\n{code}```\n\n```function_spec\n{json.dumps(spec)}\n```\n"


WORDS = (
    "def count_how_many_times_a_character_in_text(text: str) -> int:\n"
    '    """Count how many times a character occurs in a text."""\n    return len(text.lower().split())\n'
)
CHARACTER = (
    "def count_character(text: str, character: str) -> int:\n"
    '    """Count how many times a character occurs in a text."""\n    return text.count(character)\n'
)


async def test_a_small_models_function_without_an_input_the_task_names_is_not_published(
    folder: Path, sandbox: Sandbox
) -> None:
    """The embedded 270M's answer on the generation bench: three candidates count the words of `text` and take no
    character, and the pooled examples ("cat cat cat" -> 3, "cat" -> 1) vouch for them. The task names a
    character and a text; a function of the text alone cannot count a character, so the repair prompt says
    which input is missing, and the next attempt's two-parameter function is published."""
    name = "count_how_many_times_a_character_in_text"
    words = [
        _count_char(WORDS, name, ({"text": "go"}, 2)),
        _count_char(WORDS, name, ({"text": "cat cat cat"}, 3)),
        _count_char(WORDS, name, ({"text": "cat"}, 1)),
    ]
    right = [
        _count_char(CHARACTER, "count_character", ({"text": "banana", "character": "a"}, 3)),
        _count_char(CHARACTER, "count_character", ({"text": "kiwi", "character": "i"}, 2)),
        _count_char(CHARACTER, "count_character", ({"text": "sky", "character": "a"}, 0)),
    ]
    task = "count how many times a character occurs in a text"
    with FakeOllama(answers=[*words, *right], models=["gemma3:1b"]) as fake:
        outcome = await generator(folder, sandbox, fake, tag="gemma3:1b").create(task, attempts=2)
        chats = fake.chats()
    first = outcome.attempts[0]
    assert first.failure is Failure.CODE and not first.votes, first.problems
    assert "a character" in first.problems[0] and "takes only text" in first.problems[0]
    assert "a character" in chats[3].body["messages"][-1]["content"]
    assert outcome.published == ["count_character"], outcome.problems
