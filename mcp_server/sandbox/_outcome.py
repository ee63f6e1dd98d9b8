"""Turn a call's Reply, its output and its Outcome into a CallResult with a message a person can act on."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import Any

from mcp_server.sandbox import _wire
from mcp_server.sandbox._model import CallResult, Limits
from mcp_server.sandbox._wire import ErrorType, Fault, Outcome, Reply, Stop


def sandbox_failure(kind: ErrorType, message: str, *, elapsed: float, **details: Any) -> CallResult:
    """A failure that is the sandbox's (a limit, a crash, the protocol), not the function's."""
    return CallResult(
        ok=False, error_type=str(kind), error_message=message, sandbox_error=True, details=details, elapsed_s=elapsed
    )


def from_reply(reply: Reply, blobs: Sequence[bytes], limits: Limits, *, elapsed: float) -> CallResult:
    """The CallResult described by one Reply and its blobs (stdout, stderr, the Outcome frame)."""
    if reply.failure:
        return sandbox_failure(ErrorType.PROTOCOL_ERROR, reply.failure, elapsed=elapsed)
    stdout, stderr, frame = (*blobs, b"", b"", b"")[:3]
    out = {"stdout": stdout.decode(errors="replace"), "stderr": stderr.decode(errors="replace"), "elapsed_s": elapsed}
    outcome: Outcome | None = None
    if frame and reply.stopped is None:
        try:
            outcome = _wire.unframe(frame, Outcome, limit=limits.result_bytes + 64)
        except _wire.ProtocolError as exc:
            message = f"the call's result frame is unreadable: {exc}"
            error = str(ErrorType.PROTOCOL_ERROR)
            return CallResult(ok=False, error_type=error, error_message=message, sandbox_error=True, **out)
    if reply.stopped is not None:
        kind, message, details = _stopped(reply.stopped, reply.cpu_s, limits)
    elif outcome is not None and outcome.ok:
        return CallResult(ok=True, value=outcome.value, **out)
    elif outcome is not None:
        details = dict(outcome.details)
        if outcome.problems:
            details["sandbox_problems"] = outcome.problems
        return CallResult(
            ok=False,
            error_type=outcome.error_type or "Error",
            error_message=outcome.error_message,
            sandbox_error=outcome.fault is Fault.SANDBOX,
            details=details,
            **out,
        )
    else:
        kind, message, details = _died(reply.status, reply.cpu_s, limits)
    return CallResult(ok=False, error_type=str(kind), error_message=message, sandbox_error=True, details=details, **out)


def timeout(limits: Limits, cpu_s: float | None) -> tuple[str, dict[str, Any]]:
    """Why a call the wall clock stopped was stopped: the wall clock came first, here is how far the CPU clock got."""
    used = f"{cpu_s:g} s" if cpu_s is not None else "an unknown amount"
    message = (
        f"the call ran longer than {limits.timeout_s:g} s of wall-clock time and was stopped, "
        f"having used {used} of its {limits.cpu_s:g} s of CPU time"
    )
    return message, {"limit_s": limits.timeout_s, "cpu_limit_s": limits.cpu_s, "cpu_s": cpu_s}


def _stopped(reason: Stop, cpu_s: float | None, limits: Limits) -> tuple[ErrorType, str, dict[str, Any]]:
    if reason is Stop.TIMEOUT:
        return ErrorType.TIMEOUT, *timeout(limits, cpu_s)
    if reason is Stop.CPU_LIMIT:
        message = f"the call used more than {limits.cpu_s} s of CPU time and was stopped"
        return ErrorType.CPU_LIMIT, message, {"limit_s": limits.cpu_s, "cpu_s": cpu_s}
    if reason is Stop.MEMORY_LIMIT:
        message = (
            f"the call used more than its memory budget of {limits.memory_mb} MiB "
            "(all its processes, shared memory and memory files together) and was stopped"
        )
        return ErrorType.MEMORY_LIMIT, message, {"limit_mb": limits.memory_mb}
    if reason is Stop.OUTPUT_LIMIT:
        cap = limits.output_bytes
        message = f"the call printed more than {cap} bytes to stdout or stderr and was stopped"
        return ErrorType.OUTPUT_LIMIT, message, {"limit_bytes": cap}
    if reason is Stop.RESULT_TOO_LARGE:
        cap = limits.result_bytes
        return ErrorType.RESULT_TOO_LARGE, f"the call's result is larger than {cap} bytes of JSON", {"limit_bytes": cap}
    if reason is Stop.CANCELLED:
        return ErrorType.CANCELLED, "the call was cancelled and stopped", {}
    return ErrorType.PROTOCOL_ERROR, f"the call was stopped: {reason}", {}


def _died(status: int | None, cpu_s: float | None, limits: Limits) -> tuple[ErrorType, str, dict[str, Any]]:
    """Why a call process ended without a result, from its wait status and CPU time."""
    if status is None:
        return ErrorType.CRASHED, "the call process ended without a result or an exit status", {}
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        message = f"the function's process exited with code {code} before returning a result"
        return ErrorType.CRASHED, message, {"exit_code": code}
    signum = os.WTERMSIG(status)
    name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
    details: dict[str, Any] = {"signal": name, "cpu_s": cpu_s}
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and cpu_s is not None and cpu_s >= limits.cpu_s - 0.05):
        details["limit_s"] = limits.cpu_s
        return ErrorType.CPU_LIMIT, f"the call used more than {limits.cpu_s} s of CPU time and was stopped", details
    if signum == signal.SIGXFSZ:
        details["limit_mb"] = limits.file_size_mb
        message = f"the call wrote a file larger than {limits.file_size_mb} MiB and was stopped"
        return ErrorType.FILE_SIZE_LIMIT, message, details
    return ErrorType.CRASHED, f"the function's process was killed by {name}", details
