"""Checkpoints: how wsframed's coroutines give the event loop a turn.

A coroutine that never suspends does not let other tasks run, and a timeout around it
(``asyncio.wait_for``, ``asyncio.timeout``) cannot fire. ``recv()`` on a failed decoder,
``read()`` on a closed stream or ``send()`` into an inline fast path all complete without
waiting for anything; a loop that calls them again and again would freeze the program.

The rule every public coroutine of wsframed follows:

* **errors**: a coroutine that raises without having waited yields first
  (``await checkpoint()``), so a retry loop around a failed call always lets the loop
  run, and a cancellation or timeout delivered there is seen;
* **success**: a coroutine that returns data it already had (frames decoded ahead,
  bytes buffered) spends one unit of its object's [`Budget`][wsframed.checkpoint.Budget];
  every [`BUDGET`][wsframed.checkpoint.BUDGET] such returns it yields once. A yield
  costs a full event-loop iteration (about 3 us here), which on every call would triple
  the cost of a small frame; once per 64 costs under 0.05 us per call and still bounds
  how long one busy consumer can hold the loop. Tokio's cooperative budget (128 per
  task) makes the same trade.

Both loop families: under trio (``trio.run``, or anyio on its trio backend) the turn is
``trio.lowlevel.checkpoint()``, elsewhere ``asyncio.sleep(0)``. Which one is decided per
call without importing trio: while trio is not imported the test is one dictionary
lookup, and with it imported one more call (about 0.1 us against the 3 us of the turn
itself; figures in the trio guide, ``benchmarks/loop_shells.py``).
"""

from __future__ import annotations

import asyncio
import sys

__all__ = ["BUDGET", "Budget", "checkpoint"]

BUDGET = 64
"""Calls that may complete without waiting before one of them yields to the loop."""


async def checkpoint() -> None:
    """Give the event loop one turn (and see a pending cancellation), asyncio or trio."""
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_task():
        await trio.lowlevel.checkpoint()
    else:
        await asyncio.sleep(0)


class Budget:
    """Counts returns that did not wait; tells when the next one must yield.

    One per object (stream, framed, peer): ``if budget.spend(): await checkpoint()``.
    """

    __slots__ = ("_left", "_size")

    def __init__(self, budget: int = BUDGET) -> None:
        if budget < 1:
            raise ValueError(f"budget must be at least 1, got {budget}")
        self._size = budget
        self._left = budget

    def spend(self) -> bool:
        """Spend one unit; True (and a full budget again) when it ran out."""
        self._left -= 1
        if self._left:
            return False
        self._left = self._size
        return True
