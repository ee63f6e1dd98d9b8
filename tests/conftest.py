"""Shared test setup: async tests run on anyio's asyncio backend, like the server."""

import json
import signal
import time
from pathlib import Path

import pytest

from mcp_server.models.llamacpp_backend import missing_embedded
from tests.calc import CALC_JSON, CALC_PY
from tests.leftovers import Traces
from tests.nodejs import Node, install

_BEFORE = pytest.StashKey[Traces]()
_EXIT_WAIT_S = 30.0  # how long processes still ending when the last test is done may take


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = Traces.take()
    # A suite started in the background (`cmd &`, nohup) inherits SIGINT ignored, and so would every server it
    # starts, which the Ctrl-C tests then wait on forever. Python's own foreground default puts it back: the
    # children, like a terminal's foreground job, start with SIGINT at its default.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite must leave no process, cgroup, mount, IPC object or temp folder of a sandbox behind."""
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    deadline = time.monotonic() + _EXIT_WAIT_S
    while (left := Traces.take().since(before)) and time.monotonic() < deadline:
        time.sleep(0.1)  # a process tree still exiting, or its cleanup still running
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["the suite left these behind:", *(f"  {line}" for line in left)]
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `embedded` need the embedded extra: without it they are skipped, saying what to install."""
    missing = missing_embedded()
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"needs {', '.join(missing)}: pip install 'funcsmith[embedded]'")
    for item in items:
        if item.get_closest_marker("embedded") is not None:
            item.add_marker(skip)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A functions folder holding the calc module (add, divide)."""
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "calc.py").write_text(CALC_PY)
    (folder / "calc.json").write_text(json.dumps(CALC_JSON))
    return folder


@pytest.fixture(scope="session")
def node() -> Node:
    """Node with the TypeScript MCP SDK and the conformance suite, installed once (see tests/nodejs.py)."""
    return install()
