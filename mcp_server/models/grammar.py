"""GBNF grammars that keep a small base model's answer in the shape funcsmith parses.

The answer is generated in two stages. First the code, after the prompt's opening
"```python" fence: module-level lines may only start a definition, an import, a
decorator or a comment, so the model cannot write example calls or prints at top
level. Then the ```function_spec block, with a grammar built from the code that was
just written: the spec's name, parameter names, required list and types are fixed
to match the function's signature, and example arguments must have the declared
types. The model only chooses descriptions, example values and results. When the
code has no usable function, a generic simplified spec grammar is used instead.
Strings, lines and lists are bounded so a looping model still reaches the end.
"""

from __future__ import annotations

import ast
import json

SPEC_FENCE = "```\n\n```function_spec\n"

CODE_GBNF = r"""
root      ::= code "```\n\n```function_spec\n"
code      ::= toplevel line{0,80}
line      ::= toplevel | indented | "\n"
toplevel  ::= ("def " | "class " | "import " | "from " | "@" | "#") text "\n"
indented  ::= ("    " | "\t") text "\n"
text      ::= [^`\n]{0,160}
"""

_JSON_RULES = r"""
value     ::= object | array | string | number | "true" | "false" | "null"
object    ::= "{" ws (string ":" ws value ("," ws string ":" ws value){0,15})? ws "}"
array     ::= "[" ws (value ("," ws value){0,31})? ws "]"
ident     ::= "\"" [A-Za-z_] [A-Za-z0-9_]{0,63} "\""
string    ::= "\"" char{0,200} "\""
char      ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
number    ::= integer ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?
integer   ::= "-"? ("0" | [1-9] [0-9]{0,15})
boolean   ::= "true" | "false"
jtype     ::= "\"" ("integer" | "number" | "string" | "boolean" | "array" | "object") "\""
errors    ::= "[" ws (error ("," ws error){0,3})? ws "]"
error     ::= "{" ws "\"name\":" ws ident "," ws "\"description\":" ws string ws "}"
ws        ::= "" | " " | "\n" " "{0,12}
"""

GENERIC_SPEC_GBNF = (
    r"""
root      ::= ( "{" ws
              "\"name\":" ws ident "," ws
              "\"description\":" ws string "," ws
              "\"parameters\":" ws params "," ws
              "\"responses\":" ws "[" ws "{" ws "\"type\":" ws jtype ws "}" ws "]" "," ws
              ("\"errors\":" ws errors "," ws)?
              "\"examples\":" ws "[" ws example ("," ws example){0,2} ws "]" ws "}\n```\n" )
params    ::= ( "{" ws "\"type\":" ws "\"object\"," ws
              "\"properties\":" ws "{" ws (prop ("," ws prop){0,7})? ws "}" "," ws
              "\"required\":" ws "[" ws (ident ("," ws ident){0,7})? ws "]" ws "}" )
prop      ::= ident ":" ws "{" ws "\"type\":" ws jtype ("," ws "\"description\":" ws string)? ws "}"
example   ::= ( "{" ws "\"prompt\":" ws string "," ws "\"parameters\":" ws arguments "," ws
              ("\"result\":" ws value | "\"error\":" ws ident) ws "}" )
arguments ::= "{" ws (ident ":" ws argument ("," ws ident ":" ws argument){0,7})? ws "}"
argument  ::= array | string | number | "true" | "false" | "null"
"""
    + _JSON_RULES
)

# Python annotation -> (JSON Schema type, grammar rule for a value of that type).
_TYPES: dict[str, tuple[str, str]] = {
    "int": ("integer", "integer"),
    "float": ("number", "number"),
    "str": ("string", "string"),
    "bool": ("boolean", "boolean"),
    "list": ("array", "array"),
    "tuple": ("array", "array"),
    "dict": ("object", "object"),
}


def _literal(text: str) -> str:
    """A GBNF string literal matching `text` exactly."""
    return json.dumps(text)


def _annotation(node: ast.expr | None) -> tuple[str | None, str]:
    """The JSON type and value rule for an annotation; unknown or missing ones allow any value."""
    if isinstance(node, ast.Subscript):
        node = node.value
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    if name.lower() in _TYPES:
        return _TYPES[name.lower()]
    return None, "value"


def _function(code: str) -> ast.FunctionDef | None:
    """The first public top-level function: the one the spec describes."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    return next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")),
        None,
    )


def spec_gbnf(code: str) -> str:
    """The grammar for the ```function_spec block (after its opening fence) that fits `code`."""
    function = _function(code)
    if function is None:
        return GENERIC_SPEC_GBNF
    arguments = function.args
    params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    defaults = len(arguments.defaults)
    positional = [*arguments.posonlyargs, *arguments.args]
    required = [a.arg for a in positional[: len(positional) - defaults]]
    required += [a.arg for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is None]

    props, args = [], []
    for param in params:
        json_type, rule = _annotation(param.annotation)
        type_rule = _literal(json.dumps(json_type)) if json_type else "jtype"
        props.append(
            f'{_literal(json.dumps(param.arg) + ":")} ws "{{" ws "\\"type\\":" ws {type_rule} '
            f'"," ws "\\"description\\":" ws string ws "}}"'
        )
        args.append(f"{_literal(json.dumps(param.arg) + ':')} ws {rule}")
    return_type, result_rule = _annotation(function.returns)
    response = _literal(json.dumps(return_type)) if return_type else "jtype"
    sep = ' "," ws '
    required_list = _literal(json.dumps(required))
    return (
        f"""
root      ::= ( "{{" ws
              "\\"name\\":" ws {_literal(json.dumps(function.name))} "," ws
              "\\"description\\":" ws string "," ws
              "\\"parameters\\":" ws params "," ws
              "\\"responses\\":" ws "[" ws "{{" ws "\\"type\\":" ws {response} ws "}}" ws "]" "," ws
              ("\\"errors\\":" ws errors "," ws)?
              "\\"examples\\":" ws "[" ws example ("," ws example){{0,2}} ws "]" ws "}}\\n```\\n" )
params    ::= ( "{{" ws "\\"type\\":" ws "\\"object\\"," ws
              "\\"properties\\":" ws "{{" ws {sep.join(props) or '""'} ws "}}" "," ws
              "\\"required\\":" ws {required_list} ws "}}" )
example   ::= ( "{{" ws "\\"prompt\\":" ws string "," ws "\\"parameters\\":" ws arguments "," ws
              ("\\"result\\":" ws {result_rule} | "\\"error\\":" ws ident) ws "}}" )
arguments ::= "{{" ws {sep.join(args) or '""'} ws "}}"
"""
        + _JSON_RULES
    )
