"""The embedded Gemma 3 270M writes a working tool end to end: a real MCP client, server, model and sandbox."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.mcp_helpers import stdio_params, texts

pytestmark = [pytest.mark.anyio, pytest.mark.embedded]


async def test_create_function_publishes_a_working_add(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    params = stdio_params(folder, tmp_path / "data")
    params.env = {**(params.env or {}), "FUNCSMITH_MODEL": "llama-cpp"}
    # A guard against a hang, not a speed bound: on a busy 2-core machine the model alone can take minutes.
    with anyio.fail_after(900):
        async with Client(params, mode="2026-07-28") as client:
            created = await client.call_tool("create_function", {"task": "add two numbers a and b"})
            assert not created.is_error, texts(created)
            outcome = created.structured_content
            assert outcome is not None
            (name,) = outcome["published"]
            assert 1 <= outcome["attempts"] <= 3
            assert outcome["model_seconds"] > 0
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert name in listed
            result = await client.call_tool(name, {"a": 2, "b": 3})
            assert not result.is_error, texts(result)
            assert texts(result) == "5"
            assert (folder / f"{outcome['module']}.py").is_file()
            assert (folder / f"{outcome['module']}.json").is_file()
