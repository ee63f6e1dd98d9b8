"""A small catalogue module used by the server and CLI tests."""

CALC_PY = '''"""Arithmetic used by the server tests."""


class DivisionByZero(Exception):
    """Raised when the divisor is zero."""


def add(a: float, b: float = 0) -> float:
    """Add two numbers."""
    return a + b


def divide(a: float, b: float) -> dict:
    """Divide a by b."""
    if b == 0:
        raise DivisionByZero(f"cannot divide {a} by zero")
    return {"quotient": a / b}
'''

CALC_JSON = [
    {
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a"],
        },
        "responses": [{"type": "number"}],
        "examples": [{"prompt": "what is 2 + 3", "parameters": {"a": 2, "b": 3}, "result": 5}],
    },
    {
        "name": "divide",
        "description": "Divide a by b.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
        "responses": [{"type": "object", "properties": {"quotient": {"type": "number"}}, "required": ["quotient"]}],
        "errors": [{"name": "DivisionByZero", "description": "b is zero"}],
        "examples": [{"prompt": "7 / 0", "parameters": {"a": 7, "b": 0}, "error": "DivisionByZero"}],
    },
]
