"""Isolated execution: every call in a fresh, locked-down process, forked from a pre-started zygote."""

from mcp_server.sandbox.model import CallResult, Layer, Limits, SandboxGrant
from mcp_server.sandbox.probe import isolation_report
from mcp_server.sandbox.runner import Sandbox

__all__ = ["CallResult", "Layer", "Limits", "Sandbox", "SandboxGrant", "isolation_report"]
