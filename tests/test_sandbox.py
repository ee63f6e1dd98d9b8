"""The sandbox against real hostile functions, in real processes: every escape ends as a clear error."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server.sandbox import CallResult, Limits, Sandbox, SandboxGrant, isolation_report
from mcp_server.sandbox._calluser import CALL_GID, CALL_UID
from mcp_server.sandbox._code import LARGEST, load, marshalled
from mcp_server.sandbox._worker import peek, read_output

pytestmark = pytest.mark.anyio

ZYGOTE, WORKER, RUNNER = "mcp_server.sandbox._zygote", "mcp_server.sandbox._worker", "mcp_server.sandbox._runner"

HOSTILE = Path(__file__).parent / "hostile" / "hostile.py"
# A path outside the call's folders is refused, or (under a folder the call user may not pass) not there at all.
REFUSED = {"PermissionError", "FileNotFoundError"}
SOURCE = HOSTILE.read_text()
LIMITS = Limits(
    timeout_s=2.0,
    cpu_s=1,
    memory_mb=256,
    file_size_mb=4,
    processes=32,
    output_bytes=256 << 10,
    result_bytes=1 << 20,
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox-data").resolve()


def sandbox_processes(data_root: Path) -> list[tuple[int, int]]:
    """(pid, parent pid) of every live process of sandboxes on `data_root`: its zygotes carry the root in argv."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if str(data_root).encode() in cmdline:
            found.append((int(entry.name), ppid))
    return found


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def call_processes(data_root: Path) -> list[int]:
    """Live processes serving a call (the call processes and all they started); not the zygotes or the idle pool."""
    return [pid for pid, _ in sandbox_processes(data_root) if process_name(pid) == "funcsmith-call"]


def pooled_processes(data_root: Path) -> list[int]:
    """Pooled call processes waiting for a call."""
    return [pid for pid, _ in sandbox_processes(data_root) if process_name(pid) == "funcsmith-pool"]


def policy(pid: int) -> int | None:
    """The scheduling policy of a process, None once it is gone."""
    try:
        return os.sched_getscheduler(pid)
    except ProcessLookupError:
        return None


