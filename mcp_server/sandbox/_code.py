"""A function's module as code: compiled once by the server, loaded by each call process.

A call process has just been forked and its caches are cold: compiling even a three-line module there
took 72 to 90 µs of its path after the request, against 13 µs in the warm server. So the server compiles
each source once (it compiles every catalogued module to check it anyway) and sends the marshalled code
with the request, which the call process loads in about 22 µs. A source that does not compile, or is too
large to compile on the server's event loop, goes as it is: the call process compiles it, and reports
what is wrong with it as before.

Both sides compile with the flags stated here: postponed annotations (PEP 563), as a call's module
always had them (it inherited them from the call process's own code).
"""

import __future__

import functools
import marshal
from types import CodeType

_FLAGS = __future__.annotations.compiler_flag
LARGEST = 64 << 10  # characters of source the server compiles; a larger module is compiled in its call process


@functools.lru_cache(maxsize=128)  # at most about 25 MB of sources and code, most often far less
def marshalled(source: str, filename: str) -> bytes:
    """The marshalled code of a module (b"" when the call process is to compile it)."""
    if len(source) > LARGEST:
        return b""
    try:
        return marshal.dumps(_compile(source, filename))
    except Exception:  # a syntax error, a null byte, too deep: the call process compiles it and says what is wrong
        return b""


def load(source: str, filename: str, code: bytes) -> CodeType:
    """The module's code: `code` as the server compiled it, else compiled from `source` here."""
    return marshal.loads(code) if code else _compile(source, filename)


def _compile(source: str, filename: str) -> CodeType:
    return compile(source, filename, "exec", flags=_FLAGS, dont_inherit=True)
