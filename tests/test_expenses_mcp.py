"""The shipped expense tracker through the server: state lives in the data folder, across calls and restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mcp_helpers import ROOT, handshake_client, stdio_params

pytestmark = pytest.mark.anyio


async def test_expenses_persist_across_calls_and_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    home = tmp_path / "home"
    home.mkdir()
    params = stdio_params(ROOT / "functions", data, env={"HOME": str(home)})

    async with handshake_client(params) as client:
        first = await client.call_tool("add_expense", {"amount": 12.5, "category": "Food", "date": "2026-11-02"})
        assert not first.is_error, first.content
        await client.call_tool("add_expense", {"amount": 30, "category": "travel", "date": "2026-11-03"})
        listed = await client.call_tool("list_expenses", {"category": "food"})
        assert [e["amount"] for e in listed.structured_content["expenses"]] == [12.5]

    async with handshake_client(params) as client:  # a new server process: the data is still there
        summary = await client.call_tool("expense_summary", {"start": "2026-11-01", "end": "2026-11-30"})
        assert summary.structured_content["total"] == 42.5
        assert summary.structured_content["count"] == 2
        deleted = await client.call_tool("delete_expense", {"expense_id": first.structured_content["id"]})
        assert not deleted.is_error
        missing = await client.call_tool("delete_expense", {"expense_id": first.structured_content["id"]})
        assert missing.is_error and "ExpenseNotFound" in missing.content[0].text

    assert (data / "expenses" / "data" / "expenses.json").is_file()
    assert list(home.iterdir()) == []
