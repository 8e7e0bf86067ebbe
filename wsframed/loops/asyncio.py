"""The asyncio shell: asyncio's own futures, tasks, ``shield`` and ``timeout``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["AsyncioShell"]


class AsyncioShell:
    """[`Shell`][wsframed.loops.Shell] over the running asyncio loop.

    Its waiters are the loop's futures and its tasks the loop's tasks: the asyncio
    stream pays nothing for the shell beyond one attribute lookup per waiter or task.
    """

    __slots__ = ("_loop", "_tasks", "create_waiter")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.create_waiter = self._loop.create_future
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: failures surface through the stream instead

    def join(self, task: Any) -> Awaitable[None]:
        return asyncio.shield(task)

    async def bounded(self, timeout: float, body: Callable[[], Awaitable[None]]) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await body()
        except TimeoutError:
            return False
        return True
