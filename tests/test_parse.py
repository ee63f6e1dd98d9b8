"""parse_answer and reconcile on answers shaped like real model output."""

from __future__ import annotations

from typing import Any

from mcp_server.parse import parse_answer, reconcile

ADD_CODE = 'def add(a: int, b: int) -> int:\n    """Add two integers."""\n    return a + b\n'
ADD_SPEC: dict[str, Any] = {
    "name": "add",
    "description": "Add two integers.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
    "responses": [{"type": "integer"}],
    "examples": [{"prompt": "What is 2 plus 3?", "parameters": {"a": 2, "b": 3}, "result": 5}],
}
ADD_SPEC_JSON = """{
  "name": "add",
  "description": "Add two integers.",
  "parameters": {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"]
  },
  "responses": [{"type": "integer"}],
  "examples": [{"prompt": "What is 2 plus 3?", "parameters": {"a": 2, "b": 3}, "result": 5}]
}"""


def test_clean_answer_has_no_problems_and_no_repairs() -> None:
    text = f"```python\n{ADD_CODE}```\n\n```function_spec\n{ADD_SPEC_JSON}\n```\n"
    parsed = parse_answer(text)
    assert parsed.code == ADD_CODE
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()
    assert parsed.repairs == ()


def test_chatty_answer_with_capitalised_tag_and_text_around() -> None:
    text = (
        "Sure! Here's a function that adds two numbers.\n\n"
        f"```Python\n{ADD_CODE}```\n\n"
        "And here is its specification:\n\n"
        f"```FUNCTION_SPEC\n{ADD_SPEC_JSON}\n```\n\n"
        "Let me know if you need anything else! 😊\n"
    )
    parsed = parse_answer(text)
    assert parsed.code == ADD_CODE
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()
    assert parsed.repairs == ()


def test_crlf_line_endings_are_normalised() -> None:
    text = f"Here you go:\n```PYTHON\n{ADD_CODE}```\n```function_spec\n{ADD_SPEC_JSON}\n```\n".replace("\n", "\r\n")
    parsed = parse_answer(text)
    assert parsed.code == ADD_CODE
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()


def test_missing_closing_fence_of_code_before_spec_block() -> None:
    text = f"```python\n{ADD_CODE}\n```function_spec\n{ADD_SPEC_JSON}\n```"
    parsed = parse_answer(text)
    assert parsed.code == ADD_CODE
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()
    assert parsed.repairs == ("closed an unterminated ```python block (block 1)",)


def test_answer_cut_off_inside_the_spec_block() -> None:
    text = f"```python\n{ADD_CODE}```\n```function_spec\n{ADD_SPEC_JSON}"
    parsed = parse_answer(text)
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.repairs == ("closed an unterminated function_spec block 1",)


def test_spec_truncated_mid_json_is_completed_and_logged() -> None:
    truncated = ADD_SPEC_JSON.split(',\n  "examples"')[0]  # out of tokens before "examples"
    parsed = parse_answer(f"```python\n{ADD_CODE}```\n```function_spec\n{truncated}\n```\n")
    assert parsed.specs == ({k: v for k, v in ADD_SPEC.items() if k != "examples"},)
    assert parsed.problems == ()
    assert len(parsed.repairs) == 1
    assert parsed.repairs[0].startswith("function_spec block 1: repaired invalid JSON (Expecting")


def test_lenient_json_trailing_commas_comments_single_quotes_python_literals() -> None:
    messy = """{
  // the function
  'name': 'is_even',
  "description": "Tell whether a number is even.", /* short */
  "parameters": {
    "type": "object",
    "properties": {"n": {"type": "integer",},},  # one parameter
    "required": ["n",],
  },
  "responses": [{"type": "boolean"}],
  "examples": [
    {"prompt": "Is 4 even?", "parameters": {"n": 4}, "result": True},
    {"prompt": "Is 3 even?", "parameters": {"n": 3}, "result": False},
  ],
}"""
    code = 'def is_even(n: int) -> bool:\n    """Even test."""\n    return n % 2 == 0\n'
    parsed = parse_answer(f"```python\n{code}```\n\n```function_spec\n{messy}\n```\n")
    assert parsed.code == code
    assert parsed.specs == (
        {
            "name": "is_even",
            "description": "Tell whether a number is even.",
            "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
            "responses": [{"type": "boolean"}],
            "examples": [
                {"prompt": "Is 4 even?", "parameters": {"n": 4}, "result": True},
                {"prompt": "Is 3 even?", "parameters": {"n": 3}, "result": False},
            ],
        },
    )
    assert parsed.problems == ()
    assert parsed.repairs == (
        "function_spec block 1: repaired invalid JSON "
        "(comments, single quotes, trailing commas, Python literals True/False/None)",
    )