def eventually(condition: Callable[[], bool], within_s: float = 30.0) -> bool:
    """Whether `condition` comes to hold within `within_s`: generous for a busy machine, as it returns once it holds."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def no_call_processes(data_root: Path, within_s: float = 30.0) -> bool:
    return eventually(lambda: not call_processes(data_root), within_s)


@pytest.fixture(scope="module")
async def sandbox(data_root: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(data_root, limits=LIMITS, max_concurrency=4) as box:
        yield box
        zygotes = [pid for pid, ppid in sandbox_processes(data_root) if ppid == os.getpid()]
    assert zygotes and not sandbox_processes(data_root), "processes outlived the sandbox"
    for pid in zygotes:  # each zygote removed its scratch folder and its cgroups
        assert not list(Path(tempfile.gettempdir()).glob(f"funcsmith-{pid}-*"))
        assert not list(Path("/sys/fs/cgroup").glob(f"*/funcsmith-{pid}"))


async def lingering(marker: Path, within_s: float = 30.0) -> None:
    """Wait until a `linger` call has written its marker: its process tree is up."""
    with anyio.fail_after(within_s):
        while not marker.exists():
            await anyio.sleep(0.01)


async def run(box: Sandbox, function: str, grant: SandboxGrant | None = None, **arguments: Any) -> CallResult:
    return await box.call(
        module="hostile", source=SOURCE, filename=str(HOSTILE), function=function, arguments=arguments, grant=grant
    )


async def assert_still_serving(box: Sandbox) -> None:
    result = await run(box, "add", a=2, b=3)
    assert result.ok and result.value == 5, result


async def test_plain_call(sandbox: Sandbox) -> None:
    result = await run(sandbox, "add", a=1, b=2)
    assert result == CallResult(ok=True, value=3, elapsed_s=result.elapsed_s)
    assert 0 < result.elapsed_s < 2


async def test_function_error_comes_back_by_name(sandbox: Sandbox) -> None:
    result = await run(sandbox, "missing_expense", expense_id=7)
    assert not result.ok and not result.sandbox_error
    assert result.error_type == "ExpenseNotFound"
    assert result.error_message == "ExpenseNotFound: no expense with id 7"
    frames = result.details["traceback"]
    assert [f["function"] for f in frames] == ["missing_expense"]
    assert "raise ExpenseNotFound" in frames[0]["code"]


async def test_results_become_json(sandbox: Sandbox) -> None:
    result = await run(sandbox, "rich_value")
    assert result.ok, result
    assert result.value == {
        "date": "2024-02-29",
        "moment": "2024-02-29T12:30:00+00:00",
        "time": "08:15:00",
        "tags": ["a", "b"],
        "frozen": [1, 2, 3],
        "pair": [1, "x"],
        "price": 12.5,
        "count": 3,
        "where": "/a/b",
        "point": {"x": 1, "when": "2000-01-01"},
    }


async def test_non_json_value_is_named(sandbox: Sandbox) -> None:
    result = await run(sandbox, "not_json")
    assert (result.ok, result.error_type, result.sandbox_error) == (False, "NotJSON", True)
    assert "result['ok'][1]" in result.error_message and "'object'" in result.error_message


async def test_environment_is_scrubbed_and_home_is_the_data_folder(
    sandbox: Sandbox, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUNCSMITH_TEST_SECRET", "hunter2")
    env = (await run(sandbox, "environment")).value
    assert set(env) == {"PATH", "HOME", "TMPDIR", "LANG"}
    where = (await run(sandbox, "whoami")).value
    assert where["home"] == where["cwd"] == str(data_root / "hostile")
    assert where["pid"] == 1  # first process of its own PID namespace


TRACES = (
    "import linecache, os, sys, tempfile\n"
    "def traces():\n"
    "    return {'modules': [m for m in ('rehearsal', 'traced') if m in sys.modules],\n"
    "            'lines': sorted(name for name in linecache.cache if name.startswith('<')),\n"
    "            'cwd': os.getcwd(), 'home': os.environ['HOME'],\n"
    "            'tmp': [os.environ['TMPDIR'], tempfile.gettempdir()],\n"
    "            'temp_files': os.listdir(tempfile.gettempdir())}\n"
)


async def test_a_pooled_call_finds_no_trace_of_its_rehearsal(sandbox: Sandbox, data_root: Path) -> None:
    """A pooled call process rehearses a made-up call in its temp folder before its request: the call sees its
    own module, home and temp folder, and nothing of the rehearsal's."""
    assert eventually(lambda: len(pooled_processes(data_root)) >= 1)
    for _ in range(3):
        result = await sandbox.call(
            module="traced", source=TRACES, filename="<traced>", function="traces", arguments={}
        )
        assert result.ok, result
        found = result.value
        assert found["modules"] == ["traced"] and found["lines"] == ["<traced>"]
        assert found["cwd"] == found["home"] == str(data_root / "traced")
        assert found["tmp"][0] == found["tmp"][1] != found["home"] and found["temp_files"] == []


LEAVE_TEMP = (
    "import os, tempfile\n"
    "def leave():\n"
    "    os.mkdir(tempfile.gettempdir() + '/left')\n"
    "    with open(tempfile.gettempdir() + '/left/file', 'w') as f:\n"
    "        f.write('x')\n"
    "    return tempfile.gettempdir()\n"
    "def listed():\n"
    "    return [tempfile.gettempdir(), os.listdir(tempfile.gettempdir())]\n"
)


async def test_nothing_a_call_leaves_in_its_temp_folder_outlives_it(sandbox: Sandbox, tmp_path: Path) -> None:
    """A finished call's temp folder is kept for a later call only as it was made: empty (here its files were
    on the call's own tmpfs); each later call finds its temp folder empty."""
    for grant in (None, SandboxGrant(read_paths=(str(tmp_path),))):  # pooled calls, then cold ones
        calls = {"module": "leave", "source": LEAVE_TEMP, "filename": "leave.py", "grant": grant}
        left = await sandbox.call(function="leave", arguments={}, **calls)
        assert left.ok, left
        folder = Path(left.value)
        assert not folder.exists() or not any(folder.iterdir())
        seen = []
        while str(folder) not in seen and len(seen) < 50:  # until a later call is given the same folder again
            result = await sandbox.call(function="listed", arguments={}, **calls)
            assert result.ok and result.value[1] == [], result
            seen.append(result.value[0])
        assert str(folder) in seen, "a finished call's temp folder was never used again"


