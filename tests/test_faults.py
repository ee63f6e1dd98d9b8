"""Ordinary faults a user meets: each leaves the server serving the other tools, with one clear line.

Disk faults are real: a small tmpfs filled to the last inode and block (ENOSPC), and read-only bind
mounts (EROFS), made and removed by the test (they need root; without it those tests are skipped).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.client.stdio import stdio_client

from mcp_server import history
from mcp_server.catalog import BUILTIN_TOOLS, Catalog, check_module
from mcp_server.generate import Generator
from mcp_server.models import OllamaBackend
from mcp_server.sandbox import Sandbox
from mcp_server.spec import MAX_DEPTH
from mcp_server.tools import argument_problems
from tests import mcp_helpers as helpers
from tests.calc import CALC_JSON, CALC_PY
from tests.fake_ollama import FakeOllama
from tests.mcp_helpers import ROOT, handshake_client, stdio_params, texts

pytestmark = pytest.mark.anyio

ECHO_PY = '''"""Echo, a module that needs no data."""


def echo(text: str) -> str:
    """Return the text."""
    return text
'''
ECHO_JSON = {
    "name": "echo",
    "description": "Return the text.",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    "responses": [{"type": "string"}],
    "examples": [{"prompt": "echo hi", "parameters": {"text": "hi"}, "result": "hi"}],
}
KEEP_PY = '''"""Keeps a note in ~/data."""

import os


def keep_note(text: str) -> str:
    """Store the text in ~/data/note.txt."""
    folder = os.path.expanduser("~/data")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "note.txt"), "w") as handle:
        handle.write(text)
    return text
'''
KEEP_JSON = {**ECHO_JSON, "name": "keep_note", "description": "Store the text.", "examples": []}


def funcsmith(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_server.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def write_pair(folder: Path, module: str, source: str, specs: Any) -> None:
    history.write_atomic(folder / f"{module}.py", source)
    history.write_atomic(folder / f"{module}.json", json.dumps(specs))


def deep_schema(levels: int) -> dict[str, Any]:
    """A parameter schema with `levels` nested anyOf (2 KB of JSON at 150 levels)."""
    inner: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        inner = {"anyOf": [inner]}
    return {"type": "object", "properties": {"text": inner}, "required": ["text"]}


def deep_spec(levels: int = 150) -> dict[str, Any]:
    return {**ECHO_JSON, "name": "deep_echo", "parameters": deep_schema(levels), "examples": []}


DEEP_PY = ECHO_PY.replace("def echo(", "def deep_echo(")


class Changes(helpers.Changes):
    """Tool-list changes, and a wait for the tools a client ends up with."""

    async def until(self, client: Client, expected: set[str], timeout: float = 20.0) -> None:
        """Wait until the client's tools are `expected` (a change may come in several notifications)."""
        with anyio.fail_after(timeout):
            while True:
                seen = self.count
                if await tools(client) == expected:
                    return
                while self.count == seen:
                    await self._event.wait()


@contextlib.asynccontextmanager
async def serving(
    functions: Path, data: Path, log: Path, *extra: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[Client, Changes]]:
    """A stdio server (its stderr in `log`) and a handshake-era client that counts tool-list changes."""
    changes = Changes()
    with log.open("w") as errlog:
        params = stdio_params(functions, data, *extra, env=env)
        async with handshake_client(stdio_client(params, errlog=errlog), message_handler=changes.handle) as client:
            yield client, changes


async def tools(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools} - BUILTIN_TOOLS


async def answer(client: Client, name: str, arguments: dict[str, Any]) -> Any:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, texts(result)
    return result.structured_content


async def problems(client: Client) -> list[str]:
    listing = (await client.call_tool("list_functions", {})).structured_content
    return [*listing["problems"], *(p for f in listing["functions"] for p in f["problems"])]


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


# -- disks that are full or read-only ---------------------------------------------------------------------


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs or a read-only bind needs root")