def test_unquoted_keys_are_repaired() -> None:
    spec_text = '{name: "add", description: "Add two integers.", parameters: {type: "object"}}'
    parsed = parse_answer(f"```py\n{ADD_CODE}```\n```json\n{spec_text}\n```\n")
    assert parsed.specs == ({"name": "add", "description": "Add two integers.", "parameters": {"type": "object"}},)
    assert parsed.repairs == (
        "read a block tagged 'json' as function_spec block 1",
        "function_spec block 1: repaired invalid JSON (unquoted keys)",
    )


def test_two_functions_share_one_code_block_with_two_spec_blocks() -> None:
    code = (
        "import math\n\n\n"
        'def circle_area(r: float) -> float:\n    """Area of a circle."""\n    return math.pi * r**2\n\n\n'
        'def square_area(side: float) -> float:\n    """Area of a square."""\n    return side * side\n'
    )
    text = (
        "I wrote two functions:\n\n"
        f"```python\n{code}```\n\n"
        "Spec for the first:\n"
        '```function_spec\n{"name": "circle_area", "description": "Area of a circle.", '
        '"parameters": {"type": "object", "properties": {"r": {"type": "number"}}, "required": ["r"]}, '
        '"responses": [{"type": "number"}]}\n```\n'
        "Spec for the second:\n"
        '```function-spec\n{"name": "square_area", "description": "Area of a square.", '
        '"parameters": {"type": "object", "properties": {"side": {"type": "number"}}, "required": ["side"]}, '
        '"responses": [{"type": "number"}]}\n```\n'
    )
    parsed = parse_answer(text)
    assert parsed.code == code
    assert [spec["name"] for spec in parsed.specs] == ["circle_area", "square_area"]
    assert parsed.specs[1]["parameters"]["required"] == ["side"]
    assert parsed.problems == ()
    assert parsed.repairs == ()


def test_json_list_in_one_block_gives_one_spec_per_element() -> None:
    text = (
        "```python3\n"
        "def first(items: list) -> object:\n    return items[0]\n\n\n"
        "def last(items: list) -> object:\n    return items[-1]\n"
        "```\n"
        "```json\n"
        '[\n  {"name": "first", "description": "First item.", "parameters": {"type": "object"}},\n'
        '  {"name": "last", "description": "Last item.", "parameters": {"type": "object"}}\n]\n'
        "```\n"
    )
    parsed = parse_answer(text)
    assert parsed.specs == (
        {"name": "first", "description": "First item.", "parameters": {"type": "object"}},
        {"name": "last", "description": "Last item.", "parameters": {"type": "object"}},
    )
    assert parsed.problems == ()
    assert parsed.repairs == ("read a block tagged 'json' as function_spec block 1",)


def test_indented_blocks_inside_a_numbered_list_and_tilde_fences() -> None:
    text = (
        "Steps:\n\n"
        "1. The code:\n\n"
        "   ```python\n"
        "   def add(a: int, b: int) -> int:\n"
        '       """Add two integers."""\n'
        "       return a + b\n"
        "   ```\n\n"
        "2. The spec:\n\n"
        "   ~~~function_spec\n" + "\n".join("   " + line for line in ADD_SPEC_JSON.splitlines()) + "\n   ~~~\n"
    )
    parsed = parse_answer(text)
    assert parsed.code == ADD_CODE
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()
    assert parsed.repairs == ()


def test_code_indented_deeper_than_its_fence_is_dedented() -> None:
    indented = "".join("    " + line + "\n" for line in ADD_CODE.splitlines())
    parsed = parse_answer(f"```python\n{indented}```\n```function_spec\n{ADD_SPEC_JSON}\n```")
    assert parsed.code == ADD_CODE
    assert parsed.repairs == ("removed the common indentation of python block 1",)


def test_untagged_blocks_are_classified_by_content() -> None:
    text = f"Code:\n```\n{ADD_CODE}```\nSpec:\n```\n{ADD_SPEC_JSON}\n```\nExample output:\n```\n5\n```\n"
    parsed = parse_answer(text)
    assert parsed.code == ADD_CODE
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()
    assert parsed.repairs == ("read an untagged block as function_spec block 1",)


def test_json_block_that_is_not_a_spec_is_ignored() -> None:
    text = (
        f'```python\n{ADD_CODE}```\nCalling it returns:\n```json\n{{"result": 5}}\n```\n```spec\n{ADD_SPEC_JSON}\n```\n'
    )
    parsed = parse_answer(text)
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()