TEMP_OWNER = (
    "import os, stat, tempfile\n"
    "def temp_owner():\n"
    "    info = os.stat(tempfile.gettempdir())\n"
    "    return [os.getuid(), info.st_uid, stat.S_IMODE(info.st_mode)]\n"
)


async def test_a_calls_temp_folder_belongs_to_the_user_it_runs_as_alone(sandbox: Sandbox, tmp_path: Path) -> None:
    for grant in (None, SandboxGrant(read_paths=(str(tmp_path),))):  # a pooled call, then a cold one
        result = await sandbox.call(
            module="temp", source=TEMP_OWNER, filename="temp.py", function="temp_owner", arguments={}, grant=grant
        )
        assert result.ok, result
        uid, owner, mode = result.value
        assert (owner, mode) == (uid, 0o700)


async def test_output_is_captured_apart_from_the_result(sandbox: Sandbox) -> None:
    result = await run(sandbox, "chatty")
    assert (result.ok, result.value, result.stdout, result.stderr) == (True, 1, "to stdout\n", "to stderr\n")


def test_reading_a_calls_output_takes_no_more_memory_than_it_holds() -> None:
    """A call's stdout and stderr are read back whole, up to the cap, without a buffer of the cap's size each."""
    fd = os.memfd_create("output")
    try:
        os.write(fd, b"to stdout\n")
        tracemalloc.start()
        try:
            assert read_output(fd, (1 << 20) + 1) == b"to stdout\n"
            assert read_output(fd, 3) == b"to "
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 << 10
        os.ftruncate(fd, 0)
        assert read_output(fd, 1 << 20) == b""
        # A stream the function closed reads as nothing. The closed number is a high one, which no other
        # thread's next open can take while this reads it.
        closed = os.dup2(fd, 1000)
        os.close(closed)
        assert read_output(closed, 10) == b""
    finally:
        os.close(fd)


AS_WRITTEN = {
    "annotated": (  # as a call's module always was: with postponed annotations (PEP 563)
        "def annotated(a: int = 1, b: 'list[str]' = ()) -> Later:\n    return dict(annotated.__annotations__)\n",
        {"a": "int", "b": "'list[str]'", "return": "Later"},
    ),
    "large": ("".join(f"X{n} = {n}\n" for n in range(8000)) + "def large():\n    return X7999\n", 7999),
}


def test_the_server_compiles_each_module_once_and_only_what_it_should() -> None:
    """The server sends each module's code compiled once, under its own file name; a module that does not
    compile, or is too large to compile on the server's loop, goes as source (its call process compiles it)."""
    code = marshalled("def f():\n    return 1\n", "f.py")
    assert code and marshalled("def f():\n    return 1\n", "f.py") is code
    assert load("", "", code).co_filename == "f.py"
    assert marshalled("def f():\n    return 1\n", "g.py") != code
    assert marshalled("def broken(:\n", "broken.py") == b""
    assert marshalled("x = 1\0\n", "null.py") == b""
    assert marshalled("x = " + "(" * 300 + ")" * 300 + "\n", "deep.py") == b""
    assert len(AS_WRITTEN["large"][0]) > LARGEST and marshalled(AS_WRITTEN["large"][0], "large.py") == b""


@pytest.mark.parametrize("name", sorted(AS_WRITTEN))
@pytest.mark.parametrize("pooled", [True, False])
async def test_a_module_runs_as_its_source_says(sandbox: Sandbox, tmp_path: Path, name: str, pooled: bool) -> None:
    """Small or large (past what the server compiles for the call), pooled or cold, a module runs as compiled
    from its own source."""
    grant = None if pooled else SandboxGrant(read_paths=(str(tmp_path),))
    source, value = AS_WRITTEN[name]
    result = await sandbox.call(
        module=name, source=source, filename=f"{name}.py", function=name, arguments={}, grant=grant
    )
    assert (result.ok, result.value) == (True, value), result


@pytest.mark.parametrize("pooled", [True, False])
async def test_a_module_that_does_not_compile_names_its_error_and_line(
    sandbox: Sandbox, tmp_path: Path, pooled: bool
) -> None:
    grant = None if pooled else SandboxGrant(read_paths=(str(tmp_path),))
    source = "def fine():\n    return 1\n\ndef broken(:\n    pass\n"
    result = await sandbox.call(
        module="broken", source=source, filename="broken.py", function="fine", arguments={}, grant=grant
    )
    assert (result.ok, result.sandbox_error, result.error_type) == (False, False, "SyntaxError"), result
    assert result.error_message.startswith("importing module 'broken' failed: SyntaxError: ")
    assert "(broken.py, line 4)" in result.error_message
    await assert_still_serving(sandbox)


