"""funcsmith driven by the official TypeScript SDK client, over stdio and Streamable HTTP.

The TypeScript SDK 1.x (the MCP Inspector, and the desktop and IDE clients built on it)
checks every `structuredContent` against the tool's `outputSchema`, errors included: an
error result that carries structured content the schema does not describe reaches the
user as "Structured content does not match the tool's output schema" instead of the
function's own message. Each case here must reach that client with its message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.mcp_helpers import ROOT, http_server, server_env
from tests.nodejs import Node

ODD_PY = '''"""Functions that misbehave in ways a client must still hear about."""


def wrong() -> int:
    """Claim an integer, return text."""
    return "not a number"
'''

ODD_JSON = {
    "name": "wrong",
    "description": "Return a value its spec does not allow.",
    "parameters": {"type": "object", "properties": {}},
    "responses": [{"type": "integer"}],
}

CALLS: list[dict[str, Any]] = [
    {"name": "add", "arguments": {"a": 2, "b": 3}},
    {"name": "divide", "arguments": {"a": 7, "b": 0}},
    {"name": "divide", "arguments": {"a": 7, "b": "zero"}},
    {"name": "add", "arguments": {"a": 1, "b": None}},
    {"name": "wrong", "arguments": {}},
    {"name": "call_function", "arguments": {"name": "divide", "arguments": {"a": 1, "b": 0}}},
    {"name": "call_function", "arguments": {"name": "nope"}},
    {"name": "call_function", "arguments": {"name": "add", "arguments": None}},
]


@pytest.fixture
def functions(catalog: Path) -> Path:
    (catalog / "odd.py").write_text(ODD_PY)
    (catalog / "odd.json").write_text(json.dumps(ODD_JSON))
    return catalog


def text(call: dict[str, Any]) -> str:
    assert "result" in call, f"the TypeScript client refused the result: {call.get('error')}"
    return "\n".join(c["text"] for c in call["result"]["content"] if c["type"] == "text")


def check(report: dict[str, Any]) -> None:
    """What the TypeScript client saw for each of CALLS (after logging/setLevel succeeded)."""
    assert report["capabilities"]["logging"] == {}
    schemas = {t["name"]: t["outputSchema"] for t in report["tools"]}
    assert schemas["divide"]["required"] == ["quotient"], "the error cases must be checked against a real schema"
    added, by_zero, bad_argument, null_b, wrong, called_by_zero, unknown, null_arguments = report["calls"]

    assert added["result"]["structuredContent"] == {"result": 5} and not added["result"].get("isError")
    assert text(added) == "5"

    assert by_zero["result"]["isError"] is True
    assert text(by_zero) == "DivisionByZero: cannot divide 7 by zero"
    assert by_zero["result"]["_meta"]["funcsmith/error"]["type"] == "DivisionByZero"

    assert bad_argument["result"]["isError"] is True
    assert "argument 'b'" in text(bad_argument) and "'zero' is not of type 'number'" in text(bad_argument)

    assert null_b["result"]["structuredContent"] == {"result": 1}, text(null_b)

    assert wrong["result"]["isError"] is True
    assert "wrong returned a value that matches none of its declared responses" in text(wrong)

    assert called_by_zero["result"]["isError"] is True
    assert text(called_by_zero) == "DivisionByZero: cannot divide 1 by zero"
    assert unknown["result"]["isError"] is True and "no published function named 'nope'" in text(unknown)
    assert null_arguments["result"]["isError"] is True and "'a' is a required property" in text(null_arguments)

    for call in report["calls"]:
        if call["result"].get("isError"):
            assert "structuredContent" not in call["result"], call
            assert "Traceback" not in text(call) and "raise " not in text(call)


def test_typescript_client_over_stdio(node: Node, functions: Path, tmp_path: Path) -> None:
    report = node.client(
        {
            "transport": "stdio",
            "command": sys.executable,
            "args": ["-m", "mcp_server.cli", "--functions", str(functions), "serve"],
            "env": server_env(tmp_path / "data"),
            "cwd": str(ROOT),
            "logLevel": "warning",
            "calls": CALLS,
        }
    )
    check(report)


def test_typescript_client_over_http(node: Node, functions: Path, tmp_path: Path) -> None:
    with http_server(functions, tmp_path / "data") as server:
        config = {"transport": "http", "url": server.url, "token": server.token, "logLevel": "warning"}
        report = node.client({**config, "calls": CALLS})
    check(report)