def test_wrapped_specs_are_unwrapped() -> None:
    wrapped_one = f'{{"function_spec": {ADD_SPEC_JSON}}}'
    parsed = parse_answer(f"```python\n{ADD_CODE}```\n```function_spec\n{wrapped_one}\n```")
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.repairs == ("function_spec block 1: unwrapped the specs from the 'function_spec' key",)

    wrapped_list = f'{{"functions": [{ADD_SPEC_JSON}]}}'
    parsed = parse_answer(f"```python\n{ADD_CODE}```\n```json\n{wrapped_list}\n```")
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.repairs == (
        "read a block tagged 'json' as function_spec block 1",
        "function_spec block 1: unwrapped the specs from the 'functions' key",
    )


def test_sandbox_field_is_always_stripped() -> None:
    spec_text = ADD_SPEC_JSON[:-2] + ',\n  "sandbox": {"network": true, "write_paths": ["/"]}\n}'
    parsed = parse_answer(f"```python\n{ADD_CODE}```\n```function_spec\n{spec_text}\n```")
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.repairs == ("removed the sandbox field from spec 'add' (only a person may grant it)",)


def test_split_code_blocks_are_joined_and_repeats_dropped() -> None:
    error_class = 'class EmptyTextError(Exception):\n    """The text is empty."""\n'
    text = (
        f"First the exception:\n```python\n{error_class}```\n"
        f"Then the function:\n```python\n{ADD_CODE}```\n"
        f"Full code again:\n```python\n{ADD_CODE}```\n"
        f"```function_spec\n{ADD_SPEC_JSON}\n```"
    )
    parsed = parse_answer(text)
    assert parsed.code == error_class + "\n\n" + ADD_CODE
    assert parsed.repairs == (
        "dropped python block 3, a repeat of an earlier block",
        "joined 2 python blocks into one module",
    )


def test_completion_continuation_without_opening_fence() -> None:
    """A base model continues right after the prompt's opening fence, so its text starts with code."""
    continuation = f"{ADD_CODE}```\n\n```function_spec\n{ADD_SPEC_JSON}\n```\n"
    parsed = parse_answer(continuation)
    assert parsed.code == ADD_CODE
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()
    assert parsed.repairs == ("added the missing opening ```python fence",)


def test_unfenced_code_after_a_preamble() -> None:
    parsed = parse_answer(f"Here is the code:\n\n{ADD_CODE}\nSpec:\n```json\n{ADD_SPEC_JSON}\n```")
    assert parsed.code == ADD_CODE
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()


def test_broken_continuation_keeps_its_code_for_the_syntax_checks() -> None:
    broken = "def add(a: int, b: int) -> int\n    return a + b"
    parsed = parse_answer(f"{broken}\n```\n\n```function_spec\n{ADD_SPEC_JSON}\n```\n")
    assert parsed.code == broken + "\n"
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == ()


def test_missing_code_and_spec_are_problems() -> None:
    parsed = parse_answer("I'm sorry, I can't help with that.")
    assert parsed.code is None
    assert parsed.specs == ()
    assert parsed.problems == ("no python code block found", "no function_spec block found")


def test_unreadable_spec_reports_position() -> None:
    parsed = parse_answer(f"```python\n{ADD_CODE}```\n```function_spec\nname = add, adds numbers\n```")
    assert parsed.code == ADD_CODE
    assert parsed.specs == ()
    assert parsed.problems == ("function_spec block 1: invalid JSON at line 1 column 1: Expecting value",)


def test_non_object_elements_are_problems() -> None:
    text = f'```python\n{ADD_CODE}```\n```function_spec\n[{ADD_SPEC_JSON}, "add", {{"type": "x"}}]\n```'
    parsed = parse_answer(text)
    assert parsed.specs == (ADD_SPEC,)
    assert parsed.problems == (
        "function_spec block 1, element 2: expected a JSON object, got str 'add'",
        "function_spec block 1, element 3: not a function spec (no 'name' or 'parameters'; keys: ['type'])",
    )


# --- reconcile --------------------------------------------------------------------------------------


def test_reconcile_leaves_an_agreeing_spec_alone() -> None:
    spec, notes = reconcile(ADD_CODE, ADD_SPEC)
    assert spec == ADD_SPEC
    assert notes == ()


