"""The GBNF grammar that keeps a small base model's answer in the shape funcsmith parses.

It covers what follows the prompt's opening "```python" fence: code lines until the
closing fence, then one ```function_spec block of JSON in a simplified function-spec
shape. One function per answer is what a small model manages; example arguments are
plain values, never objects, because it tends to copy the parameter schemas there.
Module-level lines may only start a definition, an import, a decorator or a comment,
so the model cannot write example calls or prints at top level. Strings, lines and
lists are bounded so a looping model still reaches the end.
"""

from __future__ import annotations

ANSWER_GBNF = r"""
root      ::= code "```\n\n" spec

code      ::= toplevel line{0,80}
line      ::= toplevel | indented | "\n"
toplevel  ::= ("def " | "class " | "import " | "from " | "@" | "#") text "\n"
indented  ::= ("    " | "\t") text "\n"
text      ::= [^`\n]{0,160}

spec      ::= ( "```function_spec\n{" ws
              "\"name\":" ws ident "," ws
              "\"description\":" ws string "," ws
              "\"parameters\":" ws params "," ws
              "\"responses\":" ws responses "," ws
              ("\"errors\":" ws errors "," ws)?
              "\"examples\":" ws examples ws "}\n```\n" )

params    ::= ( "{" ws "\"type\":" ws "\"object\"," ws
              "\"properties\":" ws props "," ws
              "\"required\":" ws names ws "}" )
props     ::= "{" ws (prop ("," ws prop){0,7})? ws "}"
prop      ::= ident ":" ws "{" ws "\"type\":" ws jtype ("," ws "\"description\":" ws string)? ws "}"
names     ::= "[" ws (ident ("," ws ident){0,7})? ws "]"
jtype     ::= "\"" ("integer" | "number" | "string" | "boolean" | "array" | "object") "\""
responses ::= "[" ws "{" ws "\"type\":" ws jtype ws "}" ws "]"
errors    ::= "[" ws (error ("," ws error){0,3})? ws "]"
error     ::= "{" ws "\"name\":" ws ident "," ws "\"description\":" ws string ws "}"
examples  ::= "[" ws example ("," ws example){0,2} ws "]"
example   ::= ( "{" ws "\"prompt\":" ws string "," ws "\"parameters\":" ws arguments "," ws
              ("\"result\":" ws value | "\"error\":" ws ident) ws "}" )

arguments ::= "{" ws (ident ":" ws argument ("," ws ident ":" ws argument){0,7})? ws "}"
argument  ::= array | string | number | "true" | "false" | "null"
value     ::= object | array | string | number | "true" | "false" | "null"
object    ::= "{" ws (string ":" ws value ("," ws string ":" ws value){0,15})? ws "}"
array     ::= "[" ws (value ("," ws value){0,31})? ws "]"
ident     ::= "\"" [A-Za-z_] [A-Za-z0-9_]{0,63} "\""
string    ::= "\"" char{0,200} "\""
char      ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
number    ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?
ws        ::= "" | " " | "\n" " "{0,12}
"""
