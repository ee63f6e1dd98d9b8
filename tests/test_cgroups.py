"""Per-call cgroups on v1 and v2: delegation from a cgroup with processes, swap, killing a tree, doctor.

The v2 rows skip on a v1 kernel; tests/vm/run-cgroup-v2 runs them in a cgroup v2 guest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_server.sandbox import Limits, Sandbox, _cgroup
from tests.test_sandbox import assert_still_serving, eventually, run


def _home() -> Path | None:
    try:
        return _cgroup.controller("pids")
    except OSError:
        return None


HOME = _home()
V2 = HOME is not None and not (HOME / "tasks").exists()
needs_root = pytest.mark.skipif(os.geteuid() != 0 or HOME is None, reason="needs root and a pids cgroup")
needs_v2 = pytest.mark.skipif(
    os.geteuid() != 0 or not V2,
    reason="needs root on cgroup v2 (this kernel has v1): tests/vm/run-cgroup-v2 runs it in a v2 guest",
)
ROOT = str(Path(__file__).resolve().parents[1])
MEMORY_ON = "a memory cgroup per call: one budget for all its processes, shared memory and memory files"

# In a cgroup of its own with a sleeping sibling (as a shell would be): make call groups, report where things are.
_SERVER = """
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from mcp_server.sandbox import _cgroup, _probe
from mcp_server.sandbox._cgroup import CallGroups
Path(sys.argv[1], "cgroup.procs").write_text(str(os.getpid()))
sibling = subprocess.Popen(["sleep", "60"])
report = {layer.name: [layer.active, layer.detail] for layer in _probe.isolation_report()}
groups = CallGroups.create(f"funcsmith-{os.getpid()}")
slot = groups.acquire()
slot.limit(16, 64)
found = {
    "own": Path("/proc/self/cgroup").read_text().rsplit(":", 1)[1].strip(),
    "sibling": Path(f"/proc/{sibling.pid}/cgroup").read_text().rsplit(":", 1)[1].strip(),
    "memory_base": str(groups.memory_base),
    "memory_error": groups.memory_error,
    "memory_max": (slot.memory / "memory.max").read_text().strip() if slot.memory else None,
    "pids_max": (slot.pids / "pids.max").read_text().strip(),
    "report": report,
}
groups.release(slot)
groups.remove()
sibling.kill()
sibling.wait()
print(json.dumps(found))
"""

_HOPPER = """
import os, sys
open(sys.argv[1], "w").close()
while True:  # each generation forks its successor and exits: a new pid every moment
    try:
        if os.fork():
            os._exit(0)
    except BlockingIOError:  # at pids.max, until the exited ones are reaped
        pass
"""


# The same tree, its orphans reaped at once by a parent outside the slot (as a pid namespace's init
# reaps a call's), so the tree never stops at pids.max with exited generations waiting to be reaped.
_REAPED_HOPPER = """
import ctypes, os, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: every generation's orphan comes here
if os.fork() == 0:
    for procs in sys.argv[2:]:
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
    open(sys.argv[1], "w").close()
    while True:
        try:
            if os.fork():
                os._exit(0)
        except BlockingIOError:
            pass
while True:
    os.wait()
"""


@pytest.fixture
def delegated(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A service-like cgroup `service` below one that hands it the controllers `request.param` names."""
    assert HOME is not None
    for name in ("pids", "memory"):
        _cgroup._enable(HOME, name)
    outer = HOME / f"delegation-test-{os.getpid()}"
    outer.mkdir()
    for name in request.param:
        _cgroup._enable(outer, name)
    service = outer / "service"
    service.mkdir()
    yield service
    for folder in (service / _cgroup.LEAF, service, outer):
        if folder.exists():
            folder.rmdir()


