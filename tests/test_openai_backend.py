"""The OpenAI-compatible backend against a real loopback server speaking the chat-completions stream."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_server.models import ModelError, OpenAIBackend, describe_backend, resolve_backend
from mcp_server.models.openai_backend import PLACEHOLDER_KEY
from tests.fake_ollama import recording
from tests.fake_openai import FakeOpenAI
from tests.mcp_helpers import free_port, handshake_client, stdio_params, texts
from tests.test_models import CHAT

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real server from the environment the tests run in."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


async def test_streams_the_answer_with_growing_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    progress: list[tuple[int, str]] = []

    async def on_progress(tokens: int, text: str) -> None:
        progress.append((tokens, text))

    with FakeOpenAI(answers=["clean_two_functions"]) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        generation = await OpenAIBackend("gemma-3-4b-it").generate(CHAT, on_progress=on_progress)
        (chat,) = fake.chats()
    expected = recording("clean_two_functions")
    assert generation.text == expected and generation.tokens > 100 and generation.seconds > 0
    counts = [tokens for tokens, _ in progress]
    assert len(counts) >= 2 and counts == sorted(set(counts))
    assert progress[-1] == (generation.tokens, expected)
    assert chat.body is not None
    assert chat.body["model"] == "gemma-3-4b-it" and chat.body["stream"] is True
    assert chat.body["stream_options"] == {"include_usage": True}
    assert chat.body["messages"] == [dict(m) for m in CHAT.messages]
    assert chat.body["max_tokens"] > 0 and chat.body["temperature"] <= 0.3
    # No OPENAI_API_KEY: a placeholder, which local servers ignore.
    headers = {name.lower(): value for name, value in chat.headers.items()}
    assert headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}"


async def test_honours_openai_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI(answers=["never_valid"], api_key="sk-team") as fake:
        backend = OpenAIBackend("gemma-3-4b-it", base_url=fake.base_url)
        with pytest.raises(ModelError, match="refused the API key: set OPENAI_API_KEY"):
            await backend.generate(CHAT)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-team")
        assert (await backend.generate(CHAT)).text == recording("never_valid")


async def test_failures_are_clear_errors() -> None:
    refused = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelError, match=r"cannot connect .* at http://127\.0\.0\.1:.*/v1: start it") as caught:
        await OpenAIBackend("m", base_url=refused).generate(CHAT)
    assert "OPENAI_BASE_URL" in str(caught.value) and "http://localhost:1234/v1" in str(caught.value)
    with FakeOpenAI(answers=[]) as fake:
        with pytest.raises(ModelError, match=r"does not serve the model 'other' \(The model `other` does not exist"):
            await OpenAIBackend("other", base_url=fake.base_url).generate(CHAT)
        with pytest.raises(ModelError, match=r"HTTP 500 .*no recorded answer left"):
            await OpenAIBackend("gemma-3-4b-it", base_url=fake.base_url).generate(CHAT)


def test_selection_and_doctor(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = resolve_backend("openai:qwen2.5-coder-7b")
    assert isinstance(backend, OpenAIBackend) and backend.name == "openai:qwen2.5-coder-7b"
    with pytest.raises(ModelError, match="names no model"):
        resolve_backend("openai:")
    with pytest.raises(ModelError, match=r"openai:<model>"):
        resolve_backend("nonsense")
    with FakeOpenAI(models=["gemma-3-4b-it", "qwen"]) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        assert describe_backend("openai:gemma-3-4b-it").endswith("(chosen explicitly; the server lists it)")
        assert "does not list it (it lists: gemma-3-4b-it, qwen)" in describe_backend("openai:other")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    assert "does not answer" in describe_backend("openai:gemma-3-4b-it")


async def test_publishes_a_function_from_a_recorded_answer_and_the_tool_answers(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    with FakeOpenAI(answers=["failing_examples", "failing_examples_fixed"]) as fake:
        env = {"FUNCSMITH_MODEL": "openai:gemma-3-4b-it", "OPENAI_BASE_URL": fake.base_url}
        params = stdio_params(folder, tmp_path / "data", env={**env, "PATH": os.environ.get("PATH", "")})
        async with handshake_client(params) as client:
            result = await client.call_tool("create_function", {"task": "reverse a string"})
            assert not result.is_error, texts(result)
            assert result.structured_content["published"] == ["reverse_string"]
            assert result.structured_content["attempts"] == 2  # the first answer's example was wrong
            answer = await client.call_tool("reverse_string", {"text": "abc"})
            assert answer.structured_content == {"result": "cba"}
        assert len(fake.chats()) == 2
        repair = fake.chats()[1].body
        assert repair is not None and "htimcsnuf" in str(repair["messages"])  # the feedback carried the answer
