"""Shared test setup: async tests run on anyio's asyncio backend, like the server."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
