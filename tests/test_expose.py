"""Exposure modes over the real protocol: what tools/list shows of a large catalogue, and how to reach the rest."""

from __future__ import annotations

import json
import random
from pathlib import Path

import anyio
import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from bench.synthetic import write_catalogue
from mcp_server.cli import main
from mcp_server.history import write_atomic
from mcp_server.server import TOOLS_PAGE_SIZE
from tests.calc import CALC_JSON, CALC_PY
from tests.mcp_helpers import Changes, handshake_client, names, stdio_params, texts

pytestmark = pytest.mark.anyio

BUILTINS = ["list_functions", "find_functions", "call_function", "create_function"]
COUNT = 300
# Words to make descriptions from: enough of them that no two of the functions say the same thing.
WORDS = """
    account address amount archive balance batch bill booking budget calendar cart category channel
    checksum city claim client code colour column comment contract country coupon currency customer
    date deadline delivery department deposit device discount distance document domain duration email
    employee event expense feed file flight folder forecast grade group holiday hotel image income
    invoice item journal label language ledger licence line location log loyalty margin meeting member
    message meter metric month note order package page parcel password payment payroll period phone
    photo playlist point policy portfolio price product profile project quota rate receipt recipe
    record refund region reminder report request reservation revenue review route salary schedule
    score seat sensor session shipment signal song stock store subscription supplier survey tax team
    temperature ticket timezone token total transaction trip unit user vehicle vendor visit volume
    voucher warehouse weather week weight
""".split()


def description(number: int) -> str:
    rng = random.Random(number)
    return "Work out the " + " ".join(rng.sample(WORDS, 8)) + "."


def write_many(folder: Path, count: int = COUNT) -> None:
    """One module of `count` functions, fn_000 ... : fn_N(a, b=0) returns a * N + b."""
    code = ['"""Many small functions, to make a catalogue larger than a client takes."""\n']
    specs = []
    for n in range(count):
        code.append(f"\ndef fn_{n:03d}(a: float, b: float = 0) -> float:\n    return a * {n} + b\n")
        specs.append(
            {
                "name": f"fn_{n:03d}",
                "description": description(n),
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                    "required": ["a"],
                },
                "responses": [{"type": "number"}],
            }
        )
    (folder / "many.py").write_text("\n".join(code))
    (folder / "many.json").write_text(json.dumps(specs))


@pytest.fixture
def many(tmp_path: Path) -> Path:
    folder = tmp_path / "functions"
    folder.mkdir()
    write_many(folder)
    return folder


def every_function() -> list[str]:
    return [f"fn_{n:03d}" for n in range(COUNT)]


async def test_auto_lists_only_the_builtins_past_the_limit_and_find_and_call_reach_every_function(
    many: Path, tmp_path: Path
) -> None:
    async with Client(stdio_params(many, tmp_path / "data")) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert len(tools) <= 40 + len(BUILTINS)
        assert names(tools.values()) == BUILTINS
        find = tools["find_functions"]
        for target in (7, 123, 299):
            result = await client.call_tool("find_functions", {"query": description(target)})
            assert not result.is_error, texts(result)
            Draft202012Validator(find.output_schema).validate(result.structured_content)
            found = result.structured_content["functions"]
            assert 1 <= len(found) <= 5
            top = [f["name"] for f in found[:3]]
            assert f"fn_{target:03d}" in top, (description(target), top)
            hit = next(f for f in found if f["name"] == f"fn_{target:03d}")
            assert hit["description"] == description(target)
            assert hit["input_schema"]["required"] == ["a"]
            assert f"fn_{target:03d}(a, b?): {description(target)}" in texts(result)

            called = await client.call_tool("call_function", {"name": hit["name"], "arguments": {"a": 2, "b": 1}})
            assert called.structured_content == {"result": 2 * target + 1}, texts(called)

        result = await client.call_tool("find_functions", {"query": "invoice payment", "limit": 20})
        assert 5 < len(result.structured_content["functions"]) <= 20
        nothing = await client.call_tool("find_functions", {"query": "zebra"})
        assert not nothing.is_error and nothing.structured_content == {"functions": []}
        assert "No published function matches 'zebra'" in texts(nothing)
        for bad in ({}, {"query": " "}, {"query": "invoice", "limit": 0}, {"query": "invoice", "limit": 21}):
            refused = await client.call_tool("find_functions", bad)
            assert refused.is_error and refused.meta["funcsmith/error"]["type"] == "InvalidArguments", bad
        unknown = await client.call_tool("call_function", {"name": "fn_999"})
        assert unknown.is_error and "find them with find_functions" in texts(unknown)