@pytest.mark.parametrize(
    ("function", "error_type"),
    [
        ("sleep_forever", "Timeout"),
        ("ignore_sigterm", "Timeout"),
        ("memory_bomb", "MemoryLimit"),
        ("huge_file", "FileSizeLimit"),
        ("print_megabytes", "OutputLimit"),
        ("hard_exit", "Crashed"),
        ("huge_result", "ResultTooLarge"),
    ],
)
async def test_limits_end_in_a_clear_sandbox_error(
    sandbox: Sandbox, data_root: Path, function: str, error_type: str
) -> None:
    started = time.monotonic()
    result = await run(sandbox, function)
    assert (result.ok, result.error_type, result.sandbox_error) == (False, error_type, True), result
    assert result.error_message and result.error_message[0].islower()
    assert time.monotonic() - started < LIMITS.timeout_s + 3
    assert len(result.stdout) <= LIMITS.output_bytes
    assert no_call_processes(data_root)
    await assert_still_serving(sandbox)


@pytest.mark.parametrize("function", ["spin", "spin_in_c"])
async def test_cpu_spins_hit_the_cpu_limit(data_root: Path, function: str) -> None:
    # a wall-clock timeout far above the CPU limit, so a busy machine cannot turn this into a Timeout
    async with Sandbox(data_root, limits=Limits(timeout_s=20, cpu_s=1)) as box:
        result = await run(box, function)
        assert (result.ok, result.error_type, result.sandbox_error) == (False, "CPULimit", True), result
        assert result.error_message == "the call used more than 1 s of CPU time and was stopped"
        await assert_still_serving(box)
    assert no_call_processes(data_root)


async def test_crash_reports_the_exit_code(sandbox: Sandbox) -> None:
    result = await run(sandbox, "hard_exit")
    assert result.details["exit_code"] == 3
    assert "exited with code 3" in result.error_message


async def test_deep_recursion_is_the_functions_error(sandbox: Sandbox) -> None:
    result = await run(sandbox, "recurse")
    assert (result.error_type, result.sandbox_error) == ("RecursionError", False)


@pytest.mark.parametrize("function", ["fork_bomb", "thread_bomb"])
async def test_process_and_thread_bombs_are_capped(sandbox: Sandbox, data_root: Path, function: str) -> None:
    result = await run(sandbox, function)
    assert not result.ok
    assert result.error_type == "RuntimeError", result
    refused_after = int(result.error_message.split(" after ")[1].split()[0])
    assert refused_after < LIMITS.processes
    assert no_call_processes(data_root)
    await assert_still_serving(sandbox)


async def test_writing_outside_the_data_folder_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    result = await run(sandbox, "write_file", path=str(target))
    assert (result.error_type in REFUSED, result.sandbox_error) == (True, False), result
    assert not target.exists()


async def test_reading_the_real_home_is_refused(sandbox: Sandbox) -> None:
    secret = Path.home() / f".funcsmith-test-secret-{uuid.uuid4().hex}"
    secret.write_text("hunter2")
    try:
        result = await run(sandbox, "read_file", path=str(secret))
    finally:
        secret.unlink()
    assert result.error_type in REFUSED, result
    assert "hunter2" not in repr(result)


