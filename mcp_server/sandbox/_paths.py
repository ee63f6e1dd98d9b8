"""The file-system trees every call may read: the Python installation and system libraries, nothing else."""

from __future__ import annotations

import functools
import os
import sys
import sysconfig

_SYSTEM = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo", "/etc/localtime")


@functools.cache
def python_read_paths() -> tuple[str, ...]:
    """Where the interpreter, its stdlib, site-packages and shared libraries live (existing paths only)."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    candidates += [p for k, p in sysconfig.get_paths().items() if k in {"stdlib", "platstdlib", "purelib", "platlib"}]
    candidates += _SYSTEM
    seen: dict[str, None] = {}
    for path in candidates:
        real = os.path.realpath(path)
        if os.path.exists(real):
            seen[real] = None
    return tuple(seen)
