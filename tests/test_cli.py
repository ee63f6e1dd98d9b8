"""The `funcsmith` command as a person runs it: real processes, real folders."""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_server.cli import Options, build_parser
from mcp_server.generate import Outcome
from tests.calc import CALC_JSON, CALC_PY
from tests.fake_ollama import FakeOllama
from tests.mcp_helpers import ROOT


def funcsmith(
    *args: str, data: Path | None = None, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env_args = ["--data-dir", str(data)] if data else []
    return subprocess.run(
        [sys.executable, "-m", "mcp_server.cli", *env_args, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=180,
    )


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(commands.choices)


def test_every_subcommand_describes_itself_and_each_option() -> None:
    commands = subcommands()
    assert {"serve", "list", "check", "call", "doctor", "generate", "history", "restore", "grant"} <= set(commands)
    for name, sub in commands.items():
        assert sub.description and len(sub.description) > 20, name
        for action in sub._actions:
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings or action.dest}"
    # Each command lists only the shared options it uses.
    assert "--functions" not in commands["doctor"]._option_string_actions
    assert "--attempts" not in commands["call"]._option_string_actions
    top = build_parser()
    assert all(action.help for action in top._actions), [a.dest for a in top._actions if not a.help]
    shown = funcsmith("generate", "--help")
    assert shown.returncode == 0
    assert "--generate-anyway" in shown.stdout and "write a new function even if a similar one exists" in shown.stdout


SHARED = {  # option -> (value on the command line, parsed value)
    "--functions": ("DIR", "DIR"),
    "--data-dir": ("D", "D"),
    "--max-calls": ("4", 4),
    "--model": ("ollama:gemma3:4b", "ollama:gemma3:4b"),
    "--attempts": ("5", 5),
}


@pytest.mark.parametrize("command", ["serve", "generate"])
def test_shared_options_work_before_and_after_the_subcommand(command: str) -> None:
    extra = ["task"] if command == "generate" else []
    given = [item for option, (value, _) in SHARED.items() for item in (option, value)]
    parser = build_parser()
    after = parser.parse_args([command, *extra, *given, "-v"], namespace=Options())
    before = parser.parse_args(["-v", *given, command, *extra], namespace=Options())
    for args in (after, before):
        assert args.verbose == 1
        for option, (_, parsed) in SHARED.items():
            assert getattr(args, option.lstrip("-").replace("-", "_")) == parsed, option
    # Left out anywhere: the defaults, not values a subparser put over them.
    plain = parser.parse_args([command, *extra], namespace=Options())
    assert (plain.functions, plain.data_dir, plain.max_calls, plain.model, plain.attempts, plain.verbose) == (
        None,
        None,
        None,
        None,
        3,
        0,
    )
    # Given before the subcommand only: kept.
    assert parser.parse_args(["--attempts", "7", command, *extra], namespace=Options()).attempts == 7


def test_options_after_the_subcommand_reach_the_command(catalog: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = funcsmith("call", "--functions", str(catalog), "--data-dir", str(data), "divide", '{"a": 1, "b": 8}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"quotient": 0.125}
    assert (data / "calc").is_dir() and not (catalog / ".funcsmith" / "data").exists()
    listed = funcsmith("list", "--functions", str(catalog))
    assert listed.stdout.split()[:2] == ["add", "published"]
    unknown = funcsmith("list", "--max-calls", "3")
    assert unknown.returncode == 2 and "unrecognized arguments: --max-calls" in unknown.stderr


def test_check_passes_on_the_shipped_catalogue() -> None:
    done = funcsmith("check", "functions")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: ")


def test_check_reports_each_problem_and_exits_1(catalog: Path) -> None:
    (catalog / "broken.py").write_text("def broken(x):\n    return x\n")
    (catalog / "broken.json").write_text('{"name": "broken", "description": "x", "parameters": {"type": "object"},}')
    (catalog / "lonely.json").write_text(json.dumps({**CALC_JSON[0], "name": "lonely"}))
    (catalog / "unspecified.py").write_text("def unspecified(x):\n    return x\n")
    done = funcsmith("check", str(catalog))
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3, done.stdout
    assert any("broken.json" in line and "JSON" in line for line in lines)
    assert any("lonely.json" in line and "lonely.py is missing" in line for line in lines)
    assert any("unspecified.py" in line and "unspecified.json is missing" in line for line in lines)
    assert "3 problem(s); 2 function(s) valid" in done.stderr


def test_list_and_list_json(catalog: Path) -> None:
    done = funcsmith("--functions", str(catalog), "list")
    assert done.returncode == 0
    assert done.stdout.split()[:2] == ["add", "published"]
    rows = json.loads(funcsmith("--functions", str(catalog), "list", "--json").stdout)
    assert [(r["name"], r["status"]) for r in rows] == [("add", "published"), ("divide", "published")]


def test_call_prints_json_and_reports_errors(catalog: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = funcsmith("--functions", str(catalog), "call", "divide", '{"a": 1, "b": 8}', data=data)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"quotient": 0.125}
    assert json.loads(funcsmith("--functions", str(catalog), "call", "add", '{"a": 1}', data=data).stdout) == 1

    failed = funcsmith("--functions", str(catalog), "call", "divide", '{"a": 1, "b": 0}', data=data)
    assert failed.returncode == 1
    assert failed.stderr.strip().endswith("DivisionByZero: cannot divide 1 by zero")

    bad = funcsmith("--functions", str(catalog), "call", "add", "{a: 1}")
    assert bad.returncode == 2
    assert "JSON_ARGS is not valid JSON" in bad.stderr and "Traceback" not in bad.stderr

    wrong = funcsmith("--functions", str(catalog), "call", "add", "[1, 2]")
    assert wrong.returncode == 2 and "must be a JSON object" in wrong.stderr

    missing = funcsmith("--functions", str(catalog), "call", "nope", "{}")
    assert missing.returncode == 2 and "no published function named 'nope'" in missing.stderr


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    done = funcsmith("--functions", str(tmp_path / "absent"), "list")
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_grant_edits_only_the_sandbox_field(catalog: Path, tmp_path: Path) -> None:
    done = funcsmith(
        "--functions", str(catalog), "grant", "add", "--network", "--timeout", "30", "--read", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    specs = json.loads((catalog / "calc.json").read_text())
    assert specs[0]["sandbox"] == {"network": True, "read_paths": [str(tmp_path.resolve())], "timeout_s": 30.0}
    assert "sandbox" not in specs[1]
    assert funcsmith("check", str(catalog)).returncode == 0
    funcsmith("--functions", str(catalog), "grant", "add", "--reset")
    assert "sandbox" not in json.loads((catalog / "calc.json").read_text())[0]
    assert funcsmith("--functions", str(catalog), "grant", "add", "--memory", "4").returncode == 2
    quota = funcsmith("--functions", str(catalog), "grant", "add", "--data-quota", "1024", "--data-files", "50000")
    assert quota.returncode == 0, quota.stderr
    assert json.loads((catalog / "calc.json").read_text())[0]["sandbox"] == {"data_quota_mb": 1024, "data_files": 50000}
    assert funcsmith("check", str(catalog)).returncode == 0


def test_history_and_restore(catalog: Path) -> None:
    from mcp_server import history

    kept = history.save_files(catalog, "calc")
    assert kept is not None
    (catalog / "calc.py").write_text(CALC_PY.replace("return a + b", "return a - b"))
    listing = funcsmith("--functions", str(catalog), "history", "calc")
    assert kept.id in listing.stdout
    done = funcsmith("--functions", str(catalog), "restore", "calc")
    assert done.returncode == 0, done.stderr
    assert (catalog / "calc.py").read_text() == CALC_PY
    # The version that was replaced by the restore is kept as well.
    assert len(history.versions(catalog, "calc")) == 2


def test_generate_names_its_own_flags(tmp_path: Path) -> None:
    """A hint printed by the CLI names the CLI's flag; the MCP tool's result keeps the tool's argument name."""
    folder = tmp_path / "functions"
    folder.mkdir()
    for name in ("units.py", "units.json"):
        shutil.copy(ROOT / "functions" / name, folder / name)
    done = funcsmith("generate", "convert units of length", "--functions", str(folder), data=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert "already has a function for this: convert_units" in done.stdout
    assert "--generate-anyway" in done.stdout and "generate_anyway" not in done.stdout
    assert "ask again with generate_anyway" in Outcome(task="convert units", existing=["convert_units"]).summary()


def test_generate_progress_ends_at_100_percent_and_log_lines_stay_out_of_the_bar(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    with FakeOllama(answers=["failing_examples", "failing_examples_fixed"]) as fake:
        done = funcsmith(
            "generate",
            "reverse a string",
            "--functions",
            str(folder),
            "--model",
            "ollama:gemma3:4b",
            "-v",  # attempt 1 fails: its INFO line is logged while the bar is shown
            data=tmp_path / "data",
            env={"OLLAMA_HOST": fake.host},
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("published reverse_string")
    frames = re.split(r"[\r\n]", done.stderr)
    bars = [frame for frame in frames if " attempts [" in frame]
    assert "100%" in bars[-1] and "3.00/3 attempts" in bars[-1], bars[-1]
    logged = [frame for frame in frames if re.search(r"\b(DEBUG|INFO|WARNING|ERROR) [\w.]+: ", frame)]
    assert any("attempt 1/3 failed" in line for line in logged), done.stderr
    for line in logged:  # each log line starts a line of its own, never glued to the bar
        assert re.match(r"(DEBUG|INFO|WARNING|ERROR) ", line), line


def serve_at_terminal(start: list[str], catalog: Path, data: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`funcsmith serve` (started by `python *start`) with a pty as its terminal; the process and the pty's master."""
    master, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, *start, "serve", "--functions", str(catalog), "--data-dir", str(data)],
        env={**os.environ, "FUNCSMITH_EXPOSE": "search"},
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=ROOT,
        start_new_session=True,
    )
    os.close(terminal)
    return proc, master


def read_terminal(master: int, until: str, timeout: float) -> str:
    """What the process wrote to the terminal, until `until` shows up, the terminal closes, or `timeout`."""
    seen = b""
    deadline = time.monotonic() + timeout
    while until.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal is gone
                break
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def test_serve_at_a_terminal_says_how_to_connect_and_stops_on_ctrl_c(catalog: Path, tmp_path: Path) -> None:
    proc, master = serve_at_terminal(["-m", "mcp_server.cli"], catalog, tmp_path)
    try:
        shown = read_terminal(master, "Ctrl-C to stop", timeout=120)
        assert "waiting for an MCP client" in shown, shown
        config = json.loads(shown[shown.index("{") : shown.rindex("}") + 1])
        # The client starts the same server: the exposure set in the environment becomes an option.
        assert config["mcpServers"]["funcsmith"]["args"][-6:] == [
            "--functions",
            str(catalog.resolve()),
            "--data-dir",
            str(tmp_path.resolve()),
            "--expose",
            "search",
        ]
        assert "claude mcp add funcsmith -- " in shown
        # Still an MCP server: a message typed into the terminal is answered.
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        os.write(master, json.dumps(hello).encode() + b"\n")
        assert '"serverInfo"' in read_terminal(master, '"serverInfo"', timeout=60)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends its foreground processes on Ctrl-C
        proc.wait(timeout=60)  # before the fix: a worker thread kept reading the terminal, and it never ended
        shown += read_terminal(master, "\0", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    assert proc.returncode == 130
    assert "Traceback" not in shown, shown


def test_the_ctrl_c_test_holds_in_a_suite_started_in_the_background(tmp_path: Path) -> None:
    """A suite started with `cmd &` or nohup inherits SIGINT ignored; its Ctrl-C test still sees Ctrl-C stop serve
    (before conftest restored the default, the server ignored it and the test waited out its 60 s)."""
    run = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', "
        f"'--basetemp={tmp_path / 'inner'}', '-k', 'stops_on_ctrl_c', 'tests/test_cli.py'])"
    )
    inner = subprocess.run([sys.executable, "-c", run], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert inner.returncode == 0, inner.stdout[-3000:]
    assert "1 passed" in inner.stdout, inner.stdout[-3000:]


# Runs `funcsmith serve ...` as `python -m mcp_server.cli` would, saying "loading" first. A Ctrl-C that lands
# before funcsmith's module runs (in these lines, or runpy's) is no test of funcsmith: it exits 130 quietly
# too; one that escapes from funcsmith's own code (a frame under mcp_server/) says "escaped".
LOADING_THEN_SERVE = """
import runpy, sys, traceback
try:
    sys.argv[0] = "funcsmith"
    print("loading", flush=True)
    runpy.run_module("mcp_server.cli", run_name="__main__", alter_sys=True)
except KeyboardInterrupt as interrupt:
    frames = traceback.extract_tb(interrupt.__traceback__)
    if any("/mcp_server/" in frame.filename for frame in frames):
        print("escaped:", "".join(traceback.format_list(frames)), flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("delay", [0.0, 1.0])
def test_ctrl_c_while_serve_starts_is_quiet(catalog: Path, tmp_path: Path, delay: float) -> None:
    """Start-up takes seconds on a busy machine (imports alone); Ctrl-C meanwhile ends serve quietly."""
    proc, master = serve_at_terminal(["-c", LOADING_THEN_SERVE], catalog, tmp_path)
    try:
        shown = read_terminal(master, "loading", timeout=60)
        assert "loading" in shown, shown
        time.sleep(delay)  # not a race: loading or already serving, the outcome must be the same
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        shown += read_terminal(master, "\0", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    assert proc.returncode == 130, shown
    assert "Traceback" not in shown and "escaped" not in shown, shown
