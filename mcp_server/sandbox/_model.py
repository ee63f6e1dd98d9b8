"""The sandbox's value types: what a person granted, the default limits, and a call's outcome."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: A sandbox process's whole environment, besides its own TMPDIR and HOME: the zygote starts with it, and
#: every call process inherits it from the zygote (see _worker.scrub_environment).
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True, slots=True)
class SandboxGrant:
    """What a person granted one function beyond the defaults (the spec's "sandbox" field)."""

    network: bool = False
    read_paths: tuple[str, ...] = ()
    write_paths: tuple[str, ...] = ()
    timeout_s: float | None = None
    memory_mb: int | None = None
    data_quota_mb: int | None = None
    data_files: int | None = None

    @classmethod
    def from_spec(cls, sandbox: Mapping[str, Any] | None) -> SandboxGrant:
        """Read a spec's `sandbox` object; a malformed one is refused loudly rather than half-applied."""
        if not sandbox:
            return cls()
        if not isinstance(sandbox, Mapping):
            raise ValueError(f"sandbox grant must be an object, not {type(sandbox).__name__}")
        unknown = set(sandbox) - {"network", "read_paths", "write_paths", "timeout_s", "memory_mb", *_COUNTS}
        if unknown:
            raise ValueError(f"sandbox grant has unknown field(s): {', '.join(sorted(unknown))}")
        network = sandbox.get("network", False)
        if not isinstance(network, bool):
            raise ValueError("sandbox grant 'network' must be true or false")
        timeout = sandbox.get("timeout_s")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
            raise ValueError(f"sandbox grant 'timeout_s' must be a positive number, not {timeout!r}")
        memory = sandbox.get("memory_mb")
        if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int) or memory < 16):
            raise ValueError(f"sandbox grant 'memory_mb' must be an integer of at least 16, not {memory!r}")
        for key in _COUNTS:
            value = sandbox.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"sandbox grant '{key}' must be a positive integer, not {value!r}")
        return cls(
            network=network,
            read_paths=_paths(sandbox, "read_paths"),
            write_paths=_paths(sandbox, "write_paths"),
            timeout_s=float(timeout) if timeout is not None else None,
            memory_mb=memory,
            data_quota_mb=sandbox.get("data_quota_mb"),
            data_files=sandbox.get("data_files"),
        )


_COUNTS = ("data_quota_mb", "data_files")


def _paths(sandbox: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """The granted paths, each absolute (or under `~`, the server user's home).

    A path that does not exist yet is allowed (a drive mounted later, say): each call reports it.
    """
    value = sandbox.get(key, ())
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"sandbox grant '{key}' must be a list of absolute paths, not {type(value).__name__}")
    for path in value:
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"sandbox grant '{key}' holds {path!r}: each entry must be an absolute path")
        if "\0" in path:
            raise ValueError(f"sandbox grant '{key}' holds {path!r}, which contains a NUL byte")
        if not os.path.isabs(os.path.expanduser(path)):
            raise ValueError(f"sandbox grant '{key}' holds the relative path {path!r}: give it as an absolute path")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits every call gets unless its grant widens them."""

    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    file_size_mb: int = 64
    tmp_mb: int = 128  # the call's temp folder (a tmpfs: within the memory budget)
    tmp_files: int = 10_000
    data_quota_mb: int = 256  # the module's data folder, all calls together (its disk blocks)
    data_files: int = 10_000  # files and folders in it
    processes: int = 64
    open_files: int = 256
    output_bytes: int = 1 << 20
    result_bytes: int = 8 << 20

    def for_grant(self, grant: SandboxGrant) -> Limits:
        """These limits with a grant's timeout and memory applied: a person's explicit choice wins."""
        timeout = grant.timeout_s or self.timeout_s
        memory = grant.memory_mb or self.memory_mb
        cpu = max(self.cpu_s, math.ceil(timeout)) if grant.timeout_s else self.cpu_s
        return Limits(
            timeout_s=timeout,
            cpu_s=cpu,
            memory_mb=memory,
            file_size_mb=self.file_size_mb,
            tmp_mb=self.tmp_mb,
            tmp_files=self.tmp_files,
            data_quota_mb=grant.data_quota_mb or self.data_quota_mb,
            data_files=grant.data_files or self.data_files,
            processes=self.processes,
            open_files=self.open_files,
            output_bytes=self.output_bytes,
            result_bytes=self.result_bytes,
        )


@dataclass(frozen=True, slots=True)
class CallResult:
    """The outcome of one call: the JSON-ready value, or what went wrong and whose fault it was."""

    ok: bool
    value: Any = None
    error_type: str | None = None
    error_message: str | None = None
    sandbox_error: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Layer:
    """One isolation layer and whether it works on this machine (and why not)."""

    name: str
    active: bool
    detail: str