def test_reconcile_renamed_and_extra_parameters() -> None:
    code = 'def greet(name: str, excited: bool = False) -> str:\n    return "Hi " + name\n'
    spec = {
        "name": "greet",
        "description": "Greet someone.",
        "parameters": {
            "type": "object",
            "properties": {
                "person": {"type": "string", "description": "Who to greet."},
                "excited": {"type": "boolean", "description": "Add an exclamation mark."},
                "loud": {"type": "boolean"},
            },
            "required": ["person", "excited"],
        },
        "responses": [{"type": "string"}],
    }
    fixed, notes = reconcile(code, spec)
    assert fixed["parameters"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "excited": {"type": "boolean", "description": "Add an exclamation mark.", "default": False},
        },
        "required": ["name"],
    }
    assert fixed["description"] == "Greet someone."
    assert notes == (
        "added parameter 'name' from the signature",
        "parameter 'name': type set to 'string' (type hint)",
        "parameter 'excited': default set to False (the code's default)",
        "dropped parameter 'person': not in the signature",
        "dropped parameter 'loud': not in the signature",
        "required: ['person', 'excited'] -> ['name'] (parameters without defaults)",
    )
    assert spec["parameters"]["required"] == ["person", "excited"], "the input spec is not modified"


def test_reconcile_types_from_hints_and_optional() -> None:
    code = (
        "from typing import List, Optional\n\n\n"
        "def stats(values: List[float], label: Optional[str] = None, *, digits: int | None = 2,\n"
        "          tags: tuple[str, ...] = ('a',), options: dict = {}, raw=None) -> dict[str, float]:\n"
        "    return {}\n"
    )
    spec = {
        "name": "stats",
        "description": "Summary statistics.",
        "parameters": {
            "type": "object",
            "properties": {
                "values": {"type": "string", "description": "The numbers."},
                "label": {"type": "string", "description": "A label."},
                "raw": {"type": "integer", "description": "Kept: no hint."},
            },
        },
    }
    fixed, notes = reconcile(code, spec)
    assert fixed["parameters"] == {
        "type": "object",
        "properties": {
            "values": {"type": "array", "description": "The numbers.", "items": {"type": "number"}},
            "label": {"type": ["string", "null"], "description": "A label.", "default": None},
            "digits": {"type": ["integer", "null"], "default": 2},
            "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]},
            "options": {"type": "object", "default": {}},
            "raw": {"type": "integer", "description": "Kept: no hint.", "default": None},
        },
        "required": ["values"],
    }
    assert fixed["responses"] == [{"type": "object"}]
    assert "parameter 'values': type changed from 'string' to 'array' (type hint)" in notes
    assert "parameter 'label': type changed from 'string' to ['string', 'null'] (type hint)" in notes
    assert "required: None -> ['values'] (parameters without defaults)" in notes
    assert "added responses [{'type': 'object'}] from the return annotation" in notes


def test_reconcile_none_default_makes_the_type_nullable() -> None:
    code = "def f(limit: int = None) -> list:\n    return []\n"
    fixed, _ = reconcile(code, {"name": "f", "description": "d", "parameters": {"type": "object"}})
    assert fixed["parameters"]["properties"] == {"limit": {"type": ["integer", "null"], "default": None}}
    assert "required" not in fixed["parameters"]
    assert fixed["responses"] == [{"type": "array"}]


def test_reconcile_renames_a_misnamed_spec_to_the_only_free_function() -> None:
    code = "def _helper() -> None:\n    pass\n\n\ndef word_count(text: str) -> int:\n    return len(text.split())\n"
    spec = {"name": "count_words", "description": "Count words.", "parameters": {"type": "object"}}
    fixed, notes = reconcile(code, spec)
    assert fixed["name"] == "word_count"
    assert notes[0] == "renamed spec 'count_words' to 'word_count', the only function in the code without a spec"

    two = code + "\n\ndef char_count(text: str) -> int:\n    return len(text)\n"
    fixed, notes = reconcile(two, spec, taken={"char_count"})
    assert fixed["name"] == "word_count"
    fixed, notes = reconcile(two, spec)
    assert fixed == spec
    assert notes == (
        "no top-level function named 'count_words' in the code (functions: ['_helper', 'char_count', 'word_count'])",
    )


