"""Escapes through what the kernel shares between processes: keyrings, SysV IPC, unix sockets, root, rare syscalls.

Each test plants something of the host's (as the test process, which is the server's user) and has a hostile
function go for it from inside a call.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_server.sandbox import CallResult, Sandbox, SandboxGrant
from tests.test_sandbox import HOSTILE, LIMITS, SOURCE, eventually, sandbox_processes

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(platform.machine() != "x86_64", reason="the hostile functions use x86_64 syscall numbers"),
]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.shmat.restype = ctypes.c_void_p
_USER_KEYRING = -4
_IPC_CREAT, _IPC_EXCL, _IPC_RMID = 0o1000, 0o2000, 0


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("escapes-data").resolve()


@pytest.fixture(scope="module")
async def sandbox(data_root: Path) -> AsyncIterator[Sandbox]:
    segments = host_segments()
    async with Sandbox(data_root, limits=LIMITS, max_concurrency=4) as box:
        yield box
    assert not sandbox_processes(data_root), "processes outlived the sandbox"
    assert " - tmpfs funcsmith " not in Path("/proc/self/mountinfo").read_text(), "a cover of the calls' view leaked"
    assert eventually(lambda: host_segments() == segments, within_s=10), "SysV segments outlived the calls"


async def run(box: Sandbox, function: str, grant: SandboxGrant | None = None, **arguments: Any) -> CallResult:
    return await box.call(
        module="hostile", source=SOURCE, filename=str(HOSTILE), function=function, arguments=arguments, grant=grant
    )


def _check(result: int) -> int:
    if result == -1 or result == ctypes.c_void_p(-1).value:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


@contextlib.contextmanager
def host_key(description: str, secret: bytes) -> Iterator[int]:
    """A key of the test process's user in its user keyring, for as long as the block runs."""
    key = _check(_libc.syscall(248, b"user", description.encode(), secret, len(secret), _USER_KEYRING))
    try:
        yield key
    finally:
        _libc.syscall(250, 21, key)  # KEYCTL_INVALIDATE


def find_key(description: str) -> int | None:
    key = _libc.syscall(250, 10, _USER_KEYRING, b"user", description.encode(), 0)  # KEYCTL_SEARCH
    return None if key == -1 else key


@contextlib.contextmanager
def host_segment(key: int, secret: bytes) -> Iterator[int]:
    """A 0600 SysV shared memory segment of the test process's user holding `secret`."""
    segment = _check(_libc.shmget(key, 4096, _IPC_CREAT | _IPC_EXCL | 0o600))
    address = _check(_libc.shmat(segment, None, 0))
    ctypes.memmove(address, secret, len(secret))
    try:
        yield address
    finally:
        _libc.shmdt(ctypes.c_void_p(address))
        _libc.shmctl(segment, _IPC_RMID, None)


def host_segments() -> list[tuple[int, int]]:
    """(shmid, size) of every SysV segment in the host's IPC namespace."""
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return [(int(line.split()[1]), int(line.split()[3])) for line in lines]


async def test_a_call_cannot_read_or_plant_keys_in_the_users_keyring(sandbox: Sandbox) -> None:
    description = f"funcsmith-test-{uuid.uuid4().hex}"
    with host_key(description, b"hunter2"):
        assert find_key(description) is not None
        read = await run(sandbox, "read_key", description=description)
        assert not read.ok and "hunter2" not in repr(read), read
    planted = f"funcsmith-planted-{uuid.uuid4().hex}"
    result = await run(sandbox, "plant_key", description=planted)
    assert (result.ok, result.error_type) == (False, "PermissionError"), result
    assert find_key(planted) is None


async def test_a_call_cannot_reach_the_hosts_sysv_shared_memory(sandbox: Sandbox) -> None:
    key = 0x46530000 + (os.getpid() & 0xFFFF)
    with host_segment(key, b"hunter2") as address:
        result = await run(sandbox, "shm_steal", key=key)
        assert not result.ok and "hunter2" not in repr(result), result
        assert ctypes.string_at(address, 7) == b"hunter2"


async def test_sysv_segments_of_a_call_die_with_it(sandbox: Sandbox) -> None:
    size = (7 << 20) + 12288  # a size no one else uses
    try:
        result = await run(sandbox, "shm_leave", size=size)
        assert result.ok, result
        assert eventually(lambda: all(s != size for _, s in host_segments()), within_s=10), "the segment outlived it"
    finally:
        for segment, _ in [s for s in host_segments() if s[1] == size]:
            _libc.shmctl(segment, _IPC_RMID, None)


