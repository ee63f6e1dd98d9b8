"""What we ask the model: a chat prompt for instruction-tuned models and a few-shot completion for base models.

Both ask for the same answer format (one ```python block, one ```function_spec block per
function), which `mcp_server.parse` reads back.
"""

from __future__ import annotations

import json
import re
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

_TASK = "Task: "
_EXAMPLE_LINE = re.compile(r"example \d+ of \w+: ")
_WRONG_RESULT = "an example result did not match the code"
_AVOID = "Avoid: "

_REPAIR = (
    "Your previous answer had these problems:\n{problems}\nAnswer again with the complete corrected code and specs."
)


@dataclass(frozen=True, slots=True)
class Prompt:
    """One request in both forms; the backend picks the form its model understands."""

    messages: tuple[Mapping[str, str], ...]
    completion: str
    # The same completion with its few-shot tasks in other orders: a base model's greedy answer changes
    # with the order, so each is one more independent candidate without sampling's broken code.
    reordered: tuple[str, ...] = ()
    # A follow-up that asks for examples only: the code they are for, which a backend that writes the
    # examples apart from the code (the embedded model) keeps instead of writing code again.
    code: str | None = None


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
        "compute the area of a rectangle from its width and height",
        "def rectangle_area(width: float, height: float) -> float:\n"
        '    """The area of a rectangle of the given width and height."""\n    return width * height\n',
        (
            _spec(
                "rectangle_area",
                "Compute the area of a rectangle from its width and height.",
                {"width": ("number", "The rectangle's width."), "height": ("number", "The rectangle's height.")},
                "number",
                [
                    ("What is the area of a 6 by 7 rectangle?", {"width": 6, "height": 7}, "result", 42),
                    ("Area of a rectangle 2.5 wide and 4 high", {"width": 2.5, "height": 4}, "result", 10.0),
                ],
            ),
        ),
    ),
    _Example(
        "put a text in square brackets",
        'def bracket(text: str) -> str:\n    """Return the text in square brackets."""\n    return f"[{text}]"\n',
        (
            _spec(
                "bracket",
                "Put a text in square brackets.",
                {"text": ("string", "The text to put in brackets.")},
                "string",
                [("Put 'hello' in brackets", {"text": "hello"}, "result", "[hello]")],
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
        "count the lines in a text",
        'def count_lines(text: str) -> int:\n    """Count the lines in the text."""\n'
        "    return len(text.splitlines())\n",
        (
            _spec(
                "count_lines",
                "Count the lines of a text.",
                {"text": ("string", "The text to look at.")},
                "integer",
                [("How many lines are in this poem?", {"text": "roses\nviolets\nsugar"}, "result", 3)],
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


# The focused few-shot for expected results: tasks, calls with small simple arguments, and their
# results, one call a line, in the JSON notation the spec uses. None of them is a task a bench judges (a test
# holds this for these and the code prompt's tasks).
_CALL_SHOTS: tuple[tuple[str, str, tuple[tuple[dict[str, Any], Any], ...]], ...] = (
    ("subtract b from a", "subtract", (({"a": 7, "b": 2}, 5), ({"a": 9, "b": 4}, 5))),
    ("make a text lower case", "to_lower", (({"text": "Hello"}, "hello"), ({"text": "CAT"}, "cat"))),
    ("check whether a number is odd", "is_odd", (({"n": 3}, True), ({"n": 8}, False))),
    ("get the first letter of a word", "first_letter", (({"word": "cat"}, "c"), ({"word": "sun"}, "s"))),
    ("square a number", "square", (({"x": 4}, 16), ({"x": 3}, 9))),
    ("pick the second item from a list", "second_item", (({"items": [4, 1, 7]}, 1), ({"items": [9, 5]}, 5))),
    ("count the letter a in a word", "count_a", (({"word": "banana"}, 3), ({"word": "sky"}, 0))),
    ("repeat a word n times", "repeat", (({"word": "ab", "n": 3}, "ababab"), ({"word": "hi", "n": 2}, "hihi"))),
    ("check whether a text is empty", "is_empty", (({"text": ""}, True), ({"text": "tree"}, False))),
    ("sort a list of numbers", "sort_numbers", (({"numbers": [3, 1, 2]}, [1, 2, 3]), ({"numbers": [5, 4]}, [4, 5]))),
    ("the length of a text", "text_length", (({"text": "apple"}, 5), ({"text": "go"}, 2))),
    ("convert metres to centimetres", "m_to_cm", (({"metres": 2}, 200), ({"metres": 7}, 700))),
    ("join two words with a space", "join_words", (({"first": "good", "second": "day"}, "good day"),)),
    ("halve a number", "halve", (({"x": 8}, 4.0), ({"x": 5}, 2.5))),
)


def render_call(name: str, arguments: Mapping[str, Any]) -> str:
    """A call as the results few-shot writes it: name(a=2, text="hi")."""
    return f"{name}({', '.join(f'{key}={json.dumps(value)}' for key, value in arguments.items())})"


def calls_prompt(task: str, variant: int = 0) -> str:
    """The focused few-shot that asks for example calls and their results, ending at the open task's heading.

    Each shown task is a comment line followed by its calls as `call -> result` lines; the model
    continues with calls of the new function and predicts each result from the task's words.
    A repair round passes another `variant`, which shows the same tasks in another order.
    """
    start = (variant * 5) % len(_CALL_SHOTS)
    shots = _CALL_SHOTS[start:] + _CALL_SHOTS[:start]
    lines = []
    for shown, name, calls in shots:
        lines.append(f"# {shown}")
        lines.extend(f"{render_call(name, arguments)} -> {json.dumps(result)}" for arguments, result in calls)
    return "\n".join(lines) + f"\n# {task.strip()}\n"


def task_of(completion: str) -> str:
    """The task a completion prompt asks for (its last Task line)."""
    return completion.rsplit(_TASK, 1)[-1].split("\n", 1)[0].strip()


def is_repair(completion: str) -> bool:
    """Whether a completion prompt carries feedback from a failed attempt."""
    return _AVOID in completion.rsplit(_TASK, 1)[-1]


def _for_code(feedback: Sequence[str]) -> list[str]:
    """Feedback as a base model's code prompt should see it.

    A wrong example result says nothing about the code (the examples are predicted apart from
    it), and a small model copies the values it names straight into the code, so those lines
    become one plain remark.
    """
    lines: list[str] = []
    for line in feedback:
        line = _WRONG_RESULT if _EXAMPLE_LINE.match(line) else line
        if line not in lines:
            lines.append(line)
    return lines


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
    note = f"{_AVOID}{'; '.join(_for_code(feedback))[:200]}\n" if feedback else ""
    orders = [_FEW_SHOT[start:] + _FEW_SHOT[:start] for start in range(len(_FEW_SHOT))]
    opening = f"{_TASK}{task}\n{note}```python\n"
    first, *others = ["".join(f"Task: {e.task}\n{_answer(e)}\n" for e in shots) + opening for shots in orders]
    return Prompt(messages=tuple(messages), completion=first, reordered=tuple(others))


_EXAMPLES_ONLY = (
    "The code is fine, but the specifications of {names} have {what}. Keep the code "
    "as it is and answer with the ```function_spec blocks only, each now with two or three examples: "
    '{{"prompt": ..., "parameters": {{...}}, "result": <the exact return value>}}, or "error": <exception class> '
    "for a call that must fail."
)
_NO_EXAMPLES = "no examples that can be checked"
_WEAK_EXAMPLES = (
    "only examples that a function returning the same value every time, or returning its input unchanged, would "
    "pass as well; give examples with different results, and results that differ from the inputs"
)


def examples_prompt(
    task: str, answer: str, names: Sequence[str], *, weak: bool = False, code: str | None = None
) -> Prompt:
    """A focused follow-up that asks for examples only, for an answer whose code (`code`) is kept.

    `weak`: the specs have examples, but ones a trivial function passes too.
    """
    ask = _EXAMPLES_ONLY.format(names=", ".join(names), what=_WEAK_EXAMPLES if weak else _NO_EXAMPLES)
    plain = build_prompt(task, feedback=[f"add examples with the exact expected result to {', '.join(names)}"])
    messages = (*plain.messages[:2], {"role": "assistant", "content": answer}, {"role": "user", "content": ask})
    return Prompt(messages=messages, completion=plain.completion, code=code)
