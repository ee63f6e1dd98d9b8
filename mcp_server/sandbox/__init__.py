"""Isolated execution: every call in a fresh, locked-down process, forked from a pre-started zygote.

The public surface: `Sandbox` runs calls, each within `Limits` widened by a person's `SandboxGrant`, and
answers with a `CallResult`; `isolation_report()` is what `funcsmith doctor` shows (a list of layers);
`temp_prefix()` names a temp folder after its maker, so that a zygote removes it once the maker is dead. The
rest is private, one module per process or layer: `_runner` (the server side), `_zygote` and `_watched`
(the zygote), `_worker` (a call process), `_wire` (every message between them), `_code` (a module's
code, compiled once by the server).
"""

from mcp_server.sandbox._cleanup import temp_prefix
from mcp_server.sandbox._model import CallResult, Limits, SandboxGrant
from mcp_server.sandbox._probe import isolation_report
from mcp_server.sandbox._runner import Sandbox

__all__ = ["CallResult", "Limits", "Sandbox", "SandboxGrant", "isolation_report", "temp_prefix"]
