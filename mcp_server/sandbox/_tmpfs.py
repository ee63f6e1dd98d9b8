"""A call's temp folder as a tmpfs of its own, bounded in size and file count, seen by the call alone.

The call process leaves the host's mount namespace for a private copy and mounts a
fresh tmpfs on its temp folder, before any Landlock layer (which forbids mounting)
is applied. Nothing of it is visible outside the call: the zygote sees the empty
folder below, and the kernel drops the tmpfs with its contents when the call's
last process exits, however deep or large the tree the call made in it. Its pages
are charged to the call's memory cgroup, within the call's one memory budget.
"""

from __future__ import annotations

import os
import tempfile

from mcp_server.sandbox import _linux
from mcp_server.sandbox._cleanup import temp_prefix

_MIB = 1 << 20


def mount_own(path: str, *, size_mb: int, files: int) -> None:
    """Give this process its own mount namespace with a tmpfs of `size_mb` MiB and `files` files at `path`."""
    _linux.private_mounts()
    options = f"size={size_mb * _MIB},nr_inodes={files + 1},mode=0700"  # + its root folder
    _linux.mount("funcsmith-tmp", path, "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV, options)


def probe() -> None:
    """Check, in a child that then exits, that a call process may mount a tmpfs of its own; OSError if not."""
    folder = tempfile.mkdtemp(prefix=temp_prefix("probe"))
    try:
        pid = os.fork()
        if pid == 0:
            try:
                mount_own(folder, size_mb=1, files=8)
            except OSError:
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
    finally:
        os.rmdir(folder)
    if status != 0:
        why = "" if os.geteuid() == 0 else " (a server that is not root needs a user namespace for it)"
        raise OSError(f"a mount namespace with a tmpfs of its own was refused{why}")


def is_full(path: str) -> bool:
    """Whether the filesystem at `path` has no room left, in bytes or in files."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return False
    return stats.f_bavail == 0 or stats.f_favail == 0
