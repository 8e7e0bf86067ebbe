"""The asyncio shell: asyncio's own futures, tasks, timers, ``shield`` and ``timeout``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

__all__ = ["AsyncioScope", "AsyncioShell"]

# Strong references to the background tasks while they run (the loop keeps only weak
# ones): one set for every stream, not an empty set per connection.
_running: set[asyncio.Task[None]] = set()


class _Expired(TimeoutError):
    """Set on a future whose deadline passed (``expire_at``, ``wait_until``)."""


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(_Expired())


class AsyncioShell:
    """[`Shell`][wsframed.loops.Shell] over the running asyncio loop.

    Its futures and waiters are the loop's futures, its tasks the loop's tasks, its
    limiter ``asyncio.Semaphore``: the asyncio side pays nothing for the shell beyond
    one attribute lookup per future or task.
    """

    __slots__ = ("_loop", "create_future", "create_waiter", "time")

    current_task = staticmethod(asyncio.current_task)
    timeout_at = staticmethod(asyncio.timeout_at)
    limiter = asyncio.Semaphore
    cancelled = asyncio.CancelledError
    sleep = staticmethod(asyncio.sleep)

    @staticmethod
    def shielded() -> AbstractContextManager[Any]:
        # A task.cancel() is delivered once: the cleanup after it runs on. An anyio
        # cancel scope delivers it again at every await until its block is left:
        # when anyio is in use, its shielded scope keeps the cleanup from it.
        anyio = sys.modules.get("anyio")
        if anyio is None:
            return contextlib.nullcontext()
        scope: AbstractContextManager[Any] = anyio.CancelScope(shield=True)
        return scope

    def __init__(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self.create_waiter = self.create_future = loop.create_future
        self.time = loop.time

    def spawn(
        self, coro: Coroutine[Any, Any, None], done: Callable[[Any], None] | None = None
    ) -> asyncio.Task[None]:
        task = self._loop.create_task(coro)
        if done is None:
            _running.add(task)
            task.add_done_callback(_task_done)
        else:  # the caller keeps the task until done(task): one callback per task
            task.add_done_callback(done)
        return task

    def join(self, task: Any) -> Awaitable[None]:
        return asyncio.shield(task)

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self._loop.call_later(delay, callback)

    async def wait(self, tasks: Iterable[Any]) -> None:
        tasks = list(tasks)
        if tasks:
            await asyncio.wait(tasks)

    async def wait_until(self, future: Any, deadline: float | None) -> Any:
        # A timer on the future (about 1 us) rather than asyncio.timeout_at() (about
        # 6 us): this is the wait of every RPC call.
        if deadline is None:
            return await future
        timer = self.expire_at(future, deadline)
        try:
            return await future
        except _Expired:
            raise TimeoutError from None
        finally:
            timer.cancel()

    def expire_at(self, future: Any, deadline: float) -> asyncio.TimerHandle:
        return self._loop.call_at(deadline, _expire, future)

    async def bounded(self, timeout: float, body: Callable[[], Awaitable[None]]) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await body()
        except TimeoutError:
            return False
        return True


class AsyncioScope:
    """[`task_scope`][wsframed.loops.task_scope] under asyncio: the running loop's shell."""

    __slots__ = ()

    async def __aenter__(self) -> AsyncioShell:
        return AsyncioShell()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def _task_done(task: asyncio.Task[None]) -> None:
    _running.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: failures surface through the stream instead
