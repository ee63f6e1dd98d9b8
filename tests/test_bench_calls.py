"""The call bench's cost mode: it finds the Sandbox's zygote and counts the call processes it reaped."""

from __future__ import annotations

from pathlib import Path

import anyio

from bench.calls import measure_cost


def test_the_cost_of_a_call_is_counted_in_the_server_the_zygote_and_the_call_processes(tmp_path: Path) -> None:
    cost = anyio.run(measure_cost, tmp_path / "data", 10)
    rows = cost.per_call()
    assert list(rows) == ["server", "zygote", "call processes"]
    # Page faults are counted exactly (CPU time by clock ticks, which ten short calls may not see). Every call is
    # a process forked from the zygote, which copies each page it writes: about 600 here.
    assert rows["call processes"][1] >= 50
    assert rows["zygote"][1] >= 10  # the zygote writes to pages it shares with each child it forks
    assert cost.table().splitlines()[1].startswith("server")