def test_reconcile_fills_errors_from_raised_module_exceptions() -> None:
    code = (
        "class EmptyListError(Exception):\n"
        '    """The list has no items."""\n\n\n'
        "class TooLongError(ValueError):\n    pass\n\n\n"
        "def mean(values: list[float]) -> float:\n"
        "    if not values:\n"
        '        raise EmptyListError("values is empty")\n'
        "    if len(values) > 1000:\n"
        '        raise TooLongError("at most 1000 values")\n'
        "    if any(v != v for v in values):\n"
        '        raise ValueError("NaN")\n'
        "    return sum(values) / len(values)\n"
    )
    spec = {
        "name": "mean",
        "description": "Mean.",
        "parameters": {
            "type": "object",
            "properties": {"values": {"type": "array", "items": {"type": "number"}}},
            "required": ["values"],
        },
        "responses": [{"type": "number"}],
        "errors": [{"name": "EmptyListError", "description": "No values given."}],
    }
    fixed, notes = reconcile(code, spec)
    assert fixed["errors"] == [
        {"name": "EmptyListError", "description": "No values given."},
        {"name": "TooLongError", "description": "at most 1000 values"},
    ]
    assert notes == ("added errors ['TooLongError'] raised by the code",)

    without = {k: v for k, v in spec.items() if k != "errors"}
    fixed, _ = reconcile(code, without)
    assert [e["description"] for e in fixed["errors"]] == ["The list has no items.", "at most 1000 values"]


def test_reconcile_on_code_that_does_not_parse() -> None:
    fixed, notes = reconcile("def add(a, b)\n    return a + b\n", ADD_SPEC)
    assert fixed == ADD_SPEC
    assert notes == ("code does not parse (line 1: expected ':'); spec left unchanged",)


def test_reconcile_parse_output_end_to_end() -> None:
    """A typical broken answer: ```Python tag, trailing commas, wrong required list, a stray parameter."""
    answer = (
        "Here is the solution.\n\n```Python\n"
        "class NegativeRadiusError(Exception):\n"
        '    """The radius is negative."""\n\n\n'
        "def circle_area(radius: float, precision: int = 2) -> float:\n"
        '    """Area of a circle."""\n'
        "    if radius < 0:\n"
        '        raise NegativeRadiusError(f"radius must be >= 0, got {radius}")\n'
        "    return round(3.141592653589793 * radius**2, precision)\n"
        "```\n\n```function_spec\n"
        "{\n"
        '  "name": "circle_area",\n'
        '  "description": "Area of a circle.",\n'
        '  "parameters": {"type": "object", "properties": {\n'
        '     "radius": {"type": "number", "description": "The radius."},\n'
        '     "precision": {"type": "integer", "description": "Decimals."},\n'
        '     "units": {"type": "string"},\n'
        '  }, "required": ["radius", "precision"]},\n'
        '  "responses": [{"type": "number"}],\n'
        '  "examples": [{"prompt": "Area for radius 1", "parameters": {"radius": 1}, "result": 3.14},],\n'
        "}\n```\n"
    )
    parsed = parse_answer(answer)
    assert parsed.problems == ()
    assert parsed.repairs == ("function_spec block 1: repaired invalid JSON (trailing commas)",)
    fixed, notes = reconcile(parsed.code or "", parsed.specs[0])
    assert fixed == {
        "name": "circle_area",
        "description": "Area of a circle.",
        "parameters": {
            "type": "object",
            "properties": {
                "radius": {"type": "number", "description": "The radius."},
                "precision": {"type": "integer", "description": "Decimals.", "default": 2},
            },
            "required": ["radius"],
        },
        "responses": [{"type": "number"}],
        "examples": [{"prompt": "Area for radius 1", "parameters": {"radius": 1}, "result": 3.14}],
        "errors": [{"name": "NegativeRadiusError", "description": "The radius is negative."}],
    }
    assert notes == (
        "parameter 'precision': default set to 2 (the code's default)",
        "dropped parameter 'units': not in the signature",
        "required: ['radius', 'precision'] -> ['radius'] (parameters without defaults)",
        "added errors ['NegativeRadiusError'] raised by the code",
    )


def test_reconcile_types_a_bare_list_by_its_examples_items() -> None:
    """`numbers: list` admits any item, so generated `[null]` would break right code; its examples say numbers."""
    code = "def biggest(numbers: list, counts: list, words: list, mixed: list) -> int:\n    return max(numbers)\n"
    spec = {
        "name": "biggest",
        "parameters": {"type": "object", "properties": {}},
        "examples": [
            {"parameters": {"numbers": [1, 2.5], "counts": [1], "words": ["a"], "mixed": [1, "a"]}, "result": 2.5},
            {"parameters": {"numbers": [4], "counts": [3, 0], "words": [], "mixed": []}, "result": 4},
        ],
    }
    fixed, notes = reconcile(code, spec)
    properties = fixed["parameters"]["properties"]
    assert properties["numbers"] == {"type": "array", "items": {"type": "number"}}
    assert properties["counts"] == {"type": "array", "items": {"type": "integer"}}
    assert properties["words"] == {"type": "array", "items": {"type": "string"}}
    assert properties["mixed"] == {"type": "array"}  # items of two kinds: left as the code says
    assert "parameter 'numbers': items set to {'type': 'number'} (its examples' items)" in notes