def _serve_in(service: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _SERVER, str(service), ROOT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _relative(folder: Path) -> str:
    return "/" + str(folder.relative_to("/sys/fs/cgroup"))


@needs_v2
@pytest.mark.parametrize("delegated", [("pids", "memory")], indirect=True)
def test_a_server_in_a_cgroup_with_processes_moves_them_to_a_leaf_and_gives_calls_a_budget(delegated: Path) -> None:
    found = _serve_in(delegated)
    leaf = _relative(delegated / _cgroup.LEAF)
    assert (found["own"], found["sibling"]) == (leaf, leaf), found
    assert found["memory_error"] == "", found
    assert found["memory_base"] == str(delegated / f"funcsmith-{found['memory_base'].rsplit('-', 1)[1]}")
    assert (found["memory_max"], found["pids_max"]) == (str(64 << 20), "16"), found
    assert found["report"]["process limit"][0], found["report"]
    assert found["report"]["memory budget"] == [True, MEMORY_ON], found["report"]  # and nothing it lacks


@needs_v2
@pytest.mark.parametrize("delegated", [("pids",)], indirect=True)
def test_without_the_memory_controller_doctor_says_it_is_not_delegated(delegated: Path) -> None:
    found = _serve_in(delegated)
    assert found["memory_base"] == "None" and found["memory_max"] is None, found
    active, detail = found["report"]["memory budget"]
    assert not active and f"the memory controller is not delegated to {delegated}" in detail, detail
    assert found["report"]["process limit"][0], found["report"]


@needs_root
def test_a_slot_is_emptied_of_a_tree_that_keeps_forking(tmp_path: Path) -> None:
    groups = _cgroup.CallGroups.create(f"funcsmith-{os.getpid()}-test")
    try:
        slot = groups.acquire()
        slot.limit(16, 256)
        ready = tmp_path / "ready"
        started = subprocess.Popen([sys.executable, "-c", _HOPPER, str(ready)], preexec_fn=lambda: _cgroup.enter(slot))
        started.wait(timeout=60)  # the first generation, gone once it forked the next
        assert ready.exists() and (slot.pids / "cgroup.procs").read_text().strip()
        groups.release(slot)
        assert groups.free == [slot], "the slot was not emptied"
        assert (slot.pids / "cgroup.procs").read_text() == ""
        if V2:
            assert "populated 0" in (slot.pids / "cgroup.events").read_text()
    finally:
        groups.remove()
    assert not groups.base.exists()


@needs_root
def test_a_slot_is_emptied_of_a_forking_tree_while_the_sweeper_loses_its_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy machine preempts the sweeper between reading a slot's tasks and killing them, and a tree that
    forks its successor meanwhile outruns it (this failed in a test run beside a CPU-bound job). Here each
    read of the task list is followed by a pause: on cgroup v1 only a slot where no task can fork any more
    is emptied. The slot then takes the next call's limit again."""
    groups = _cgroup.CallGroups.create(f"funcsmith-{os.getpid()}-test")
    ready = tmp_path / "ready"
    reaper = None
    try:
        slot = groups.acquire()
        slot.limit(16, 256)
        reaper = subprocess.Popen([sys.executable, "-c", _REAPED_HOPPER, str(ready), *slot.procs])
        assert eventually(ready.exists)
        read = _cgroup._read

        def paused(path: str | Path) -> bytes:
            data = read(path)
            if str(path).endswith("cgroup.procs"):
                time.sleep(0.01)  # time for the tree to fork past the tasks just read
            return data

        monkeypatch.setattr(_cgroup, "_read", paused)
        groups.release(slot)
        monkeypatch.undo()
        assert groups.free == [slot], "the slot was not emptied"
        assert (slot.pids / "cgroup.procs").read_text() == ""
        slot.limit(16, 256)
        assert (slot.pids / "pids.max").read_text().strip() == "16"
    finally:
        monkeypatch.undo()
        if reaper is not None:
            reaper.kill()
            reaper.wait()
        groups.remove()
    assert not groups.base.exists()


_FORKER = """
import os, time
made = 0
for _ in range(20):
    try:
        if os.fork() == 0:
            os.closerange(1, 3)  # the output pipes: their reader waits for the forker alone
            time.sleep(60)
            os._exit(0)
        made += 1
    except BlockingIOError:
        pass
print(made)
"""


@needs_root
def test_pids_max_caps_the_tasks_of_a_slot() -> None:
    groups = _cgroup.CallGroups.create(f"funcsmith-{os.getpid()}-test")
    try:
        slot = groups.acquire()
        slot.limit(8, 256)
        done = subprocess.run(
            [sys.executable, "-c", _FORKER],
            preexec_fn=lambda: _cgroup.enter(slot),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert int(done.stdout) == 7, done  # the forker itself is the eighth task
        groups.release(slot)
        # Its tasks are killed; the slot is reused only if they were gone by then (on a busy machine the
        # release gives up waiting rather than block, and the slot is left for removal).
        assert eventually(lambda: (slot.pids / "cgroup.procs").read_text() == "")
        assert all((free.pids / "cgroup.procs").read_text() == "" for free in groups.free)
    finally:
        groups.remove()


@needs_root
@pytest.mark.skipif(Path("/proc/swaps").read_text().count("\n") < 2, reason="needs swap on (tests/vm/run-cgroup-v2)")
@pytest.mark.anyio
async def test_swap_does_not_stretch_a_calls_memory_budget(tmp_path: Path) -> None:
    limits = Limits(timeout_s=30, cpu_s=30, memory_mb=128)
    async with Sandbox(tmp_path / "data", limits=limits) as box:
        result = await run(box, "memfd_hoard", mib=256)  # memory files: shared memory, which can be swapped out
        assert (result.ok, result.error_type) == (False, "MemoryLimit"), result
        await assert_still_serving(box)


def test_doctor_names_what_a_kernels_cgroups_lack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slot = _cgroup.Slot(tmp_path, tmp_path, v2=True)  # a v2 slot's folder with none of the files
    monkeypatch.setattr(_cgroup, "_swap_on", lambda: True)
    assert _cgroup.gaps(slot) == [
        "swap is not accounted (no memory.swap.max): a call can swap past its budget",
        "no cgroup.kill (Linux 5.14+): what a call leaves is killed one signal at a time",
    ]
    for name in ("memory.swap.max", "cgroup.kill"):
        (tmp_path / name).touch()
    assert _cgroup.gaps(slot) == []
    monkeypatch.setattr(_cgroup, "_swap_on", lambda: False)
    assert _cgroup.gaps(_cgroup.Slot(tmp_path / "v1", tmp_path / "v1")) == []  # no swap: nothing to account