@contextlib.contextmanager
def tmpfs(path: Path, *, size_kb: int = 1024, inodes: int = 400) -> Iterator[Path]:
    """A small tmpfs mounted at `path`, unmounted afterwards."""
    _need_root()
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k,nr_inodes={inodes}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` bind-mounted read-only onto itself, unmounted afterwards."""
    _need_root()
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> None:
    """Use up every free inode, then every free block, of the file system holding `folder`."""
    with contextlib.suppress(OSError):
        for index in range(1_000_000):
            (folder / f".fill-{index}").touch()
    with contextlib.suppress(OSError), (folder / ".fill-0").open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    probe = folder / ".probe"
    with pytest.raises(OSError) as full:
        probe.mkdir()
    assert full.value.errno == 28, full.value


async def test_disk_full_when_history_is_written_on_reload(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "functions") as folder:
        write_pair(folder, "calc", CALC_PY, CALC_JSON)
        write_pair(folder, "echo", ECHO_PY, ECHO_JSON)
        changed = folder / ".calc.py.next"
        changed.write_text(CALC_PY.replace("return a + b", "return a + b + 1000"))
        log = tmp_path / "server.log"
        async with serving(folder, tmp_path / "data", log) as (client, changes):
            fill(folder)
            os.replace(changed, folder / "calc.py")  # frees one inode; keeping the old version needs several
            await changes.next()
            assert await answer(client, "add", {"a": 1, "b": 2}) == {"result": 1003}
            assert await answer(client, "echo", {"text": "still here"}) == {"result": "still here"}
        text = log.read_text()
        no_traceback(text)
        lines = [line for line in text.splitlines() if "could not keep the replaced version of module calc" in line]
        assert len(lines) == 1 and "No space left on device" in lines[0], text


async def test_read_only_history_when_a_module_is_removed(tmp_path: Path, catalog: Path) -> None:
    write_pair(catalog, "echo", ECHO_PY, ECHO_JSON)
    kept = history.history_root(catalog)
    kept.mkdir(parents=True)
    log = tmp_path / "server.log"
    with read_only(kept):
        async with serving(catalog, tmp_path / "data", log) as (client, changes):
            (catalog / "calc.json").unlink()
            await changes.until(client, {"echo"})
            assert await answer(client, "echo", {"text": "hi"}) == {"result": "hi"}
    text = log.read_text()
    no_traceback(text)
    assert "could not keep the replaced version of module calc" in text and "Read-only file system" in text, text


def test_restore_on_a_read_only_or_full_folder_is_one_line(tmp_path: Path, catalog: Path) -> None:
    history.save_files(catalog, "calc")
    changed = CALC_PY.replace("return a + b", "return a - b")
    history.write_atomic(catalog / "calc.py", changed)
    with read_only(catalog):
        done = funcsmith("--functions", str(catalog), "restore", "calc")
    assert done.returncode != 0
    no_traceback(done.stderr)
    assert done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr
    assert "cannot restore calc" in done.stderr and "Read-only file system" in done.stderr
    assert (catalog / "calc.py").read_text() == changed

    with tmpfs(tmp_path / "small") as folder:
        write_pair(folder, "calc", CALC_PY, CALC_JSON)
        history.save_files(folder, "calc")
        history.write_atomic(folder / "calc.py", changed)
        fill(folder)
        done = funcsmith("--functions", str(folder), "restore", "calc")
        assert done.returncode != 0
        no_traceback(done.stderr)
        assert "cannot restore calc" in done.stderr and "No space left on device" in done.stderr, done.stderr
        assert (folder / "calc.py").read_text() == changed
        assert not [p for p in folder.iterdir() if history.is_temp(p.name)]


# -- specs that nest too deeply -----------------------------------------------------------------------------


def test_deep_spec_is_a_diagnostic_naming_file_and_depth(catalog: Path) -> None:
    write_pair(catalog, "deep_echo", DEEP_PY, deep_spec())
    assert len((catalog / "deep_echo.json").read_bytes()) < 3000
    check = check_module(catalog, "deep_echo")
    assert not check.entries
    [diagnostic] = check.diagnostics
    assert diagnostic.file == catalog / "deep_echo.json" and diagnostic.function == "deep_echo"
    assert f"nests 303 levels of objects and lists deep; at most {MAX_DEPTH}" in diagnostic.message
    # A schema just inside the bound is checked as usual.
    write_pair(catalog, "deep_echo", DEEP_PY, deep_spec(MAX_DEPTH // 2 - 2))
    assert check_module(catalog, "deep_echo").entries

    done = funcsmith("check", str(catalog))
    assert done.returncode == 0, done.stdout + done.stderr
    write_pair(catalog, "deep_echo", DEEP_PY, deep_spec())
    done = funcsmith("check", str(catalog))
    assert done.returncode == 1
    no_traceback(done.stdout + done.stderr)
    assert "deep_echo.json: function 'deep_echo': parameters: nests 303 levels" in done.stdout


async def test_deep_spec_at_start_and_added_live(tmp_path: Path, catalog: Path) -> None:
    write_pair(catalog, "deep_echo", DEEP_PY, deep_spec())
    log = tmp_path / "server.log"
    async with serving(catalog, tmp_path / "data", log) as (client, changes):
        assert await tools(client) == {"add", "divide"}
        assert any("deep_echo.json" in p and "nests 303 levels" in p for p in await problems(client))
        write_pair(catalog, "deeper", DEEP_PY.replace("deep_echo", "deeper"), {**deep_spec(400), "name": "deeper"})
        write_pair(catalog, "echo", ECHO_PY, ECHO_JSON)
        await changes.until(client, {"add", "divide", "echo"})
        assert any("deeper.json" in p and "nests 803 levels" in p for p in await problems(client))
    no_traceback(log.read_text())


def test_arguments_nesting_deeper_than_a_recursive_schema_can_check() -> None:
    # Through MCP the SDK's own message parsing stops such arguments first; other callers reach the checks.
    tree = {
        "type": "object",
        "properties": {"text": {"$ref": "#/$defs/tree"}},
        "required": ["text"],
        "$defs": {"tree": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/$defs/tree"}}]}},
    }
    nested: Any = "leaf"
    for _ in range(400):
        nested = [nested]
    validator = Draft202012Validator(tree)
    assert argument_problems(validator, {"text": nested}) == ["the arguments nest too deeply to check"]
    assert argument_problems(validator, {"text": [["leaf"]]}) == []


# -- grants with paths that cannot be granted ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "why"),
    [
        ([""], "each entry must be an absolute path"),
        (["   "], "each entry must be an absolute path"),
        (["data/in"], "relative path 'data/in'"),
        (["/srv/a\u0000b"], "NUL byte"),
        ("/srv", "read_paths: '/srv' is not of type 'array'"),
    ],
)
def test_invalid_grant_paths_make_the_function_invalid(catalog: Path, paths: Any, why: str) -> None:
    specs = [dict(s) for s in CALC_JSON]
    specs[0]["sandbox"] = {"read_paths": paths}
    write_pair(catalog, "calc", CALC_PY, specs)
    loaded = Catalog(catalog)
    loaded.load()
    assert sorted(loaded.published) == ["divide"]
    messages = [str(d) for d in loaded.diagnostics]
    assert len(messages) == 1 and "function 'add'" in messages[0] and why in messages[0], messages


def test_allowed_grant_paths(catalog: Path, tmp_path: Path) -> None:
    specs = [dict(s) for s in CALC_JSON]
    specs[0]["sandbox"] = {"read_paths": [str(tmp_path), "~/notes", "/not/there/yet"], "write_paths": ["/tmp"]}
    write_pair(catalog, "calc", CALC_PY, specs)
    loaded = Catalog(catalog)
    loaded.load()
    assert loaded.ok and sorted(loaded.published) == ["add", "divide"]


async def test_invalid_grant_at_start_and_added_live(tmp_path: Path, catalog: Path) -> None:
    bad = {**ECHO_JSON, "sandbox": {"read_paths": [""]}}
    write_pair(catalog, "echo", ECHO_PY, bad)
    log = tmp_path / "server.log"
    async with serving(catalog, tmp_path / "data", log) as (client, changes):
        assert await tools(client) == {"add", "divide"}
        assert any("echo.json" in p and "read_paths" in p for p in await problems(client))
        write_pair(catalog, "other", ECHO_PY.replace("echo", "other"), {**bad, "name": "other"})
        write_pair(catalog, "echo", ECHO_PY, ECHO_JSON)
        await changes.until(client, {"add", "divide", "echo"})
        assert await answer(client, "echo", {"text": "hi"}) == {"result": "hi"}
    no_traceback(log.read_text())


# -- the functions folder going away and coming back ---------------------------------------------------------


async def test_folder_deleted_and_recreated_or_renamed_away_and_back(tmp_path: Path, catalog: Path) -> None:
    log = tmp_path / "server.log"
    async with serving(catalog, tmp_path / "data", log) as (client, changes):
        shutil.rmtree(catalog)
        with anyio.fail_after(20):
            while "is gone" not in log.read_text():
                await anyio.sleep(0.05)
        assert await answer(client, "add", {"a": 1, "b": 2}) == {"result": 3}  # the last loaded tools serve on
        catalog.mkdir()
        write_pair(catalog, "echo", ECHO_PY, ECHO_JSON)
        await changes.until(client, {"echo"})

        away = tmp_path / "away"
        os.rename(catalog, away)
        write_pair(away, "calc", CALC_PY, CALC_JSON)
        os.rename(away, catalog)
        await changes.until(client, {"echo", "add", "divide"})
        with anyio.fail_after(20):  # watched again: a later edit is served
            write_pair(catalog, "echo", ECHO_PY.replace("return text", "return text.upper()"), ECHO_JSON)
            while await answer(client, "echo", {"text": "hi"}) != {"result": "HI"}:
                await changes.next()
    text = log.read_text()
    no_traceback(text)
    assert text.count("is gone") == 2 and text.count("is back;") == 2, text
    # The calc module the deletion took away is kept in the new folder's history.
    assert history.versions(catalog, "calc")


# -- a data root that is read-only or cannot be created ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["cannot be created", "read-only"])
async def test_unusable_data_root(tmp_path: Path, catalog: Path, kind: str) -> None:
    write_pair(catalog, "echo", ECHO_PY, ECHO_JSON)
    write_pair(catalog, "keep", KEEP_PY, KEEP_JSON)
    log = tmp_path / "server.log"
    with contextlib.ExitStack() as stack:
        if kind == "read-only":
            data = tmp_path / "data"
            data.mkdir()
            stack.enter_context(read_only(data))
        else:
            (tmp_path / "a-file").write_text("")
            data = tmp_path / "a-file" / "data"
        async with serving(catalog, data, log) as (client, _):
            assert await answer(client, "echo", {"text": "hi"}) == {"result": "hi"}
            assert await answer(client, "add", {"a": 1, "b": 2}) == {"result": 3}
            kept = await client.call_tool("keep_note", {"text": "hi"})
            assert kept.is_error and ("Permission denied" in texts(kept) or "Read-only" in texts(kept)), texts(kept)
    text = log.read_text()
    no_traceback(text)
    said = "cannot be created" if kind == "cannot be created" else "is read-only"
    assert len([line for line in text.splitlines() if f"the data folder {data} {said}" in line]) == 1, text


# -- a huge module checked while other calls go on -------------------------------------------------------------


async def test_calls_answer_while_a_huge_module_is_checked(tmp_path: Path, catalog: Path) -> None:
    count = 5000
    source = '"""Many functions."""\n\n' + "".join(
        f"def f{i}(a: int) -> int:\n    return a + {i}\n\n\n" for i in range(count)
    )
    one = {
        "description": "Add a constant.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
        "responses": [{"type": "integer"}],
    }
    specs = [{"name": f"f{i}", **one} for i in range(count)]
    async with serving(catalog, tmp_path / "data", tmp_path / "server.log") as (client, changes):
        await answer(client, "add", {"a": 1})
        write_pair(catalog, "many", source, specs)
        started = time.monotonic()
        latencies: list[float] = []
        async with anyio.create_task_group() as group:

            async def until_published() -> None:
                await changes.next(timeout=300)
                group.cancel_scope.cancel()

            group.start_soon(until_published)
            while True:
                begun = time.monotonic()
                await answer(client, "add", {"a": 1, "b": 1})
                latencies.append(time.monotonic() - begun)
                await anyio.sleep(0.05)
        checked = time.monotonic() - started
        called = await answer(client, "call_function", {"name": f"f{count - 1}", "arguments": {"a": 1}})
        assert called == {"result": count}
    # Calls kept answering all through the check: many of them, none waiting for it to end.
    assert len(latencies) >= 5, (checked, latencies)
    assert max(latencies) < checked / 2, (checked, max(latencies))


# -- shipped examples under concurrent calls, and what a crash leaves behind ----------------------------------


async def test_concurrent_expenses_are_all_stored_with_unique_ids(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with serving(ROOT / "functions", data, tmp_path / "server.log") as (client, _):
        acknowledged: list[dict[str, Any]] = []

        async def add(round_: int, index: int) -> None:
            arguments = {"amount": 1 + index, "category": f"round {round_}", "date": "2026-11-02"}
            acknowledged.append(await answer(client, "add_expense", arguments))

        for round_ in range(5):
            async with anyio.create_task_group() as group:
                for index in range(8):
                    group.start_soon(add, round_, index)
        stored = (await answer(client, "list_expenses", {}))["expenses"]
    assert len(acknowledged) == 40
    assert sorted(r["id"] for r in stored) == sorted(r["id"] for r in acknowledged) == list(range(1, 41))
    assert not [p for p in (data / "expenses" / "data").iterdir() if history.is_temp(p.name)]


async def test_temp_files_left_by_a_crash_are_removed_at_start(tmp_path: Path, catalog: Path) -> None:
    data = tmp_path / "data"
    book = data / "expenses" / "data"
    book.mkdir(parents=True)
    kept = history.history_root(catalog) / "calc"
    kept.mkdir(parents=True)
    hour_ago = time.time() - 3600
    stale = [
        catalog / f".calc.py.1a2b3c4d{history.TEMP_SUFFIX}",
        book / f".expenses.json.x8k2{history.TEMP_SUFFIX}",
        kept / f".20261101T000000.000000-abc{history.TEMP_SUFFIX}",
    ]
    stale[2].mkdir()
    (stale[2] / "calc.py").write_text(CALC_PY)
    fresh = [catalog / f".echo.py.9f8e7d6c{history.TEMP_SUFFIX}", book / f".expenses.json.q1{history.TEMP_SUFFIX}"]
    theirs = [catalog / ".calc.py.tmp", book / "notes.tmp", book / f"report{history.TEMP_SUFFIX}"]
    for path in [*stale[:2], *fresh, *theirs]:
        path.write_text("x")
    for path in [*stale, *theirs]:
        os.utime(path, (hour_ago, hour_ago))
    log = tmp_path / "server.log"
    async with serving(catalog, data, log, "-v") as (client, _):
        assert await answer(client, "add", {"a": 1}) == {"result": 1}
    assert [p for p in stale if p.exists()] == []
    assert [p for p in [*fresh, *theirs] if not p.exists()] == []
    assert "removed 3 temp file(s) left behind by an earlier crash" in log.read_text()


# -- history is bounded ---------------------------------------------------------------------------------------


def test_history_keeps_the_newest_versions_oldest_first_out(catalog: Path) -> None:
    saved = [history.save(catalog, "calc", f"# version {i}\n", "{}", keep=3) for i in range(6)]
    assert [v.id for v in history.versions(catalog, "calc")] == [v.id for v in saved[-3:]]
    # Content kept already becomes the newest again instead of a copy.
    again = history.save(catalog, "calc", "# version 3\n", "{}", keep=3)
    ids = [v.id for v in history.versions(catalog, "calc")]
    assert len(ids) == 3 and ids[-1] == again.id
    assert [(history.versions(catalog, "calc")[-1].folder / "calc.py").read_text()] == ["# version 3\n"]


async def test_served_history_is_bounded_by_the_option(tmp_path: Path, catalog: Path) -> None:
    async with serving(catalog, tmp_path / "data", tmp_path / "server.log", "--history-keep", "3") as (client, _):
        for i in range(6):
            history.write_atomic(catalog / "calc.py", CALC_PY.replace("return a + b", f"return a + b + {i + 1}"))
            with anyio.fail_after(20):
                while await answer(client, "add", {"a": 0}) != {"result": i + 1}:
                    await anyio.sleep(0.05)
    kept = history.versions(catalog, "calc")
    assert len(kept) == 3
    assert [v.folder.joinpath("calc.py").read_text().count("+ b +") for v in kept] == [1, 1, 1]
    assert "return a + b + 5" in kept[-1].folder.joinpath("calc.py").read_text()


def test_history_keep_must_be_a_positive_number(catalog: Path) -> None:
    done = funcsmith("--functions", str(catalog), "restore", "calc", env={"FUNCSMITH_HISTORY_KEEP": "none"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "FUNCSMITH_HISTORY_KEEP) must be a whole number of at least 1, not none" in done.stderr
    done = funcsmith("restore", "calc", "--functions", str(catalog), "--history-keep", "0")
    assert done.returncode == 2 and "not 0" in done.stderr


async def test_generate_overwrite_with_history_read_only_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    async with Sandbox(tmp_path / "data") as sandbox:
        with FakeOllama(answers=["failing_examples_fixed"] * 2) as fake:
            catalog = Catalog(folder)
            catalog.load()
            generator = Generator(catalog, sandbox, lambda: OllamaBackend("gemma3:4b", host=fake.host))
            assert (await generator.create("reverse a string")).ok
            before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
            kept = history.history_root(folder)
            kept.mkdir(parents=True, exist_ok=True)
            with read_only(kept):
                again = await generator.create("reverse a string", generate_anyway=True, overwrite=True, attempts=1)
    assert not again.ok
    assert any("Read-only file system" in p for p in again.problems), again.problems
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert catalog.get("reverse_string") is not None


def test_a_zygote_whose_server_left_before_it_was_ready_exits_quietly(tmp_path: Path) -> None:
    """Ctrl-C while `serve` starts: the server is gone before its zygote says it is ready. The zygote cleans
    up and exits, without a traceback on the terminal they share."""
    import socket

    from mcp_server.sandbox import _runner, _wire
    from mcp_server.sandbox._model import ENVIRONMENT, Limits
    from mcp_server.sandbox._paths import python_read_paths

    data = tmp_path / "data"
    data.mkdir()
    pool = _wire.Pool(size=0, limits=Limits(), read_paths=list(python_read_paths()), data_root=str(data))
    ours, theirs = socket.socketpair()
    ours.close()  # the server has gone
    with theirs:
        argv = [str(theirs.fileno()), "gone", _runner.ROOT, _wire.encode(_wire.Boot(False, pool)).decode()]
        done = subprocess.run(
            [sys.executable, "-I", "-c", _runner.BOOT, *argv],
            pass_fds=(theirs.fileno(),),
            env={**ENVIRONMENT, "TMPDIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert not [p for p in tmp_path.iterdir() if p.name != "data"]  # its scratch folder is gone too