async def test_granted_paths_are_readable_and_writable(sandbox: Sandbox, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("granted")
    grant = SandboxGrant(read_paths=(str(shared),), write_paths=(str(tmp_path / "out"),))
    (tmp_path / "out").mkdir()
    if os.geteuid() == 0:  # calls of a root server run as the call user: a folder granted for writing must be its
        os.chown(tmp_path / "out", CALL_UID, CALL_GID)
    read = await run(sandbox, "read_file", grant=grant, path=str(shared / "in.txt"))
    written = await run(sandbox, "write_file", grant=grant, path=str(tmp_path / "out" / "x.txt"))
    assert (read.value, written.ok) == ("granted", True)
    assert (tmp_path / "out" / "x.txt").read_text() == "escaped"


def listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    return server


def accepted(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except TimeoutError:
        return False
    return True


async def test_network_is_refused(sandbox: Sandbox) -> None:
    with listener() as server:
        result = await run(sandbox, "connect", port=server.getsockname()[1])
        assert not result.ok and not result.sandbox_error
        assert result.error_type in {"OSError", "ConnectionRefusedError", "PermissionError", "TimeoutError"}
        assert not accepted(server)


async def test_network_grant_connects(sandbox: Sandbox, data_root: Path) -> None:
    with listener() as server:
        result = await run(sandbox, "connect", grant=SandboxGrant(network=True), port=server.getsockname()[1])
        assert (result.ok, result.value) == (True, "connected"), result
        assert accepted(server)


async def test_shells_cannot_start(sandbox: Sandbox, tmp_path: Path) -> None:
    result = await run(sandbox, "run_shell")
    assert (result.error_type, result.sandbox_error) == ("PermissionError", False)
    target = tmp_path / "from-shell.txt"
    status = await run(sandbox, "system_shell", path=str(target))
    assert status.ok and status.value != 0
    assert not target.exists()


async def test_daemons_left_behind_are_killed(sandbox: Sandbox, data_root: Path) -> None:
    result = await run(sandbox, "leave_daemon")
    assert result.ok
    assert no_call_processes(data_root)  # well before its 60 s sleep ends


async def test_signalling_its_process_group_reaches_only_the_call(sandbox: Sandbox, data_root: Path) -> None:
    zygotes = {pid for pid, ppid in sandbox_processes(data_root) if ppid == os.getpid()}
    result = await run(sandbox, "kill_my_group")
    assert result.ok, result  # as the first process of its namespace, the call is shielded from its own SIGKILL
    assert {pid for pid, ppid in sandbox_processes(data_root) if ppid == os.getpid()} == zygotes
    await assert_still_serving(sandbox)


async def test_cancellation_kills_the_tree(sandbox: Sandbox, data_root: Path) -> None:
    marker = data_root / "hostile" / f"linger-{uuid.uuid4().hex}"
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(run, sandbox, "linger", marker=str(marker)))
            await lingering(marker)
            assert len(call_processes(data_root)) >= 5
            scope.cancel()
    assert scope.cancelled_caught
    # Cancelling returns at once; the tree's kill is on its way, and must land.
    assert no_call_processes(data_root), "a cancelled call left processes behind"
    await assert_still_serving(sandbox)


async def test_data_persists_across_calls_and_restarts(sandbox: Sandbox, data_root: Path) -> None:
    key = uuid.uuid4().hex
    saved = await run(sandbox, "save", key=key, value="kept")
    assert saved.value == str(data_root / "hostile" / "data" / f"{key}.txt")
    assert (await run(sandbox, "load", key=key)).value == "kept"
    async with Sandbox(data_root, limits=LIMITS) as again:
        assert (await run(again, "load", key=key)).value == "kept"
    assert not (Path.home() / "data" / f"{key}.txt").exists()


async def test_concurrent_calls_all_complete(sandbox: Sandbox) -> None:
    results: list[CallResult] = []

    async def one(i: int) -> None:
        results.append(await run(sandbox, "add", a=i, b=1))

    async with anyio.create_task_group() as tasks:
        for i in range(32):
            tasks.start_soon(one, i)
    assert sorted(r.value for r in results) == list(range(1, 33))


async def test_misuse_raises(sandbox: Sandbox) -> None:
    with pytest.raises(TypeError, match="function must be a non-empty string"):
        await sandbox.call(module="m", source="", filename="m.py", function="", arguments={})
    with pytest.raises(TypeError, match="not JSON"):
        await sandbox.call(module="m", source="", filename="m.py", function="f", arguments={"x": object()})


def test_grant_from_spec() -> None:
    assert SandboxGrant.from_spec(None) == SandboxGrant()
    grant = SandboxGrant.from_spec({"network": True, "read_paths": ["/srv"], "timeout_s": 30, "memory_mb": 1024})
    assert grant == SandboxGrant(network=True, read_paths=("/srv",), timeout_s=30.0, memory_mb=1024)
    assert Limits().for_grant(grant).timeout_s == 30.0 and Limits().for_grant(grant).cpu_s == 30
    with pytest.raises(ValueError, match="unknown field"):
        SandboxGrant.from_spec({"root": True})
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxGrant.from_spec({"memory_mb": 1})


def test_isolation_report_names_every_layer() -> None:
    layers = isolation_report()
    names = {layer.name for layer in layers}
    assert {"rlimits", "process-tree kill", "network namespace", "landlock filesystem", "landlock tcp"} <= names
    assert all(layer.detail for layer in layers)
    assert isolation_report() == layers


async def test_pool_is_warm_and_serves_each_call_in_a_fresh_process(sandbox: Sandbox, data_root: Path) -> None:
    assert eventually(lambda: len(pooled_processes(data_root)) == sandbox.pool_size)  # one process per call
    zygotes = {pid for pid, ppid in sandbox_processes(data_root) if ppid == os.getpid()}
    parents = {ppid for pid, ppid in sandbox_processes(data_root) if pid in pooled_processes(data_root)}
    assert parents <= zygotes, "a pooled call process is not the zygote's own child"
    first, second = (await run(sandbox, "whoami")).value, (await run(sandbox, "whoami")).value
    assert first["tmp"] != second["tmp"] and first["pid"] == second["pid"] == 1
    assert no_call_processes(data_root)
    assert eventually(lambda: len(pooled_processes(data_root)) == sandbox.pool_size), "the pool was not refilled"


async def test_each_call_process_has_a_pid_namespace_of_its_own(sandbox: Sandbox, data_root: Path) -> None:
    """The zygote puts only the child it forks for a call in a new PID namespace: its next children go to its own."""
    assert eventually(lambda: len(pooled_processes(data_root)) == sandbox.pool_size)
    zygotes = {pid for pid, ppid in sandbox_processes(data_root) if ppid == os.getpid()}
    namespaces = [os.readlink(f"/proc/{pid}/ns/pid") for pid in pooled_processes(data_root)]
    own = {os.readlink(f"/proc/{pid}/ns/pid") for pid in zygotes}
    assert len(set(namespaces)) == len(namespaces) == sandbox.pool_size and not own & set(namespaces)
    assert {os.readlink(f"/proc/{pid}/ns/pid_for_children") for pid in zygotes} == own


def test_a_pooled_process_peeks_at_its_request_without_taking_it() -> None:
    """How a pooled call process sees whether its request is already there (then it skips its rehearsal)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert peek(theirs.fileno(), wait=False) is None  # nothing yet: it would rehearse
        ours.sendall(b"request")
        assert peek(theirs.fileno(), wait=False) == peek(theirs.fileno(), wait=True) == b"r"
        assert theirs.recv(64) == b"request"  # left where it was
        ours.close()
        assert peek(theirs.fileno(), wait=False) == peek(theirs.fileno(), wait=True) == b""  # the server hung up


async def test_pooled_processes_get_ready_at_idle_priority_and_wait_at_their_normal_one(
    sandbox: Sandbox, data_root: Path
) -> None:
    """Getting ready never slows a running call; a ready one is woken by its request at once, even on a busy machine."""
    assert eventually(lambda: len(pooled_processes(data_root)) == sandbox.pool_size)
    assert eventually(lambda: {policy(pid) for pid in pooled_processes(data_root)} == {os.SCHED_OTHER})
    result = await run(sandbox, "priority")
    assert result.value == {"policy": os.SCHED_OTHER, "nice": os.getpriority(os.PRIO_PROCESS, 0)}, result


async def test_the_pool_is_refilled_as_soon_as_a_call_begins(tmp_path: Path) -> None:
    """A replacement is forked when a pooled call starts, not once it ends: a long call leaves the pool full."""
    data_root = (tmp_path / "data").resolve()
    marker = data_root / "hostile" / f"linger-{uuid.uuid4().hex}"
    async with Sandbox(data_root, limits=replace(LIMITS, timeout_s=120.0), pool_size=2) as box:
        assert eventually(lambda: len(pooled_processes(data_root)) == box.pool_size)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(partial(run, box, "linger", marker=str(marker)))
                await lingering(marker)
                assert eventually(lambda: len(pooled_processes(data_root)) == box.pool_size)
                assert call_processes(data_root), "the call ended before the pool was seen full"
                scope.cancel()
    assert no_call_processes(data_root)


async def test_a_pooled_call_sees_only_its_own_folders(sandbox: Sandbox, data_root: Path) -> None:
    other = data_root / "other-module"
    other.mkdir(exist_ok=True)
    (other / "secret.txt").write_text("hunter2")
    read = await run(sandbox, "read_file", path=str(other / "secret.txt"))
    written = await run(sandbox, "write_file", path=str(other / "planted.txt"))
    listed = await run(sandbox, "list_dir", path=str(data_root))
    tmp = Path((await run(sandbox, "whoami")).value["tmp"])
    scratch = await run(sandbox, "list_dir", path=str(tmp.parent))
    for result in (read, written, listed, scratch):
        assert result.error_type == "PermissionError", result
    assert not (other / "planted.txt").exists()


async def test_calls_with_a_grant_or_other_limits_take_the_cold_path(data_root: Path) -> None:
    async with Sandbox(data_root, limits=LIMITS, pool_size=1) as box:
        more_memory = SandboxGrant(memory_mb=LIMITS.memory_mb * 2, timeout_s=30)  # filling it takes a while
        result = await run(box, "whoami", grant=more_memory)
        assert result.ok and result.value["pid"] == 1
        assert (await run(box, "memory_bomb", grant=more_memory)).error_type == "MemoryLimit"
        outside = data_root.parent / f"outside-{uuid.uuid4().hex}"
        where = (await box.call(
            module="hostile", source=SOURCE, filename=str(HOSTILE), function="whoami", arguments={}, data_dir=outside
        )).value  # fmt: skip
        assert where["home"] == str(outside)


async def test_a_call_whose_zygote_dies_under_it_gets_a_clear_error(tmp_path: Path) -> None:
    data_root = (tmp_path / "data").resolve()
    marker = data_root / "hostile" / f"linger-{uuid.uuid4().hex}"
    async with Sandbox(data_root, limits=replace(LIMITS, timeout_s=120.0), pool_size=1) as box:
        results: list[CallResult] = []
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: _append(results, run(box, "linger", marker=str(marker))))
            await lingering(marker)
            zygote = next(pid for pid, ppid in sandbox_processes(data_root) if ppid == os.getpid())
            os.kill(zygote, signal.SIGKILL)
        (result,) = results
        assert result.error_type == "Crashed" and "supervisor died" in result.error_message, result
        assert no_call_processes(data_root)
        await assert_still_serving(box)


async def test_a_call_right_after_its_zygote_was_killed_goes_to_the_replacement(tmp_path: Path) -> None:
    """A zygote that is exiting (its memory already gone) but has not yet closed its sockets is not used."""
    data_root = (tmp_path / "data").resolve()
    async with Sandbox(data_root, limits=LIMITS, pool_size=2) as box:
        for _ in range(10):
            await assert_still_serving(box)
            zygote = next(pid for pid, ppid in sandbox_processes(data_root) if ppid == os.getpid())
            assert eventually(lambda: len(pooled_processes(data_root)) == box.pool_size)
            os.kill(zygote, signal.SIGKILL)
            assert eventually(partial(_gone, zygote, data_root))
            await assert_still_serving(box)


async def test_a_dead_zygote_is_replaced_with_its_pool(tmp_path: Path) -> None:
    data_root = (tmp_path / "data").resolve()
    async with Sandbox(data_root, limits=LIMITS, pool_size=2) as box:
        await assert_still_serving(box)
        zygote = next(pid for pid, ppid in sandbox_processes(data_root) if ppid == os.getpid())
        os.kill(zygote, signal.SIGKILL)
        assert eventually(lambda: not pooled_processes(data_root)), "pooled processes outlived their zygote"
        await anyio.sleep(0.05)
        await assert_still_serving(box)
        await assert_still_serving(box)
    assert not sandbox_processes(data_root)


async def test_spawn_mode_has_the_same_lockdown(tmp_path: Path) -> None:
    data_root = (tmp_path / "data").resolve()
    async with Sandbox(data_root, limits=LIMITS, start="spawn") as box:
        assert box.start == "spawn"
        assert (await run(box, "add", a=2, b=3)).value == 5
        where = (await run(box, "whoami")).value
        assert where["pid"] == 1 and where["home"] == str(data_root / "hostile")
        assert set((await run(box, "environment")).value) == {"PATH", "HOME", "TMPDIR", "LANG"}
        written = await run(box, "write_file", path=str(tmp_path / "escaped.txt"))
        assert written.error_type == "PermissionError" and not (tmp_path / "escaped.txt").exists()
        with listener() as server:
            connect = await run(box, "connect", port=server.getsockname()[1])
            assert not connect.ok and not accepted(server)
        assert (await run(box, "fork_bomb")).error_type == "RuntimeError"
        assert (await run(box, "sleep_forever")).error_type == "Timeout"
        assert no_call_processes(data_root)
    assert not sandbox_processes(data_root)
    assert not list(Path(tempfile.gettempdir()).glob(f"funcsmith-{os.getpid()}-*"))
    assert not list(Path("/sys/fs/cgroup").glob(f"*/funcsmith-{os.getpid()}-*"))


async def test_closing_a_spawn_mode_sandbox_stops_the_calls_still_running(tmp_path: Path) -> None:
    data_root = (tmp_path / "data").resolve()
    box = Sandbox(data_root, limits=Limits(timeout_s=120, cpu_s=120), start="spawn")
    async with anyio.create_task_group() as tasks:
        await box.__aenter__()
        results: list[CallResult] = []
        tasks.start_soon(lambda: _append(results, run(box, "sleep_forever")))
        with anyio.fail_after(60):
            while not call_processes(data_root):
                await anyio.sleep(0.05)
        with anyio.fail_after(30):  # not the call's 120 s: its zygote stops it as it closes
            await box.aclose()
    assert len(results) == 1 and not results[0].ok, results
    assert not sandbox_processes(data_root)


def _gone(pid: int, data_root: Path) -> bool:
    """Whether a sandbox process no longer shows as one: its memory (and with it its command line) is gone."""
    return pid not in {found for found, _ in sandbox_processes(data_root)}


async def _append(results: list[CallResult], call: Awaitable[CallResult]) -> None:
    results.append(await call)


MODULES = "import sys\n\n\ndef loaded():\n    return sorted(sys.modules)\n"


async def loaded_modules(box: Sandbox, grant: SandboxGrant | None = None) -> set[str]:
    """The modules a call process has before its function runs: those of the zygote it was forked from."""
    result = await box.call(
        module="modules", source=MODULES, filename="modules.py", function="loaded", arguments={}, grant=grant
    )
    assert result.ok, result
    return set(result.value)


async def test_the_zygote_imports_neither_asyncio_nor_the_runner(sandbox: Sandbox, tmp_path: Path) -> None:
    """The zygote stays small, so every fork of it is cheap: none of the server side (asyncio, the runner), and
    not pyseccomp (a throwaway child builds the seccomp filter)."""
    async with Sandbox(tmp_path / "spawned", limits=LIMITS, start="spawn") as spawned:
        for modules in (
            await loaded_modules(sandbox),  # a pooled call process
            await loaded_modules(sandbox, SandboxGrant(read_paths=(str(tmp_path),))),  # a cold one
            await loaded_modules(spawned),  # a call of a zygote started for it alone
        ):
            assert ZYGOTE in modules and WORKER in modules, sorted(modules)
            server_side = {m for m in modules if m.split(".")[0] == "asyncio" or m == RUNNER}
            assert not server_side, f"the zygote imported {sorted(server_side)}"
            assert "pyseccomp" not in modules


def test_start_and_pool_size_are_checked(data_root: Path) -> None:
    with pytest.raises(ValueError, match="start must be 'fork' or 'spawn'"):
        Sandbox(data_root, start="thread")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pool_size"):
        Sandbox(data_root, pool_size=-1)


async def test_a_data_root_that_does_not_exist_yet_is_made_and_writable(tmp_path: Path) -> None:
    async with Sandbox(tmp_path / "not" / "yet", limits=LIMITS) as box:
        saved = await run(box, "save", key="k", value="v")
        assert saved.ok, saved
    assert (tmp_path / "not" / "yet" / "hostile" / "data" / "k.txt").read_text() == "v"


async def test_a_zygote_with_more_than_1024_fds_still_serves(tmp_path: Path) -> None:
    # 260 pooled processes hold over 1024 of the zygote's fds, so a cold call's pipes come above that
    async with Sandbox(tmp_path / "data", limits=LIMITS, pool_size=260) as box:
        result = await run(box, "chatty", grant=SandboxGrant(read_paths=(str(tmp_path),)))
        assert (result.ok, result.stdout, result.stderr) == (True, "to stdout\n", "to stderr\n"), result
