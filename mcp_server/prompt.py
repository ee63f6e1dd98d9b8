"""What we ask the model: a chat prompt for instruction-tuned models and a few-shot completion for base models.

Both ask for the same answer format (one ```python block, one ```function_spec block per
function), which `mcp_server.parse` reads back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Where a base model's continuation should be cut: it goes on to invent the next example.
COMPLETION_STOP: tuple[str, ...] = ("\nTask:",)

_RULES = """\
You write Python functions that are served as tools. Rules for the code:
- Python 3 only, standard library only unless a package is essential.
- Plain top-level functions with type hints and a docstring. No classes as the interface, no scripts.
- Return values; never print them.
- On bad input or failure, raise a custom exception (a class defined in the same code, with a clear \
name like NegativeAmountError and a docstring) with a clear message. Never print or swallow errors.
- Nothing at module level except imports, constants, exception classes and functions: no example \
calls, no tests, no `if __name__ == "__main__":`.
- To keep data between calls, store it with pickle or JSON files under `~/data/` \
(`os.path.expanduser("~/data")`, create it if needed)."""

_FORMAT = """\
Answer format: exactly one ```python block with all the code, then one ```function_spec block per \
public function holding its JSON specification (strict JSON: double quotes, no comments, no trailing \
commas). Fields of a specification:
- "name": the function's name in the code.
- "description": what it does and when to call it, for a model picking a tool.
- "parameters": a JSON Schema {"type": "object", "properties": {<param>: {"type": ..., \
"description": ...}}, "required": [<params without defaults>]}; one property per parameter, same names.
- "responses": a list of JSON Schemas, one for each shape the return value can take.
- "errors": a list of {"name": <exception class>, "description": <when it is raised>}.
- "examples": a list of {"prompt": <a person's request>, "parameters": {<arguments>}, "result": \
<the exact return value>} or, for a call that must fail, "error": <exception class> instead of \
"result". Examples are executed to check the function, so every result must be exactly right."""

_REPAIR = (
    "Your previous answer had these problems:\n{problems}\nAnswer again with the complete corrected code and specs."
)


@dataclass(frozen=True, slots=True)
class Prompt:
    """One request in both forms; the backend picks the form its model understands."""

    messages: tuple[Mapping[str, str], ...]
    completion: str


@dataclass(frozen=True, slots=True)
class _Example:
    task: str
    code: str
    specs: tuple[dict[str, Any], ...]


def _spec(
    name: str,
    description: str,
    params: Mapping[str, tuple[str, str]],
    response: str,
    examples: Sequence[tuple[str, dict[str, Any], str, Any]],
    errors: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A spec in the regular shape the examples share.

    params map a name to (JSON type, description); examples are (prompt, arguments, "result" or
    "error", expected value).
    """
    spec: dict[str, Any] = {
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": {p: {"type": t, "description": d} for p, (t, d) in params.items()},
            "required": list(params),
        },
        "responses": [{"type": response}],
    }
    if errors:
        spec["errors"] = [{"name": n, "description": d} for n, d in errors]
    spec["examples"] = [
        {"prompt": prompt, "parameters": args, outcome: expected} for prompt, args, outcome, expected in examples
    ]
    return spec


_FEW_SHOT: tuple[_Example, ...] = (
    _Example(
        "multiply two numbers x and y",
        'def multiply(x: float, y: float) -> float:\n    """Multiply x by y."""\n    return x * y\n',
        (
            _spec(
                "multiply",
                "Multiply two numbers.",
                {"x": ("number", "The first number."), "y": ("number", "The second number.")},
                "number",
                [
                    ("What is 6 times 7?", {"x": 6, "y": 7}, "result", 42),
                    ("Multiply 2.5 by 4", {"x": 2.5, "y": 4}, "result", 10.0),
                ],
            ),
        ),
    ),
    _Example(
        "make a string upper case",
        'def to_upper(text: str) -> str:\n    """Return the text in upper case."""\n    return text.upper()\n',
        (
            _spec(
                "to_upper",
                "Convert a text to upper case.",
                {"text": ("string", "The text to convert.")},
                "string",
                [("Make 'hello' upper case", {"text": "hello"}, "result", "HELLO")],
            ),
        ),
    ),
    _Example(
        "convert kilometres to miles",
        'def km_to_miles(km: float) -> float:\n    """Convert kilometres to miles."""\n'
        "    return round(km * 0.621371, 3)\n",
        (
            _spec(
                "km_to_miles",
                "Convert a distance in kilometres to miles, rounded to 3 decimals.",
                {"km": ("number", "The distance in kilometres.")},
                "number",
                [
                    ("How many miles is 10 km?", {"km": 10}, "result", 6.214),
                    ("5 km in miles", {"km": 5}, "result", 3.107),
                ],
            ),
        ),
    ),
    _Example(
        "count the vowels in a text",
        'def count_vowels(text: str) -> int:\n    """Count the vowels in the text."""\n'
        '    return sum(1 for char in text.lower() if char in "aeiou")\n',
        (
            _spec(
                "count_vowels",
                "Count the vowels (a, e, i, o, u) in a text.",
                {"text": ("string", "The text to look at.")},
                "integer",
                [("How many vowels are in 'banana'?", {"text": "banana"}, "result", 3)],
            ),
        ),
    ),
)

_WORKED = _Example(
    "convert kilometres to miles, refusing negative distances",
    "class NegativeDistanceError(Exception):\n"
    '    """The distance given is below zero."""\n\n\n'
    "def km_to_miles(km: float) -> float:\n"
    '    """Convert kilometres to miles, rounded to 3 decimals."""\n'
    "    if km < 0:\n"
    '        raise NegativeDistanceError(f"distance must not be negative, got {km} km")\n'
    "    return round(km * 0.621371, 3)\n",
    (
        _spec(
            "km_to_miles",
            "Convert a distance in kilometres to miles, rounded to 3 decimals.",
            {"km": ("number", "The distance in kilometres, at least 0.")},
            "number",
            [
                ("How many miles is 10 km?", {"km": 10}, "result", 6.214),
                ("Convert -1 km to miles", {"km": -1}, "error", "NegativeDistanceError"),
            ],
            errors=[("NegativeDistanceError", "The distance given is below zero.")],
        ),
    ),
)


def _render_spec(spec: Mapping[str, Any]) -> str:
    """Strict JSON, one field per line and one list item per line: short, and regular enough to copy."""
    fields = []
    for key, value in spec.items():
        if isinstance(value, list) and len(value) > 1:
            items = ",\n".join(f"    {json.dumps(item)}" for item in value)
            fields.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
        else:
            fields.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(fields) + "\n}"


def _answer(example: _Example) -> str:
    """The perfect answer to an example task, in the format we parse."""
    specs = "".join(f"```function_spec\n{_render_spec(spec)}\n```\n" for spec in example.specs)
    return f"```python\n{example.code}```\n\n{specs}"


def _system() -> str:
    worked = f"Task: {_WORKED.task}\n\n{_answer(_WORKED)}"
    return f"{_RULES}\n\n{_FORMAT}\n\nExample answer:\n\n{worked}"


def build_prompt(task: str, *, feedback: Sequence[str] = (), previous_answer: str | None = None) -> Prompt:
    """The prompt for a task; with feedback (and the previous answer) it asks for a corrected answer."""
    task = task.strip()
    messages: list[Mapping[str, str]] = [
        {"role": "system", "content": _system()},
        {"role": "user", "content": f"Task: {task}"},
    ]
    if previous_answer is not None:
        messages.append({"role": "assistant", "content": previous_answer})
    if feedback or previous_answer is not None:
        problems = "\n".join(f"- {problem}" for problem in feedback) or "- it could not be used"
        messages.append({"role": "user", "content": _REPAIR.format(problems=problems)})
    shots = "".join(f"Task: {example.task}\n{_answer(example)}\n" for example in _FEW_SHOT)
    note = f"Avoid: {'; '.join(feedback)[:200]}\n" if feedback else ""
    completion = f"{shots}Task: {task}\n{note}```python\n"
    return Prompt(messages=tuple(messages), completion=completion)