async def test_list_functions_pages_through_every_function_with_cursors(many: Path, tmp_path: Path) -> None:
    async with Client(stdio_params(many, tmp_path / "data")) as client:
        seen: list[str] = []
        pages = 0
        arguments: dict[str, str] = {}
        while True:
            page = await client.call_tool("list_functions", arguments)
            assert not page.is_error, texts(page)
            pages += 1
            functions = page.structured_content["functions"]
            assert len(functions) <= 100
            seen += [f["name"] for f in functions]
            cursor = page.structured_content.get("next_cursor")
            if cursor is None:
                break
            assert cursor in texts(page)
            arguments = {"cursor": cursor}
        assert seen == every_function()
        assert pages == 3

        filtered = await client.call_tool("list_functions", {"query": "fn_29"})
        assert [f["name"] for f in filtered.structured_content["functions"]] == [f"fn_{n}" for n in range(290, 300)]
        assert "next_cursor" not in filtered.structured_content

        for bad in ("not a cursor!", "", "AAAA"):
            refused = await client.call_tool("list_functions", {"cursor": bad})
            assert refused.is_error, bad
            assert f"invalid cursor {bad!r}" in texts(refused)
            assert refused.meta["funcsmith/error"]["type"] == "InvalidArguments"


async def walk(client: Client) -> tuple[list[str], list[str]]:
    """Every tool of every tools/list page, and the cursors on the way."""
    listed, cursors = [], []
    page = await client.list_tools()
    while True:
        assert len(page.tools) <= TOOLS_PAGE_SIZE
        listed += names(page.tools)
        if page.next_cursor is None:
            return listed, cursors
        cursors.append(page.next_cursor)
        page = await client.list_tools(cursor=page.next_cursor)


async def test_all_lists_every_function_after_the_builtins_in_name_order(many: Path, tmp_path: Path) -> None:
    async with Client(stdio_params(many, tmp_path / "data", "--expose", "all")) as client:
        first, _ = await walk(client)
        assert first == BUILTINS + every_function()
        assert (await walk(client))[0] == first


async def test_all_pages_tools_list_in_a_stable_order_with_opaque_cursors(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    write_many(folder, 1200)
    every = sorted(f"fn_{n:03d}" for n in range(1200))
    changes = Changes()
    params = stdio_params(folder, tmp_path / "data", "--expose", "all")
    async with handshake_client(params, message_handler=changes.handle) as client:
        listed, cursors = await walk(client)
        assert listed == BUILTINS + every
        assert len(cursors) == -(-len(listed) // TOOLS_PAGE_SIZE) - 1 and not any(
            name in cursor for cursor in cursors for name in every
        )
        assert await walk(client) == (listed, cursors)

        # A page read after the catalogue changed starts where the last one ended: nothing twice, nothing lost.
        first = await client.list_tools()
        heard = changes.count
        (folder / "extra.py").write_text("def aaa_first(a: float) -> float:\n    return a\n")
        spec = {
            "name": "aaa_first",
            "description": "Sorts first.",
            "parameters": {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]},
            "responses": [{"type": "number"}],
        }
        (folder / "extra.json").write_text(json.dumps(spec))
        await changes.after(heard)
        rest = await client.list_tools(cursor=first.next_cursor)
        assert names(rest.tools) == every[TOOLS_PAGE_SIZE - len(BUILTINS) :][:TOOLS_PAGE_SIZE]
        assert names((await client.list_tools()).tools)[len(BUILTINS)] == "aaa_first"

        for bad in ("not a cursor!", "", "AAAA"):
            with pytest.raises(MCPError) as refused:
                await client.list_tools(cursor=bad)
            assert refused.value.error.code == INVALID_PARAMS
            assert f"invalid cursor {bad!r}" in refused.value.error.message


