"""The suite's leftovers check sees what a sandbox could leave: a process, a temp folder, a SysV segment."""

from __future__ import annotations

import ctypes
import subprocess
import tempfile
from pathlib import Path

import pytest

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
