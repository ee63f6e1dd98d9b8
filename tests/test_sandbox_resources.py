"""One budget per call, cleanup that cannot be broken, and a server that never waits on a stuck sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server.sandbox import Limits, Sandbox, SandboxGrant, _cgroup
from mcp_server.sandbox._cleanup import remove_tree
from tests.test_sandbox import LIMITS, assert_still_serving, eventually, no_call_processes, run, sandbox_processes

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def zygote_pids(data_root: Path) -> set[int]:
    return {pid for pid, ppid in sandbox_processes(data_root) if ppid == os.getpid()}


def cold(folder: Path) -> SandboxGrant:
    """A grant that sends a call down the cold path (the zygote forks it for its request)."""
    return SandboxGrant(read_paths=(str(folder),))


def left_behind(zygotes: set[int]) -> list[str]:
    """What the zygotes `zygotes` left: processes, scratch folders, pids and memory cgroups, mounts."""
    found = [str(pid) for pid in zygotes if Path(f"/proc/{pid}").exists()]
    for pid in zygotes:
        found += map(str, Path(tempfile.gettempdir()).glob(f"funcsmith-{pid}-*"))
        for controller in ("pids", "memory"):
            found += map(str, _cgroup.controller(controller).glob(f"funcsmith-{pid}"))
    found += [line for line in Path("/proc/self/mounts").read_text().splitlines() if "funcsmith" in line]
    return found


@asynccontextmanager
async def leaving_nothing(data_root: Path, limits: Limits, **options: Any) -> AsyncIterator[Sandbox]:
    async with Sandbox(data_root, limits=limits, **options) as box:
        yield box
        zygotes = zygote_pids(data_root)
    assert not sandbox_processes(data_root)
    assert not left_behind(zygotes)


@pytest.fixture(scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    async with leaving_nothing(tmp_path_factory.mktemp("resources-data").resolve(), LIMITS) as box:
        yield box


@pytest.fixture
async def roomy(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """A sandbox with the default memory budget and room on the clocks, so only the budget can stop a call."""
    async with leaving_nothing(tmp_path / "data", Limits(timeout_s=15, cpu_s=15)) as box:
        yield box


@pytest.mark.parametrize("path", ["pooled", "cold"])
async def test_memory_of_every_process_of_a_call_is_one_budget(roomy: Sandbox, tmp_path: Path, path: str) -> None:
    grant = cold(tmp_path) if path == "cold" else None
    result = await run(roomy, "memory_in_children", grant=grant, children=6, mib=450)
    assert (result.ok, result.error_type, result.sandbox_error) == (False, "MemoryLimit", True), result
    assert "512 MiB" in result.error_message, result
    assert no_call_processes(roomy.data_root)
    await assert_still_serving(roomy)


async def test_spawn_mode_has_the_same_memory_budget(tmp_path: Path) -> None:
    async with Sandbox(tmp_path / "data", limits=Limits(timeout_s=15, cpu_s=15), start="spawn") as box:
        for function, arguments in (
            ("memory_in_children", {"children": 6, "mib": 450}),
            ("memfd_hoard", {"mib": 1536}),
        ):
            result = await run(box, function, **arguments)
            assert (result.ok, result.error_type) == (False, "MemoryLimit"), result
        await assert_still_serving(box)


async def test_a_memory_file_counts_against_the_budget(roomy: Sandbox) -> None:
    result = await run(roomy, "memfd_hoard", mib=1536)
    assert (result.ok, result.error_type) == (False, "MemoryLimit"), result
    await assert_still_serving(roomy)


async def test_a_call_that_replies_early_keeps_its_slot_until_its_tree_is_dead(tmp_path: Path) -> None:
    data_root = (tmp_path / "data").resolve()
    heartbeat = data_root / "hostile" / "heartbeat"
    async with Sandbox(data_root, limits=LIMITS, max_concurrency=1) as box:
        with anyio.fail_after(30):
            while not box._zygotes[False].pool:  # only a pooled call process holds the call's socket
                await anyio.sleep(0.01)
        early = await run(box, "reply_early_and_linger", heartbeat=str(heartbeat))
        assert (early.ok, early.value) == (True, "early"), early  # it was served from the pool
        second = await run(box, "now")
        beats = [float(line) for line in heartbeat.read_text().split()]
        assert beats and second.value > beats[-1], "a second call ran while the first was still running"


async def test_the_temp_folder_has_a_file_count_limit(tmp_path: Path) -> None:
    async with Sandbox(tmp_path / "data", limits=dataclasses.replace(LIMITS, timeout_s=20, cpu_s=20)) as box:
        result = await run(box, "fill_temp", files=200_000)
        assert (result.ok, result.error_type, result.sandbox_error) == (False, "TempLimit", True), result
        assert f"{LIMITS.tmp_files} files" in result.error_message, result
        await assert_still_serving(box)


async def test_the_temp_folder_has_a_size_limit(sandbox: Sandbox) -> None:
    result = await run(sandbox, "fill_temp", files=100, size_kib=3 << 10)  # 300 MiB in files of 3 MiB
    assert (result.ok, result.error_type, result.sandbox_error) == (False, "TempLimit", True), result
    assert f"{LIMITS.tmp_mb} MiB" in result.error_message, result
    await assert_still_serving(sandbox)


async def test_a_deep_folder_chain_left_in_the_temp_folder_is_cleaned_up(roomy: Sandbox, tmp_path: Path) -> None:
    zygotes = zygote_pids(roomy.data_root)
    for grant in (None, cold(tmp_path)):
        result = await run(roomy, "deep_chain", grant=grant, depth=3000, where="tmp")
        assert (result.ok, result.value) == (True, 3000), result
        await assert_still_serving(roomy)
    assert zygote_pids(roomy.data_root) == zygotes, "the zygote died and was replaced"


async def timed(box: Sandbox, grant: SandboxGrant) -> float:
    started = time.monotonic()
    result = await run(box, "add", grant=grant, a=1, b=2)
    assert result.value == 3, result
    return time.monotonic() - started


async def test_200k_files_left_in_the_temp_folder_do_not_hold_up_other_calls(tmp_path: Path) -> None:
    limits = dataclasses.replace(LIMITS, timeout_s=120, cpu_s=120, tmp_files=250_000)
    async with leaving_nothing(tmp_path / "data", limits, pool_size=0) as box:
        base = max([await timed(box, cold(tmp_path)) for _ in range(3)])
        result = await run(box, "fill_temp", files=200_000)
        assert (result.ok, result.value) == (True, 200_000), result
        waits = [await timed(box, cold(tmp_path)) for _ in range(5)]  # cold calls: each needs the zygote
    assert max(waits) < max(1.5, 10 * base), f"calls waited {max(waits):.2f} s after a big cleanup"


def chain(top: Path, depth: int) -> None:
    """Make a `depth`-deep folder chain under `top` (relative steps: its full path is far beyond PATH_MAX)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)


