"""A small, real HTTP server that speaks Ollama's wire format and replays recorded answers.

    with FakeOllama(answers=["clean_two_functions"]) as fake:
        backend = OllamaBackend("gemma3:4b", host=fake.host)
        ...
        fake.requests  # what the client sent, in order

Answers are names of files in tests/recordings/ (without the .md suffix) or literal
text (anything containing a newline or a backtick); each /api/chat request takes the
next one from the queue, so a test can script attempt 1, attempt 2, ... Streaming
answers are cut into small chunks (about one token each) like the real server's.
With `prompt_eval_count=N`, every answer reports N prompt tokens, as Ollama does when
it has cut a prompt that outgrew the context window.
With `together=N`, the first N chat requests are answered only once all N have
arrived, so that N clients (say, two processes) are certainly generating at once.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).parent / "recordings"
DEFAULT_MODELS = ("gemma3:4b",)
_TOKEN = re.compile(r"\s*\S{1,6}|\s+")


def recording(name: str) -> str:
    """The text of one recorded answer."""
    return (RECORDINGS / f"{name}.md").read_text(encoding="utf-8")


def _answer_text(answer: str) -> str:
    return answer if "\n" in answer or "`" in answer else recording(answer)


@dataclass(frozen=True, slots=True)
class Request:
    """One request the fake received."""

    method: str
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str]


@dataclass
class FakeOllama:
    """An Ollama look-alike on 127.0.0.1 and a free port; use it as a context manager."""

    answers: Iterable[str] = ()
    models: Iterable[str] = DEFAULT_MODELS
    chunk_delay: float = 0.0
    version: str = "0.12.6"
    prompt_eval_count: int | None = None
    together: int = 0
    requests: list[Request] = field(default_factory=list, init=False)
    _queue: deque[str] = field(default_factory=deque, init=False)
    _server: ThreadingHTTPServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.models = tuple(self.models)
        self._together = threading.Barrier(self.together) if self.together > 1 else None
        self._gathered = False
        self._queue.extend(_answer_text(answer) for answer in self.answers)

    @property
    def host(self) -> str:
        """The base URL to pass as host= or OLLAMA_HOST."""
        if self._server is None:
            raise RuntimeError("FakeOllama is not running; use it in a with block")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_answers(self, *answers: str) -> None:
        """Queue more answers (recording names or literal text)."""
        with self._lock:
            self._queue.extend(_answer_text(answer) for answer in answers)

    def chats(self) -> list[Request]:
        """The /api/chat requests received so far."""
        return [r for r in self.requests if r.path == "/api/chat"]

    def __enter__(self) -> FakeOllama:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_type())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-ollama", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handler_type(self) -> type[BaseHTTPRequestHandler]:
        """The wire format spoken (a look-alike of another server overrides it)."""
        return _handler(self)

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_answer(self) -> str | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _chunks(text: str) -> Iterator[str]:
    """About one token per piece, like a real model's stream."""
    yield from (match.group(0) for match in _TOKEN.finditer(text))


def _model_entry(name: str) -> dict[str, Any]:
    size = name.partition(":")[2].split("-")[0].upper() or "4B"
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-06-01T10:00:00.000000000Z",
        "size": 3338801804,
        "digest": "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "gemma3",
            "families": ["gemma3"],
            "parameter_size": size,
            "quantization_level": "Q4_K_M",
        },
    }


def _handler(fake: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read fake.requests instead."""

        def _body(self) -> dict[str, Any] | None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw) if raw else None

        def _record(self, body: dict[str, Any] | None) -> None:
            fake._record(Request(self.command, self.path, body, dict(self.headers.items())))

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self, model: str) -> None:
            self._json(404, {"error": f"model '{model}' not found"})

        def _known(self, model: str) -> bool:
            return model in fake.models or f"{model}:latest" in fake.models

        def do_GET(self) -> None:
            self._record(None)
            if self.path == "/api/tags":
                self._json(200, {"models": [_model_entry(m) for m in fake.models]})
            elif self.path == "/api/version":
                self._json(200, {"version": fake.version})
            else:
                self._json(404, {"error": "404 page not found"})

        def do_HEAD(self) -> None:
            self._record(None)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            body = self._body() or {}
            self._record(body)
            model = str(body.get("model", ""))
            if self.path == "/api/show":
                if not self._known(model):
                    self._not_found(model)
                    return
                self._json(200, _show(model))
            elif self.path == "/api/chat":
                if not self._known(model):
                    self._not_found(model)
                    return
                self._chat(model, body)
            else:
                self._json(404, {"error": "404 page not found"})

        def _chat(self, model: str, body: dict[str, Any]) -> None:
            if fake._together is not None and not fake._gathered:
                with contextlib.suppress(threading.BrokenBarrierError):  # the others never came: answer anyway
                    fake._together.wait(timeout=120)
                fake._gathered = True
            answer = fake._next_answer()
            if answer is None:
                self._json(500, {"error": "fake ollama: no recorded answer left for this request"})
                return
            started = time.monotonic_ns()
            pieces = list(_chunks(answer))
            if not body.get("stream", True):
                self._json(
                    200,
                    {
                        **_head(model),
                        "message": {"role": "assistant", "content": answer},
                        "done": True,
                        **_stats(started, len(pieces), body, fake.prompt_eval_count),
                    },
                )
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in pieces:
                self._send_line({**_head(model), "message": {"role": "assistant", "content": piece}, "done": False})
                if fake.chunk_delay:
                    time.sleep(fake.chunk_delay)
            self._send_line(
                {
                    **_head(model),
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    **_stats(started, len(pieces), body, fake.prompt_eval_count),
                }
            )
            self.wfile.write(b"0\r\n\r\n")

        def _send_line(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def _head(model: str) -> dict[str, Any]:
    return {"model": model, "created_at": _now()}


def _stats(started_ns: int, tokens: int, body: dict[str, Any], prompt_tokens: int | None = None) -> dict[str, Any]:
    total = max(time.monotonic_ns() - started_ns, 1)
    if prompt_tokens is None:
        prompt_tokens = sum(len(str(m.get("content", ""))) // 4 for m in body.get("messages", []))
    return {
        "done_reason": "stop",
        "total_duration": total,
        "load_duration": total // 10,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": total // 5,
        "eval_count": tokens,
        "eval_duration": total // 2,
    }


def _show(model: str) -> dict[str, Any]:
    entry = _model_entry(model)
    return {
        "modelfile": f"FROM {model}\n",
        "parameters": 'stop "<end_of_turn>"\ntemperature 1\ntop_k 64\ntop_p 0.95',
        "template": "{{- range $i, $_ := .Messages }}...{{ end }}",
        "details": entry["details"],
        "model_info": {"general.architecture": "gemma3", "gemma3.context_length": 131072},
        "capabilities": ["completion"],
        "modified_at": entry["modified_at"],
    }
