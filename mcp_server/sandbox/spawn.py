"""A call without a zygote: this fresh interpreter is the call's supervisor, with the same lockdown as a fork.

Entry point: `python -I -c ... <socket fd> <label> <offline|online> <root> <config JSON>`,
started by the server for one call (`Sandbox(start="spawn")`). It pays the
interpreter start and the imports of the supervisor and worker code on every
call, which is what the zygote exists to avoid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from mcp_server.sandbox import cgroup, linux, namespaces, protocol, seccomp, supervisor


def main() -> NoReturn:
    """Leave the network (offline calls), then supervise the one call whose request arrives on the socket."""
    sock, network, config = int(sys.argv[1]), sys.argv[3] == "online", json.loads(sys.argv[5])
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # until the supervisor turns it into a clean kill
    linux.set_parent_death_signal(signal.SIGKILL)
    if not network and config["netns"]:
        try:
            linux.enter_network_namespace()
        except OSError as exc:
            message = f"the call's empty network namespace could not be made: {exc}"
            with contextlib.suppress(OSError):
                protocol.write_all(sock, protocol.encode_reply({"error_type": "Crashed", "error_message": message}))
            os._exit(1)
    namespaces.available()  # both tried once here, not in the call process it forks
    seccomp.prepare()
    supervisor.main(
        sock,
        group=_slot(config["group"]),
        pid_namespace=config["pidns"],
        scratch=Path(config["scratch"]),
        landlock_abi=config["landlock_abi"],
    )


def _slot(group: list[Any] | None) -> cgroup.Slot | None:
    """The call's cgroups, as the server passed them: [pids folder, memory folder or null, cgroup v2 or not]."""
    if not group:
        return None
    pids, memory, v2 = group
    return cgroup.Slot(Path(pids), Path(memory) if memory else None, v2=v2)
