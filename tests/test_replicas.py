"""Several HTTP replicas on one functions folder and one data folder, as behind a load balancer.

Every replica is a real `funcsmith serve --transport http` process on 127.0.0.1, each with its own port,
all sharing the folder, the data folder and the bearer token; clients talk to them over the real protocol.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_server import history
from mcp_server.catalog import Catalog
from mcp_server.cli import Options, build_parser
from mcp_server.http import configure
from tests.fake_ollama import FakeOllama, recording
from tests.mcp_helpers import ROOT, Changes, HTTPServer, handshake_client, http_server, texts
from tests.test_reload import code, listening, spec, write_pair

pytestmark = pytest.mark.anyio

DEADLINE_S = 60.0
"""How long a replica may take to serve what another one published: generous, for a loaded machine."""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped catalogue, so the replicas' own state stays inside the test's folder."""
    folder = tmp_path / "functions"
    folder.mkdir()
    for path in (ROOT / "functions").iterdir():
        if path.suffix in (".py", ".json"):
            shutil.copy(path, folder / path.name)
    return folder


@contextlib.contextmanager
def replicas(folder: Path, data: Path, count: int = 2, env: dict[str, str] | None = None) -> Iterator[list[HTTPServer]]:
    """`count` HTTP servers on one functions folder and one data folder, with one shared token."""
    shared = {"FUNCSMITH_TOKEN": secrets.token_urlsafe(16), **(env or {})}
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(http_server(folder, data, env=shared)) for _ in range(count)]


def model_env(fake: FakeOllama) -> dict[str, str]:
    return {"FUNCSMITH_MODEL": "ollama:gemma3:4b", "OLLAMA_HOST": fake.host}


async def served(client: Client, name: str) -> None:
    """Wait until `client`'s replica lists `name` as a tool."""
    with anyio.fail_after(DEADLINE_S):
        while name not in {t.name for t in (await client.list_tools()).tools}:
            await anyio.sleep(0.05)


async def test_a_function_dropped_in_or_created_through_one_replica_is_served_by_the_other(
    folder: Path, tmp_path: Path
) -> None:
    with (
        FakeOllama(answers=["failing_examples_fixed"]) as fake,
        replicas(folder, tmp_path / "data", env=model_env(fake)) as (a, b),
    ):
        on_b_changes = Changes()
        async with (
            handshake_client(a.transport()) as on_a,
            handshake_client(b.transport(), message_handler=on_b_changes.handle) as on_b,
            Client(b.transport(), mode="2026-07-28") as modern_b,
            listening(modern_b) as modern_b_changes,
        ):
            heard = (on_b_changes, modern_b_changes)  # B tells clients of both revisions

            seen = [c.count for c in heard]
            write_pair(folder, "combine", code("combine"), spec("combine"))
            for changes, count in zip(heard, seen, strict=True):
                await changes.after(count, DEADLINE_S)
            await served(on_b, "combine")
            assert (await on_b.call_tool("combine", {"a": 2, "b": 3})).structured_content == {"result": 5}

            seen = [c.count for c in heard]
            created = await on_a.call_tool("create_function", {"task": "reverse a string", "attempts": 1})
            assert not created.is_error, texts(created)
            assert created.structured_content["published"] == ["reverse_string"]
            for changes, count in zip(heard, seen, strict=True):
                await changes.after(count, DEADLINE_S)
            await served(on_b, "reverse_string")
            await served(modern_b, "reverse_string")
            answer = await on_b.call_tool("reverse_string", {"text": "abc"})
            assert answer.structured_content == {"result": "cba"}, texts(answer)


async def test_two_replicas_creating_the_same_function_at_once_publish_it_once(folder: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in folder.iterdir() if p.is_file())
    # Both model answers are held until both replicas ask, so the two generations certainly overlap.
    with (
        FakeOllama(answers=["failing_examples_fixed"] * 2, together=2, chunk_delay=0.002) as fake,
        replicas(folder, tmp_path / "data", env=model_env(fake)) as servers,
    ):
        async with (
            handshake_client(servers[0].transport()) as on_a,
            handshake_client(servers[1].transport()) as on_b,
        ):
            results: list[types.CallToolResult] = []

            async def create(client: Client) -> None:
                results.append(await client.call_tool("create_function", {"task": "reverse a string", "attempts": 1}))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(create, on_a)
                tasks.start_soon(create, on_b)
            published = [r for r in results if not r.is_error]
            refused = [r for r in results if r.is_error]
            assert len(published) == 1 and len(refused) == 1, [texts(r) for r in results]
            assert published[0].structured_content["published"] == ["reverse_string"]
            assert "already exists" in texts(refused[0]), texts(refused[0])
            for client in (on_a, on_b):
                await served(client, "reverse_string")
                answer = await client.call_tool("reverse_string", {"text": "abc"})
                assert answer.structured_content == {"result": "cba"}, texts(answer)

    after = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert after == sorted([*before, "reverse_string.json", "reverse_string.py"])
    # Whole files from the one answer, never a mix of two writes.
    answer = recording("failing_examples_fixed")
    assert (folder / "reverse_string.py").read_text() in answer
    assert json.loads((folder / "reverse_string.json").read_text())["name"] == "reverse_string"
    fresh = Catalog(folder)
    fresh.load()
    assert fresh.ok and "reverse_string" in fresh.published


class RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer in miniature: each HTTP request goes to the next replica's port."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.inner = httpx2.AsyncHTTPTransport()
        self.sent: list[tuple[int, str | None]] = []
        """Each request's replica port and the session id its response carried (None: stateless)."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self.ports[len(self.sent) % len(self.ports)]
        request.url = request.url.copy_with(port=port)
        request.headers["host"] = f"127.0.0.1:{port}"
        response = await self.inner.handle_async_request(request)
        self.sent.append((port, response.headers.get("mcp-session-id")))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_stateless_2026_07_28_requests_work_through_any_replica(folder: Path, tmp_path: Path) -> None:
    with replicas(folder, tmp_path / "data") as (a, b):
        balancer = RoundRobin([a.port, b.port])
        async with (
            httpx2.AsyncClient(transport=balancer, headers=a.headers, timeout=DEADLINE_S) as http,
            Client(streamable_http_client(a.url, http_client=http), mode="2026-07-28") as client,
        ):
            for _ in range(2):  # each request of a pair lands on the other replica
                tools = {t.name for t in (await client.list_tools()).tools}
                assert {"convert_units", "call_function", "list_functions"} <= tools
                converted = await client.call_tool("convert_units", {"value": 10, "from_unit": "km", "to_unit": "m"})
                assert not converted.is_error, texts(converted)
                assert converted.structured_content["value"] == 10000
                listed = await client.call_tool("list_functions", {"query": "convert_units"})
                assert "convert_units" in [f["name"] for f in listed.structured_content["functions"]]
        assert {port for port, _ in balancer.sent} == {a.port, b.port}
        assert [session for _, session in balancer.sent] == [None] * len(balancer.sent), "no session anywhere"


async def test_a_handshake_session_lives_on_the_replica_that_opened_it(folder: Path, tmp_path: Path) -> None:
    """Handshake-era clients need a balancer that keeps them on one replica: another one does not know the session."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    with replicas(folder, tmp_path / "data") as (a, b):
        headers = {**a.headers, "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        async with httpx2.AsyncClient(headers=headers, timeout=DEADLINE_S) as http:
            opened = await http.post(a.url, json=initialize)
            assert opened.status_code == 200, opened.text
            session = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
            assert (await http.post(a.url, json=initialized, headers=session)).status_code == 202
            elsewhere = await http.post(b.url, json=listing, headers=session)
            assert elsewhere.status_code == 404, elsewhere.text
            home = await http.post(a.url, json=listing, headers=session)
            assert home.status_code == 200 and "convert_units" in home.text


async def test_expenses_written_through_one_replica_are_read_through_the_other(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with replicas(folder, data) as (a, b):
        async with handshake_client(a.transport()) as on_a, handshake_client(b.transport()) as on_b:
            added = await on_a.call_tool("add_expense", {"amount": 12.5, "category": "Food", "date": "2026-11-02"})
            assert not added.is_error, texts(added)
            listed = await on_b.call_tool("list_expenses", {})
            assert listed.structured_content["expenses"] == [added.structured_content]

            # Many writes through both replicas at once: every one of them is kept, each with its own id.
            per_replica = 12
            results: list[types.CallToolResult] = []

            async def add(client: Client, n: int) -> None:
                results.append(await client.call_tool("add_expense", {"amount": n + 1, "category": "load"}))

            async with anyio.create_task_group() as tasks:
                for n in range(per_replica):
                    tasks.start_soon(add, on_a, n)
                    tasks.start_soon(add, on_b, n)
            assert [texts(r) for r in results if r.is_error] == []
            for client in (on_a, on_b):
                book = (await client.call_tool("list_expenses", {"category": "load"})).structured_content
                assert book["count"] == 2 * per_replica, book
                assert book["total"] == 2 * sum(range(1, per_replica + 1))
            everything = (await on_b.call_tool("list_expenses", {})).structured_content["expenses"]
            ids = [e["id"] for e in everything]
            assert sorted(ids) == list(range(1, 2 * per_replica + 2))

    stored = json.loads((data / "expenses" / "data" / "expenses.json").read_text())
    assert len(stored["expenses"]) == 2 * per_replica + 1 and stored["next_id"] == 2 * per_replica + 2
    assert [p.name for p in (data / "expenses" / "data").iterdir() if history.is_temp(p.name)] == []


async def test_an_edit_seen_by_both_replicas_keeps_one_version(folder: Path, tmp_path: Path) -> None:
    with replicas(folder, tmp_path / "data") as (a, b):
        changes = [Changes(), Changes()]
        async with (
            handshake_client(a.transport(), message_handler=changes[0].handle) as on_a,
            handshake_client(b.transport(), message_handler=changes[1].handle) as on_b,
        ):
            for body, result in (("return a + b", 5), ("return a * b", 6), ("return a - b", -1)):
                seen = [c.count for c in changes]
                write_pair(folder, "combine", code("combine", body), spec("combine"))
                for c, count in zip(changes, seen, strict=True):
                    await c.after(count, DEADLINE_S)
                for client in (on_a, on_b):
                    with anyio.fail_after(DEADLINE_S):
                        while (await client.call_tool("combine", {"a": 2, "b": 3})).structured_content != {
                            "result": result
                        }:
                            await anyio.sleep(0.05)
    # Both replicas kept the two replaced versions; each distinct content is kept once.
    kept = history.versions(folder, "combine")
    sources = [(v.folder / "combine.py").read_text() for v in kept]
    assert sorted(sources) == sorted({code("combine", "return a + b"), code("combine", "return a * b")}), [
        v.id for v in kept
    ]


# -- the container files: what can be checked without a container engine ------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined, comments left out."""
    steps: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            instruction, _, arguments = pending.strip().partition(" ")
            steps.append((instruction.upper(), " ".join(arguments.split())))
            pending = ""
    return steps


def test_the_image_copies_files_that_exist_and_serves_http_as_the_cli_accepts_it() -> None:
    steps = dockerfile()
    assert [a.split()[0] for i, a in steps if i == "FROM"] == ["python:3.11-slim"] * 2
    included = {line.strip("!/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] == "!"}
    copies = [a.split() for i, a in steps if i == "COPY" and not a.startswith("--from")]
    assert copies, "the Dockerfile copies the project in"
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the project"
            assert source in included, f"COPY {source}: .dockerignore leaves it out of the build context"
    env = dict(part.split("=", 1) for i, a in steps if i == "ENV" for part in a.split())
    assert any(dest == env["FUNCSMITH_FUNCTIONS"] for *_, dest in copies), "the shipped catalogue is served"
    entrypoint = json.loads(next(a for i, a in steps if i == "ENTRYPOINT"))
    command = json.loads(next(a for i, a in steps if i == "CMD"))
    assert entrypoint == ["funcsmith"]
    assert 'funcsmith = "mcp_server.cli:main"' in (ROOT / "pyproject.toml").read_text()
    served = build_parser().parse_args(command, namespace=Options())
    assert (served.command, served.transport, served.host) == ("serve", "http", "0.0.0.0")
    assert f"EXPOSE {served.port}" in [f"{i} {a}" for i, a in steps]


def test_compose_runs_two_replicas_on_one_volume_with_one_token_and_a_model_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    replicas = {name: s for name, s in services.items() if s.get("build") == "."}
    assert len(replicas) == 2
    env = dict(part.split("=", 1) for i, a in dockerfile() if i == "ENV" for part in a.split())
    engines = {name for name, s in services.items() if str(s.get("image", "")).startswith("ollama/ollama")}
    shared: list[str] = []
    for name, replica in replicas.items():
        (volume,) = replica["volumes"]
        source, target = volume.split(":")
        assert source in compose["volumes"] and env["FUNCSMITH_FUNCTIONS"].startswith(target + "/")
        assert env["FUNCSMITH_DATA_DIR"].startswith(target + "/")
        shared.append(source)
        environment = replica["environment"]
        assert environment["FUNCSMITH_TOKEN"].startswith("${FUNCSMITH_TOKEN:?")
        assert environment["FUNCSMITH_MODEL"].startswith("ollama:")
        assert environment["OLLAMA_HOST"].split("//")[1].split(":")[0] in engines
        assert "SYS_ADMIN" in replica["cap_add"] and "apparmor=unconfined" in replica["security_opt"]
        # The replica's own HTTP settings, read the way `serve` reads them.
        monkeypatch.setenv("FUNCSMITH_ALLOWED_HOSTS", environment["FUNCSMITH_ALLOWED_HOSTS"])
        monkeypatch.setenv("FUNCSMITH_TOKEN", secrets.token_urlsafe(16))
        settings = configure("0.0.0.0", 8765)
        assert name in settings.allowed_hosts and settings.url == f"http://{name}:8765/mcp"
    assert len(set(shared)) == 1
    assert len({p for r in replicas.values() for p in r["ports"]}) == 2