async def test_a_replacement_zygote_removes_a_dead_ones_leftovers_and_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the sandbox's scratch root: no other sandbox's
    gone = subprocess.Popen(["true"])
    gone.wait()
    leftover = tmp_path / f"funcsmith-{gone.pid}-leftover"
    (leftover / "call-1").mkdir(parents=True)
    try:
        chain(leftover / "call-1", 3000)
        for i in range(20_000):
            (leftover / "call-1" / f"f{i}").touch()
        data_root = (tmp_path / "data").resolve()
        async with leaving_nothing(data_root, LIMITS) as box:
            assert box.start == "fork", "the zygote did not start"
            await assert_still_serving(box)
            zygote = next(iter(zygote_pids(data_root)))
            os.kill(zygote, signal.SIGKILL)  # and its replacement meets the same leftovers, if any are still there
            assert eventually(lambda: zygote not in zygote_pids(data_root))
            await assert_still_serving(box)
            removed = eventually(lambda: not leftover.exists() and not list(tmp_path.glob("*/stale-*")), within_s=120)
            assert removed, "the leftovers were not removed"
    finally:  # a deep chain must not outlive a failure: pytest's own cleanup of tmp_path cannot remove it
        for folder in tmp_path.glob("funcsmith-*"):
            remove_tree(folder)


