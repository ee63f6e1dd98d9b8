"""The README is real: its hand-written function, copied out of it, checks and answers as shown, and the
examples its `funcsmith generate` commands give are examples the command takes."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from mcp_server.cli import build_parser, parse_example
from mcp_server.draft import telling
from mcp_server.generate import user_examples_problems
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


def readme_generate_commands() -> list[list[str]]:
    """Every `funcsmith generate` command the README shows, split as a shell would split it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", text, flags=re.S)).replace("\\\n", " ")
    lines = re.findall(r"^\S*funcsmith generate .*$", blocks, flags=re.M)  # in shell blocks, a command a line
    inline = re.findall(r"`(funcsmith generate [^`]*)`", text)  # in the text, a command a code span
    return [shlex.split(command, comments=True) for command in [*lines, *inline] if "--example" in command]


def test_the_readme_examples_of_generate_are_examples_the_command_takes() -> None:
    commands = readme_generate_commands()
    assert len(commands) >= 2  # the quick start's and the troubleshooting item's
    for words in commands:
        examples = [parse_example(text) for text in build_parser().parse_args(words[1:]).example]
        assert user_examples_problems(examples) == [], words
        assert len(examples) >= 2 and telling(examples), words  # as the pipeline needs them to settle a vote
