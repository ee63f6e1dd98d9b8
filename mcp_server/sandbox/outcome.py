"""Turn the supervisor's reply into a CallResult with a message a person can act on."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from mcp_server.sandbox import protocol
from mcp_server.sandbox.model import CallResult, Limits


def sandbox_failure(kind: str, message: str, *, elapsed: float, **details: Any) -> CallResult:
    """A failure that is the sandbox's (a limit, a crash, the protocol), not the function's."""
    return CallResult(
        ok=False, error_type=kind, error_message=message, sandbox_error=True, details=details, elapsed_s=elapsed
    )


def from_reply(reply: Mapping[str, Any], blobs: Sequence[bytes], limits: Limits, *, elapsed: float) -> CallResult:
    """The CallResult described by one supervisor reply and its blobs (stdout, stderr, the result frame)."""
    if "error_type" in reply:
        return sandbox_failure(
            reply["error_type"], reply.get("error_message", "the call supervisor failed"), elapsed=elapsed
        )
    stdout, stderr, frame = (*blobs, b"", b"", b"")[:3]
    out = {"stdout": stdout.decode(errors="replace"), "stderr": stderr.decode(errors="replace"), "elapsed_s": elapsed}
    stopped, result = reply.get("stopped"), None
    if frame and not stopped:
        try:
            result = protocol.decode(frame, limit=limits.result_bytes + 64)
        except protocol.ProtocolError as exc:
            stopped, reply = "ProtocolError", {"problem": f"the call's result frame is unreadable: {exc}"}
    if stopped:
        kind, message, details = _stopped(stopped, reply, limits)
    elif result is not None and result.get("ok"):
        return CallResult(ok=True, value=result.get("value"), **out)
    elif result is not None:
        details = dict(result.get("details") or {})
        if result.get("problems"):
            details["sandbox_problems"] = result["problems"]
        return CallResult(
            ok=False,
            error_type=result.get("error_type", "Error"),
            error_message=result.get("error_message", ""),
            sandbox_error=result.get("kind") == "sandbox",
            details=details,
            **out,
        )
    else:
        kind, message, details = _died(reply.get("status"), reply.get("cpu_s"), limits)
    return CallResult(ok=False, error_type=kind, error_message=message, sandbox_error=True, details=details, **out)


def timeout(limits: Limits, cpu_s: float | None) -> tuple[str, dict[str, Any]]:
    """Why a call the wall clock stopped was stopped: the wall clock came first, here is how far the CPU clock got."""
    used = f"{cpu_s:g} s" if cpu_s is not None else "an unknown amount"
    message = (
        f"the call ran longer than {limits.timeout_s:g} s of wall-clock time and was stopped, "
        f"having used {used} of its {limits.cpu_s:g} s of CPU time"
    )
    return message, {"limit_s": limits.timeout_s, "cpu_limit_s": limits.cpu_s, "cpu_s": cpu_s}


def _stopped(reason: str, reply: Mapping[str, Any], limits: Limits) -> tuple[str, str, dict[str, Any]]:
    if reason == "Timeout":
        return reason, *timeout(limits, reply.get("cpu_s"))
    if reason == "CPULimit":
        message = f"the call used more than {limits.cpu_s} s of CPU time and was stopped"
        return reason, message, {"limit_s": limits.cpu_s, "cpu_s": reply.get("cpu_s")}
    if reason == "MemoryLimit":
        message = (
            f"the call used more than its memory budget of {limits.memory_mb} MiB "
            "(all its processes, shared memory and memory files together) and was stopped"
        )
        return reason, message, {"limit_mb": limits.memory_mb}
    if reason == "OutputLimit":
        cap = limits.output_bytes
        return (
            reason,
            f"the call printed more than {cap} bytes to stdout or stderr and was stopped",
            {"limit_bytes": cap},
        )
    if reason == "ResultTooLarge":
        cap = limits.result_bytes
        return reason, f"the call's result is larger than {cap} bytes of JSON", {"limit_bytes": cap}
    if reason == "Cancelled":
        return reason, "the call was cancelled and stopped", {}
    return "ProtocolError", str(reply.get("problem") or f"the call was stopped: {reason}"), {}


def _died(status: int | None, cpu_s: float | None, limits: Limits) -> tuple[str, str, dict[str, Any]]:
    """Why a call process ended without a result, from its wait status and CPU time."""
    if status is None:
        return "Crashed", "the call process ended without a result or an exit status", {}
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return (
            "Crashed",
            f"the function's process exited with code {code} before returning a result",
            {"exit_code": code},
        )
    signum = os.WTERMSIG(status)
    name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
    details: dict[str, Any] = {"signal": name, "cpu_s": cpu_s}
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and cpu_s is not None and cpu_s >= limits.cpu_s - 0.05):
        details["limit_s"] = limits.cpu_s
        return "CPULimit", f"the call used more than {limits.cpu_s} s of CPU time and was stopped", details
    if signum == signal.SIGXFSZ:
        details["limit_mb"] = limits.file_size_mb
        return "FileSizeLimit", f"the call wrote a file larger than {limits.file_size_mb} MiB and was stopped", details
    return "Crashed", f"the function's process was killed by {name}", details
