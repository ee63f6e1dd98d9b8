"""Shared test setup: async tests run on anyio's asyncio backend, like the server."""

import json
from pathlib import Path

import pytest

from tests.calc import CALC_JSON, CALC_PY
from tests.nodejs import Node, install


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
