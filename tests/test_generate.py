"""Generation end to end against an Ollama look-alike replaying recorded answers, with the real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import mcp_types as types
import pytest

from mcp_server.catalog import Catalog
from mcp_server.generate import Generator, Outcome, Progress, same_value
from mcp_server.models import OllamaBackend
from mcp_server.sandbox import Sandbox
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


def generator(folder: Path, sandbox: Sandbox, fake: FakeOllama) -> Generator:
    catalog = Catalog(folder)
    catalog.load()
    return Generator(catalog, sandbox, lambda: OllamaBackend("gemma3:4b", host=fake.host), refresh=True)


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


async def test_never_valid_answer_fails_clearly_and_writes_nothing(folder: Path, sandbox: Sandbox) -> None:
    with FakeOllama(answers=["never_valid"] * 3) as fake:
        outcome = await generator(folder, sandbox, fake).create("add two numbers")
    assert not outcome.ok
    assert len(outcome.attempts) == 3
    assert files(folder) == []
    summary = outcome.summary()
    assert summary.startswith("no function published after 3 attempt(s)")
    assert any("syntax" in p.lower() for p in outcome.problems), outcome.problems


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
    assert "attempt 2/3" in done.stderr and "attempts" in done.stderr  # the progress bar
    assert "examples 2/2" in done.stderr
    assert files(folder) == ["reverse_string.json", "reverse_string.py"]

    with FakeOllama(answers=["never_valid"] * 3) as fake:
        failed = generate_command(folder, tmp_path / "data", fake, "add two numbers", "--generate-anyway")
    assert failed.returncode == 1
    assert "no function published after 3 attempt(s)" in failed.stdout
