"""The suite's leftovers check sees what a sandbox could leave: a process, a temp folder, a SysV segment."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mcp_server.sandbox import temp_prefix
from mcp_server.sandbox._cgroup import controller
from tests.leftovers import Traces

_IPC_PRIVATE, _IPC_CREAT, _IPC_RMID = 0, 0o1000, 0


def test_a_process_a_dead_zygotes_temp_folder_and_an_ipc_segment_are_seen() -> None:
    before = Traces.take()
    libc = ctypes.CDLL(None, use_errno=True)
    segment = libc.shmget(_IPC_PRIVATE, 4096, _IPC_CREAT | 0o600)
    assert segment >= 0, ctypes.get_errno()
    folder = Path(tempfile.mkdtemp(prefix="funcsmith-4194305-"))  # above the largest pid Linux gives: dead
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        left = Traces.take().since(before)
        assert f"ipc shm {segment}" in left
        assert f"temp {folder}" in left
        assert any(line.startswith(f"process {sleeper.pid} sleep") for line in left)
    finally:
        sleeper.kill()
        sleeper.wait()
        folder.rmdir()
        libc.shmctl(segment, _IPC_RMID, None)
    assert Traces.take().since(before) == []


def test_a_dead_zygotes_cgroup_is_seen() -> None:
    before = Traces.take()
    try:
        group = controller("pids") / "funcsmith-4194305"
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"this process may not make a cgroup here: {exc}")
    try:
        assert f"cgroups {group}" in Traces.take().since(before)
    finally:
        group.rmdir()
    assert Traces.take().since(before) == []


def test_a_folder_this_run_made_is_seen_and_one_a_bench_beside_it_made_is_not() -> None:
    """Every funcsmith temp folder names its maker: the run's own counts, a live bench's does not (a
    fresh-clone run with a bench beside it failed on the bench's folder, then named for no process)."""
    before = Traces.take()
    ours = Path(tempfile.mkdtemp(prefix=temp_prefix("check")))
    make = "import sys, tempfile; from mcp_server.sandbox import temp_prefix; "
    make += "print(tempfile.mkdtemp(prefix=temp_prefix('bench')), flush=True); sys.stdin.read()"
    bench = subprocess.Popen([sys.executable, "-c", make], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert bench.stdout is not None and bench.stdin is not None
    theirs = Path(bench.stdout.readline().strip())
    try:
        left = Traces.take().since(before)
        assert f"temp {ours}" in left
        assert theirs.is_dir() and f"temp {theirs}" not in left
    finally:
        bench.stdin.close()  # it reads to the end, then exits
        bench.wait(timeout=60)
        ours.rmdir()
    assert f"temp {theirs}" in Traces.take().since(before)  # its maker is dead now: left behind
    theirs.rmdir()
    assert Traces.take().since(before) == []
