"""The `funcsmith` command as a person runs it: real processes, real folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.calc import CALC_JSON, CALC_PY
from tests.mcp_helpers import ROOT


def funcsmith(*args: str, data: Path | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env_args = ["--data-dir", str(data)] if data else []
    return subprocess.run(
        [sys.executable, "-m", "mcp_server.cli", *env_args, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_check_passes_on_the_shipped_catalogue() -> None:
    done = funcsmith("check", "functions")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: ")


def test_check_reports_each_problem_and_exits_1(catalog: Path) -> None:
    (catalog / "broken.py").write_text("def broken(x):\n    return x\n")
    (catalog / "broken.json").write_text('{"name": "broken", "description": "x", "parameters": {"type": "object"},}')
    (catalog / "lonely.json").write_text(json.dumps({**CALC_JSON[0], "name": "lonely"}))
    done = funcsmith("check", str(catalog))
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stdout
    assert any("broken.json" in line and "JSON" in line for line in lines)
    assert any("lonely" in line for line in lines)
    assert "2 problem(s); 2 function(s) valid" in done.stderr


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