@pytest.fixture
def private_folder() -> Iterator[Path]:
    """A 0700 folder of the test process's user, like the folders agents and daemons keep their sockets in."""
    with tempfile.TemporaryDirectory(prefix="funcsmith-socket-") as folder:
        yield Path(folder)


def unix_paths(folder: Path) -> Iterator[Path]:
    yield folder / "agent.sock"
    if os.access("/run", os.W_OK):
        yield Path("/run") / f"funcsmith-test-{uuid.uuid4().hex[:8]}.sock"


async def test_a_call_cannot_connect_to_a_path_named_unix_socket(sandbox: Sandbox, private_folder: Path) -> None:
    for path in unix_paths(private_folder):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(path))
            try:
                os.chmod(path, 0o600)
                server.listen()
                server.settimeout(0.2)
                result = await run(sandbox, "unix_connect", path=str(path))
                assert (result.ok, result.error_type) == (False, "PermissionError"), (path, result)
                with pytest.raises(TimeoutError):
                    server.accept()
            finally:
                path.unlink()


async def test_a_socketpair_cannot_send_to_a_path_named_unix_socket(sandbox: Sandbox, private_folder: Path) -> None:
    path = private_folder / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        os.chmod(path, 0o600)
        server.settimeout(0.2)
        result = await run(sandbox, "unix_sendto", path=str(path))
        assert (result.ok, result.error_type) == (False, "PermissionError"), result
        with pytest.raises(TimeoutError):
            server.recv(16)


async def test_a_socketpair_inside_the_call_still_works(sandbox: Sandbox) -> None:
    result = await run(sandbox, "talk_over_socketpair")
    assert (result.ok, result.value) == (True, "ping"), result


async def test_syscalls_no_function_needs_are_refused_with_eperm(sandbox: Sandbox) -> None:
    result = await run(sandbox, "forbidden_syscalls")
    assert result.ok, result
    assert {name: code for name, code in result.value.items() if code != errno.EPERM} == {}
    working = await run(sandbox, "threads_and_forks_work")
    assert (working.ok, working.value) == (True, ["thread", 7]), working


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="calls run as another user only when the server is root")


@root_only
async def test_calls_of_a_root_server_do_not_run_as_root(sandbox: Sandbox) -> None:
    result = await run(sandbox, "identity")
    assert result.ok, result
    assert 0 not in (result.value["uid"], result.value["euid"], result.value["gid"]), result
    assert result.value["groups"] == []


@root_only
async def test_a_root_only_file_stays_out_of_reach_where_a_grant_lets_the_call_in(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    (shared / "public.txt").write_text("public")
    (shared / "secret.txt").write_text("hunter2")
    os.chmod(shared / "secret.txt", 0o600)
    grant = SandboxGrant(read_paths=(str(shared),))
    public = await run(sandbox, "read_file", grant=grant, path=str(shared / "public.txt"))
    secret = await run(sandbox, "read_file", grant=grant, path=str(shared / "secret.txt"))
    assert (public.ok, public.value) == (True, "public"), public
    assert secret.error_type == "PermissionError" and "hunter2" not in repr(secret), secret
    assert "sandbox_problems" not in secret.details, secret


@root_only
async def test_a_grant_the_call_user_cannot_use_is_reported(sandbox: Sandbox, tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    result = await run(sandbox, "list_dir", grant=SandboxGrant(write_paths=(str(closed),)), path=str(closed))
    assert result.error_type == "PermissionError", result
    problem = f"granted path {closed} is not writable by the call user (uid 65534): give it to that user"
    assert result.details["sandbox_problems"] == [problem], result


@root_only
async def test_a_grant_inside_a_grant_behind_a_closed_folder_is_reachable(sandbox: Sandbox, tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    inner = outer / "closed" / "inner"
    inner.mkdir(parents=True)
    os.chmod(outer, 0o755)
    os.chmod(outer / "closed", 0o700)
    os.chmod(inner, 0o755)
    (outer / "top.txt").write_text("top")
    (inner / "deep.txt").write_text("deep")
    grant = SandboxGrant(read_paths=(str(outer), str(inner)))
    top = await run(sandbox, "read_file", grant=grant, path=str(outer / "top.txt"))
    deep = await run(sandbox, "read_file", grant=grant, path=str(inner / "deep.txt"))
    assert (top.value, deep.value) == ("top", "deep"), (top, deep)
