"""A small, real HTTP server that speaks the OpenAI chat-completions wire format and replays recorded answers.

    with FakeOpenAI(answers=["clean_two_functions"]) as fake:
        backend = OpenAIBackend("gemma-3-4b-it", base_url=fake.base_url)  # or OPENAI_BASE_URL=fake.base_url
        ...
        fake.requests  # what the client sent, in order

This is the API that LM Studio, llama.cpp's llama-server and vLLM serve under /v1.
Answers are recording names or literal text, as for `FakeOllama`; each chat request
takes the next one. A streaming answer goes out as server-sent events: one
`data: {chat.completion.chunk}` per piece (about a token), a last chunk with
`finish_reason`, the usage chunk when `stream_options.include_usage` asks for it,
then `data: [DONE]`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fake_ollama import FakeOllama, Request, _chunks

DEFAULT_MODELS = ("gemma-3-4b-it",)


@dataclass
class FakeOpenAI(FakeOllama):
    """An OpenAI-compatible server look-alike on 127.0.0.1 and a free port; use it as a context manager.

    It shares `FakeOllama`'s queue of answers, request log and lifecycle, and speaks the other wire format.
    """

    models: Iterable[str] = DEFAULT_MODELS
    api_key: str | None = None  # when set, requests must carry it as a bearer token

    @property
    def base_url(self) -> str:
        """The URL to pass as base_url= or OPENAI_BASE_URL."""
        return f"{self.host}/v1"

    def chats(self) -> list[Request]:
        """The chat-completions requests received so far."""
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def _handler_type(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read fake.requests instead."""

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str) -> None:
            self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})

        def _authorized(self) -> bool:
            if fake.api_key is None or self.headers.get("Authorization") == f"Bearer {fake.api_key}":
                return True
            self._error(401, "Incorrect API key provided.", "invalid_request_error")
            return False

        def do_GET(self) -> None:
            fake._record(Request(self.command, self.path, None, dict(self.headers.items())))
            if not self._authorized():
                return
            if self.path == "/v1/models":
                listed = [{"id": m, "object": "model", "created": 1748736000, "owned_by": "local"} for m in fake.models]
                self._json(200, {"object": "list", "data": listed})
            else:
                self._error(404, f"no route for GET {self.path}", "not_found_error")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            fake._record(Request(self.command, self.path, body, dict(self.headers.items())))
            if not self._authorized():
                return
            if self.path != "/v1/chat/completions":
                self._error(404, f"no route for POST {self.path}", "not_found_error")
                return
            model = str(body.get("model", ""))
            if model not in fake.models:
                self._error(404, f"The model `{model}` does not exist.", "invalid_request_error")
                return
            answer = fake._next_answer()
            if answer is None:
                self._error(500, "fake openai: no recorded answer left for this request", "server_error")
                return
            self._answer(model, answer, body)

        def _answer(self, model: str, answer: str, body: dict[str, Any]) -> None:
            pieces = list(_chunks(answer))
            prompt_tokens = sum(len(str(m.get("content", ""))) // 4 for m in body.get("messages", []))
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(pieces),
                "total_tokens": prompt_tokens + len(pieces),
            }
            head = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model}
            if not body.get("stream"):
                message = {"role": "assistant", "content": answer}
                choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
                self._json(200, {**head, "object": "chat.completion", "choices": [choice], "usage": usage})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = {**head, "object": "chat.completion.chunk"}
            self._event({**chunk, "choices": [_delta({"role": "assistant", "content": ""})]})
            for piece in pieces:
                self._event({**chunk, "choices": [_delta({"content": piece})]})
            self._event({**chunk, "choices": [_delta({}, "stop")]})
            if (body.get("stream_options") or {}).get("include_usage"):
                self._event({**chunk, "choices": [], "usage": usage})
            self._send(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")

        def _event(self, payload: dict[str, Any]) -> None:
            self._send(f"data: {json.dumps(payload)}\n\n".encode())

        def _send(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def _delta(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
