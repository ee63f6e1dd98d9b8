"""The README's hand-written function is real: copied out of the README, it checks and answers as shown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.mcp_helpers import ROOT

SECTION = "## Writing a function by hand"


def readme_blocks() -> dict[str, str]:
    """The python and json blocks of the README's hand-written example, by language."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"```(python|json)\n(.*?)```", section, flags=re.S))


def funcsmith(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_server.cli",
            "--functions",
            str(folder),
            "--data-dir",
            str(folder.parent / "d"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_example_checks_and_answers_as_its_examples_say(tmp_path: Path) -> None:
    blocks = readme_blocks()
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "bill.py").write_text(blocks["python"], encoding="utf-8")
    (folder / "bill.json").write_text(blocks["json"], encoding="utf-8")
    spec = json.loads(blocks["json"])

    checked = funcsmith(folder, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    expects_result, expects_error = spec["examples"]
    answered = funcsmith(folder, "call", spec["name"], json.dumps(expects_result["parameters"]))
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout) == expects_result["result"]

    refused = funcsmith(folder, "call", spec["name"], json.dumps(expects_error["parameters"]))
    assert refused.returncode == 1
    assert expects_error["error"] in refused.stderr
