"""How candidates' code is told apart: one idea written out again is not a second implementation."""

from __future__ import annotations

from mcp_server.codecheck import implementation

SLICED = 'def reverse_string(text: str) -> str:\n    """Reverse the text."""\n    return text[::-1]\n'


def test_names_annotations_docstrings_and_comments_do_not_make_another_implementation() -> None:
    renamed = "def flip(s):\n    # the other way round\n    return s[::-1]\n"
    local = "def flip(s):\n    out = s[::-1]\n    return out\n"
    other_local = "def rev(word: str) -> str:\n    result = word[::-1]\n    return result\n"
    assert implementation(SLICED) == implementation(renamed)
    assert implementation(local) == implementation(other_local)


def test_another_way_of_doing_it_is_another_implementation() -> None:
    joined = 'def reverse_string(text: str) -> str:\n    return "".join(reversed(text))\n'
    assert implementation(SLICED) != implementation(joined)
    # Names the code does not define itself (builtins, methods, modules) are part of what it does.
    assert implementation("def f(t):\n    return t.upper()\n") != implementation("def f(t):\n    return t.lower()\n")


def test_code_that_does_not_parse_is_its_own_text() -> None:
    assert implementation("def f(:\n") == "def f(:\n"
