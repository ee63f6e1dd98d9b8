"""What serving costs at start: it imports nothing that only writing a function needs.

Importing the model clients, the property checker and the progress bar took about half a
second of a start; serving needs none of them until a function is generated.
"""

import json
import subprocess
import sys
from pathlib import Path

from tests.mcp_helpers import ROOT, server_env

# The top-level packages of generation alone: model clients, the embedded runtime, property checks,
# the command line's progress bar.
GENERATION_ONLY = frozenset({"ollama", "openai", "llama_cpp", "hypothesis", "hypothesis_jsonschema", "tqdm"})


def imported(importtime: str) -> set[str]:
    """The modules a `python -X importtime` run imported, from its stderr."""
    names = set()
    for line in importtime.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    return names


def test_serving_over_stdio_imports_no_generation_stack(catalog: Path, tmp_path: Path) -> None:
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": hello,
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    server = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "mcp_server.cli", "serve", "--functions", str(catalog)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=server_env(tmp_path / "data"),
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write("".join(json.dumps(r) + "\n" for r in requests))
    server.stdin.flush()
    listed = None
    for line in server.stdout:
        message = json.loads(line)
        if message.get("id") == 2:
            listed = message
            break
    _, stderr = server.communicate(timeout=120)  # stdin closes: the server ends
    assert listed is not None, stderr
    assert {"add", "divide"} <= {tool["name"] for tool in listed["result"]["tools"]}, listed
    names = imported(stderr)
    assert "mcp_server.server" in names, stderr[-2000:]
    generation = sorted(n for n in names if n.partition(".")[0] in GENERATION_ONLY)
    assert not generation, f"serving imported {', '.join(generation)}"
