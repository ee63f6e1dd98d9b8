"""A root server without CAP_SYS_ADMIN (Docker's default capabilities): calls run with the layers left, or are
refused as NotStarted naming what is missing; `doctor` says which layers are off and why.

Each case runs a real Sandbox in a root process whose capability sets lack CAP_SYS_ADMIN (setpriv), under
the system's Python, which the call user can reach without a mount view.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pyseccomp
import pytest

from mcp_server.sandbox._probe import ROOT

SYSTEM_PYTHON = "/usr/bin/python3.11"
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="simulates a root server: needs root"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to drop capabilities"),
    pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"needs {SYSTEM_PYTHON}, reachable by uid 65534"),
]
SCRIPT = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from mcp_server.sandbox import Sandbox, isolation_report
SOURCE = "import os\\ndef whoami():\\n    open('f', 'w').write('x')\\n    return [os.getuid(), os.stat('f').st_uid]"

async def main():
    async with Sandbox(Path(sys.argv[2]), pool_size=int(sys.argv[3])) as box:
        call = dict(module="m", source=SOURCE, filename="/m.py", function="whoami", arguments={})
        results = [await box.call(**call) for _ in range(3)]
    layers = {layer.name: [layer.active, layer.detail] for layer in isolation_report()}
    print(json.dumps({"results": [[r.ok, r.value, r.error_type, r.error_message] for r in results], "layers": layers}))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def python() -> Iterator[str]:
    """A Python the call user can reach with no mount view: a venv of the system's, with the sandbox's
    dependencies (this test's own interpreter may live under a folder closed to other users, like /root)."""
    folder = Path(tempfile.mkdtemp(prefix="funcsmith-test-venv-"))
    folder.chmod(0o755)
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    (site,) = folder.glob("lib/python3*/site-packages")
    shutil.copytree(Path(msgspec.__file__).parent, site / "msgspec")
    shutil.copy(pyseccomp.__file__, site)
    yield str(folder / "bin" / "python")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user may pass (pytest's own temp root is closed to other users)."""
    folder = Path(tempfile.mkdtemp(prefix="funcsmith-test-open-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_without(python: str, data_root: Path, *caps: str, pool_size: int = 2) -> dict:
    """Run SCRIPT as root without the capabilities `caps`, under `python`; what it found."""
    dropped = ",".join(f"-{cap}" for cap in caps)
    command = ["setpriv", f"--bounding-set={dropped}", f"--inh-caps={dropped}", python, "-I", "-c", SCRIPT]
    done = subprocess.run(
        [*command, ROOT, str(data_root), str(pool_size)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("pool_size", [0, 2])
def test_calls_run_as_the_call_user_with_the_layers_left(python: str, open_folder: Path, pool_size: int) -> None:
    found = run_without(python, open_folder / "data", "sys_admin", pool_size=pool_size)
    assert found["results"] == [[True, [65534, 65534], None, None]] * 3, found
    layers = found["layers"]
    for name in ("rlimits", "process limit", "landlock filesystem", "seccomp filter", "capabilities", "not root"):
        assert layers[name][0], (name, layers[name])
    for name in ("process-tree kill", "temp folder limit", "network namespace", "ipc namespace"):
        assert not layers[name][0] and "CAP_SYS_ADMIN" in layers[name][1], (name, layers[name])
    assert "no mount view" in layers["not root"][1], layers["not root"]


def test_a_folder_closed_to_the_call_user_refuses_calls_naming_the_fix(python: str, open_folder: Path) -> None:
    closed = open_folder / "closed"
    closed.mkdir(mode=0o700)
    found = run_without(python, closed / "data", "sys_admin")
    for ok, _, error_type, message in found["results"]:
        assert (ok, error_type) == (False, "NotStarted"), found
        assert f"{closed} is closed to the call user" in message and "CAP_SYS_ADMIN" in message, message


def test_without_setuid_calls_are_refused_naming_the_capability(python: str, open_folder: Path) -> None:
    found = run_without(python, open_folder / "data", "sys_admin", "setuid")
    for ok, _, error_type, message in found["results"]:
        assert (ok, error_type) == (False, "NotStarted"), found
        assert "CAP_SETUID" in message, message
    assert not found["layers"]["not root"][0] and "CAP_SETUID" in found["layers"]["not root"][1], found


def test_the_layers_come_back_with_every_capability(python: str, open_folder: Path) -> None:
    """The control: the same script with CAP_SYS_ADMIN has every namespace layer on."""
    found = run_without(python, open_folder / "data", "sys_module")
    assert found["results"] == [[True, [65534, 65534], None, None]] * 3, found
    for name in ("process-tree kill", "temp folder limit", "network namespace", "ipc namespace", "not root"):
        assert found["layers"][name][0], (name, found["layers"][name])