@pytest.mark.parametrize("path", ["pooled", "cold"])
async def test_a_call_right_after_the_zygote_died_is_served_by_its_replacement(tmp_path: Path, path: str) -> None:
    """The call comes once the zygote is dead but before the server has noticed: its request goes to a pooled
    process on its way out, or to the dead zygote's socket, and is never taken; it is sent anew, to a new zygote."""
    data_root = (tmp_path / "data").resolve()
    grant = cold(tmp_path) if path == "cold" else None
    async with leaving_nothing(data_root, LIMITS) as box:
        for attempt in range(8):
            await assert_still_serving(box)
            (zygote,) = zygote_pids(data_root)
            os.kill(zygote, signal.SIGKILL)
            assert eventually(lambda dead=zygote: dead not in zygote_pids(data_root))  # the loop has not reaped it
            result = await run(box, "add", grant=grant, a=2, b=3)
            assert (result.ok, result.value) == (True, 5), (attempt, result)


async def test_a_stuck_supervisor_neither_freezes_the_server_nor_passes_for_a_timeout(tmp_path: Path) -> None:
    data_root = (tmp_path / "data").resolve()
    async with Sandbox(data_root, limits=dataclasses.replace(LIMITS, timeout_s=1), pool_size=0) as box:
        await assert_still_serving(box)
        (zygote,) = zygote_pids(data_root)
        lags: list[float] = []

        async def ticker() -> None:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic() - before)

        ticking = asyncio.create_task(ticker())
        os.kill(zygote, signal.SIGSTOP)
        try:
            result = await run(box, "add", a=1, b=2)
        finally:
            os.kill(zygote, signal.SIGCONT)
            ticking.cancel()
        assert (result.ok, result.error_type, result.sandbox_error) == (False, "NotStarted", True), result
        assert "could not start the call" in result.error_message, result
        assert max(lags) < 1.0, f"the event loop stalled for {max(lags):.2f} s"
        await assert_still_serving(box)


async def test_the_wall_clock_before_the_cpu_limit_is_a_timeout_naming_both(sandbox: Sandbox) -> None:
    box_limits = dataclasses.replace(LIMITS, timeout_s=1.0, cpu_s=30)
    async with Sandbox(sandbox.data_root, limits=box_limits) as box:
        result = await run(box, "sleep_forever")
    assert (result.ok, result.error_type) == (False, "Timeout"), result
    assert "1 s of wall-clock time" in result.error_message and "of its 30 s of CPU time" in result.error_message
    assert result.details["limit_s"] == 1.0 and result.details["cpu_limit_s"] == 30


def usage(folder: Path) -> tuple[int, int]:
    """(bytes on disk, files and folders) under `folder`."""
    sizes = [p.lstat().st_blocks * 512 for p in folder.rglob("*")]
    return sum(sizes), len(sizes)


async def test_a_data_folder_has_a_size_quota_and_what_it_held_stays(tmp_path: Path) -> None:
    data_root = (tmp_path / "data").resolve()
    limits = Limits(timeout_s=60, cpu_s=60)  # the default quota: 256 MiB, 10,000 files
    async with Sandbox(data_root, limits=limits) as box:
        assert (await run(box, "save", key="kept", value="before")).ok
        attempt = await run(box, "fill_data", files=30, size_kib=64 << 10, name="big")  # 1.9 GB
        assert (attempt.ok, attempt.error_type, attempt.sandbox_error) == (False, "DataQuota", True), attempt
        assert "256 MiB" in attempt.error_message, attempt
        held, _ = usage(data_root / "hostile")
        assert held < 2 * 256 << 20, f"the folder holds {held >> 20} MiB"
        assert (await run(box, "load", key="kept")).value == "before"
        again = await run(box, "save", key="more", value="after")
        assert (again.ok, again.error_type) == (False, "DataQuota"), again
        assert "is full" in again.error_message, again
        assert (await run(box, "load", key="kept")).value == "before"
        raised = await run(box, "save", grant=SandboxGrant(data_quota_mb=4096), key="more", value="after")
        assert raised.ok, raised


async def test_a_data_folder_has_a_file_count_quota(tmp_path: Path) -> None:
    data_root = (tmp_path / "data").resolve()
    async with Sandbox(data_root, limits=Limits(timeout_s=60, cpu_s=60)) as box:
        assert (await run(box, "save", key="kept", value="before")).ok
        attempt = await run(box, "fill_data", files=20_000, size_kib=0, name="many")
        assert (attempt.ok, attempt.error_type) == (False, "DataQuota"), attempt
        assert "10000 files" in attempt.error_message, attempt
        _, files = usage(data_root / "hostile")
        assert files < 20_000
        assert (await run(box, "fill_data", files=1, size_kib=0, name="one")).error_type == "DataQuota"
        assert (await run(box, "load", key="kept")).value == "before"
