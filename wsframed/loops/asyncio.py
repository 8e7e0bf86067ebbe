"""The asyncio shell: asyncio's own futures, tasks, ``shield`` and ``timeout``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["AsyncioShell"]

# Strong references to the background tasks while they run (the loop keeps only weak
# ones): one set for every stream, not an empty set per connection.
_running: set[asyncio.Task[None]] = set()


class AsyncioShell:
    """[`Shell`][wsframed.loops.Shell] over the running asyncio loop.

    Its waiters are the loop's futures and its tasks the loop's tasks: the asyncio
    stream pays nothing for the shell beyond one attribute lookup per waiter or task.
    """

    __slots__ = ("_loop", "create_waiter")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.create_waiter = self._loop.create_future

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._loop.create_task(coro)
        _running.add(task)
        task.add_done_callback(_task_done)
        return task

    def join(self, task: Any) -> Awaitable[None]:
        return asyncio.shield(task)

    async def bounded(self, timeout: float, body: Callable[[], Awaitable[None]]) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await body()
        except TimeoutError:
            return False
        return True


def _task_done(task: asyncio.Task[None]) -> None:
    _running.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: failures surface through the stream instead