async def test_find_functions_finds_a_change_as_soon_as_clients_hear_of_it(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    written = write_catalogue(folder, 300)
    module = next(f.module for f in written if sum(g.module == f.module for g in written) >= 2)
    changed, removed = [f for f in written if f.module == module][:2]
    changes = Changes()
    params = stdio_params(folder, tmp_path / "data", "--expose", "all")
    async with handshake_client(params, message_handler=changes.handle) as client:

        async def found(query: str, limit: int = 5) -> list[str]:
            result = await client.call_tool("find_functions", {"query": query, "limit": limit})
            assert not result.is_error, texts(result)
            return [f["name"] for f in result.structured_content["functions"]]

        assert removed.name in await found(removed.description)
        heard = changes.count
        (folder / "quokkas.py").write_text("def count_quokkas(island: str) -> int:\n    return len(island)\n")
        spec = {
            "name": "count_quokkas",
            "description": "Count the quokkas living on an island.",
            "parameters": {"type": "object", "properties": {"island": {"type": "string"}}, "required": ["island"]},
            "responses": [{"type": "integer"}],
        }
        write_atomic(folder / "quokkas.json", json.dumps(spec))
        await changes.after(heard)
        assert (await found("quokkas on an island"))[0] == "count_quokkas"

        heard = changes.count
        specs = json.loads((folder / f"{module}.json").read_text())
        specs = [s for s in specs if s["name"] != removed.name]
        specs = [
            {**s, "description": "Zygomorphic flux of a capacitor."} if s["name"] == changed.name else s for s in specs
        ]
        write_atomic(folder / f"{module}.json", json.dumps(specs))
        await changes.after(heard)
        assert (await found("zygomorphic flux capacitor"))[0] == changed.name
        assert removed.name not in await found(removed.description, 20)
        called = await client.call_tool("call_function", {"name": "count_quokkas", "arguments": {"island": "Rottnest"}})
        assert called.structured_content == {"result": 8}, texts(called)


async def test_search_lists_only_the_builtins_and_call_function_calls_the_rest(catalog: Path, tmp_path: Path) -> None:
    params = stdio_params(catalog, tmp_path / "data", env={"FUNCSMITH_EXPOSE": "search"})
    async with Client(params) as client:
        assert names((await client.list_tools()).tools) == BUILTINS
        found = await client.call_tool("find_functions", {"query": "divide a number"})
        assert found.structured_content["functions"][0]["name"] == "divide"
        called = await client.call_tool("call_function", {"name": "divide", "arguments": {"a": 1, "b": 4}})
        assert called.structured_content == {"quotient": 0.25}


async def test_auto_switches_mode_as_the_catalogue_crosses_the_limit_and_tells_clients(
    catalog: Path, tmp_path: Path
) -> None:
    changes = Changes()
    params = stdio_params(catalog, tmp_path / "data", env={"FUNCSMITH_EXPOSE_LIMIT": "3"})
    async with handshake_client(params, message_handler=changes.handle) as client:
        assert names((await client.list_tools()).tools) == [*BUILTINS, "add", "divide"]
        heard = changes.count
        specs = [{**spec, "name": f"more_{spec['name']}"} for spec in CALC_JSON]
        (catalog / "more.py").write_text(
            CALC_PY.replace("def add(", "def more_add(").replace("def divide", "def more_divide")
        )
        (catalog / "more.json").write_text(json.dumps(specs))
        await changes.after(heard)
        with anyio.fail_after(30):
            while names((await client.list_tools()).tools) != BUILTINS:
                await changes.after(changes.count)
        called = await client.call_tool("call_function", {"name": "more_add", "arguments": {"a": 1, "b": 2}})
        assert called.structured_content == {"result": 3}

        heard = changes.count
        (catalog / "more.py").unlink()
        (catalog / "more.json").unlink()
        await changes.after(heard)
        with anyio.fail_after(30):
            while names((await client.list_tools()).tools) != [*BUILTINS, "add", "divide"]:
                await changes.after(changes.count)


def test_serve_refuses_a_bad_exposure_naming_it(
    catalog: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FUNCSMITH_EXPOSE", "some")
    assert main(["serve", "--functions", str(catalog)]) == 2
    assert "FUNCSMITH_EXPOSE must be one of all, search, auto, not 'some'" in capsys.readouterr().err
    monkeypatch.setenv("FUNCSMITH_EXPOSE", "all")
    monkeypatch.setenv("FUNCSMITH_EXPOSE_LIMIT", "many")
    assert main(["serve", "--functions", str(catalog)]) == 2
    assert "FUNCSMITH_EXPOSE_LIMIT must be a whole number of tools (0 or more), not 'many'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--functions", str(catalog), "--expose-limit", "-1"])
    assert exited.value.code == 2
    assert "--expose-limit: must be a whole number of tools (0 or more), not '-1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--functions", str(catalog), "--expose", "some"])
    assert "invalid choice: 'some'" in capsys.readouterr().err
