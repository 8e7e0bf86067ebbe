"""The trio shell: background work in a nursery that belongs to a connection or a peer.

websockets.trio runs each connection's own tasks (the frame reader, the keepalive) in
a nursery that closes with the connection: the client's ``connect()`` block or the
server's per-connection handler. A stream's watcher, close handshake and discarding
reader start there too, so they end with the connection and never outlive it. An
[`RpcPeer`][wsframed.rpc.RpcPeer] opens a nursery of its own inside ``async with peer:``
([`TrioScope`][wsframed.loops.trio.TrioScope]) for its reader, writer and handlers. A
failure in a task is kept for whoever waits for it instead of cancelling the nursery;
each task has its own cancel scope, so one can be cancelled without the others.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from types import TracebackType
from typing import Any

try:
    import trio
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError("wsframed's trio shell needs trio: pip install 'wsframed[trio]'") from exc

__all__ = ["TrioFuture", "TrioLimiter", "TrioScope", "TrioShell", "TrioTask", "TrioWaiter"]

_UNSET: Any = object()


class TrioFuture:
    """A one-shot result slot over ``trio.Event``, shaped like an ``asyncio.Future``.

    Awaiting it returns the result or raises the exception set on it, or
    ``TimeoutError`` once the deadline ``TrioShell.expire_at`` gave it has passed.
    Unlike asyncio's, a cancelled wait leaves it as it was: ``done()`` tells whether it
    was ever set.
    """

    __slots__ = ("_cancelled", "_deadline", "_error", "_event", "_result")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._result: Any = _UNSET
        self._error: BaseException | None = None
        self._cancelled = False
        self._deadline = math.inf

    def done(self) -> bool:
        return self._event.is_set()

    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> bool:
        if self._event.is_set():
            return False
        self._cancelled = True
        self._event.set()
        return True

    def set_result(self, result: Any) -> None:
        if self._event.is_set():
            raise asyncio.InvalidStateError("the result of this future is already set")
        self._result = result
        self._event.set()

    def set_exception(self, exception: BaseException) -> None:
        if self._event.is_set():
            raise asyncio.InvalidStateError("the result of this future is already set")
        self._error = exception
        self._event.set()

    def exception(self) -> BaseException | None:
        return self._error

    def result(self) -> Any:
        if self._cancelled:
            raise asyncio.CancelledError
        if self._error is not None:
            raise self._error
        if self._result is _UNSET:
            raise asyncio.InvalidStateError("the result of this future is not set")
        return self._result

    async def _wait(self) -> Any:
        if self._deadline == math.inf:
            await self._event.wait()
        else:
            with trio.move_on_at(self._deadline):
                await self._event.wait()
            if not self._event.is_set():
                raise TimeoutError
        return self.result()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._wait().__await__()


TrioWaiter = TrioFuture
"""The stream's one-shot wake-up: a [`TrioFuture`][wsframed.loops.trio.TrioFuture]."""


class TrioTask(TrioFuture):
    """A background task of a nursery: done, its failure if any, and its cancel scope.

    Awaiting it waits for its end and raises its failure. ``cancel()`` cancels the task
    (its own cancel scope), not the nursery; before it started, it will not start.
    """

    __slots__ = ("_scope",)

    def __init__(self) -> None:
        super().__init__()
        self._scope = trio.CancelScope()

    @property
    def error(self) -> BaseException | None:
        """What the task raised, if it failed."""
        return self._error

    def cancel(self) -> bool:
        if self._event.is_set():
            return False
        self._scope.cancel()
        return True

    def result(self) -> None:
        if self._error is not None:
            raise self._error


class TrioLimiter:
    """[`Limiter`][wsframed.loops.Limiter] over ``trio.Semaphore`` (first come, first served)."""

    __slots__ = ("_semaphore",)

    def __init__(self, size: int) -> None:
        self._semaphore = trio.Semaphore(size)

    def locked(self) -> bool:
        return self._semaphore.value == 0

    async def acquire(self) -> None:
        await self._semaphore.acquire()

    def release(self) -> None:
        self._semaphore.release()


class _NoTimer:
    """What ``TrioShell.expire_at`` returns: the deadline is the future's, no timer."""

    __slots__ = ()

    def cancel(self) -> None:
        return None


_NO_TIMER = _NoTimer()


class _Deadline:
    """``timeout_at`` on trio: a cancel scope whose expiry is raised as ``TimeoutError``."""

    __slots__ = ("_scope",)

    def __init__(self, deadline: float | None) -> None:
        self._scope = trio.CancelScope(deadline=math.inf if deadline is None else deadline)

    async def __aenter__(self) -> _Deadline:
        self._scope.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        handled = self._scope.__exit__(exc_type, exc, tb)
        if self._scope.cancelled_caught:
            raise TimeoutError from None
        return handled


class TrioShell:
    """[`Shell`][wsframed.loops.Shell] whose tasks run in ``nursery``.

    Without a nursery (``None``) its futures, waiters and time bounds work and
    ``spawn()`` raises ``RuntimeError``: ``owner`` (what the shell serves) runs inside
    its ``async with`` block, which gives it one.
    """

    __slots__ = ("_by_native", "_live", "_nursery", "_owner")

    create_waiter = TrioFuture
    create_future = TrioFuture
    time = staticmethod(trio.current_time)
    limiter = TrioLimiter
    timeout_at = _Deadline
    cancelled = trio.Cancelled
    sleep = staticmethod(trio.sleep)

    @staticmethod
    def shielded() -> trio.CancelScope:
        return trio.CancelScope(shield=True)

    def __init__(self, nursery: trio.Nursery | None, owner: str = "this object") -> None:
        self._nursery = nursery
        self._owner = owner
        self._live: set[TrioTask] = set()  # spawned, not ended
        self._by_native: dict[Any, TrioTask] = {}  # the running ones, by trio task

    def spawn(
        self, coro: Coroutine[Any, Any, None], done: Callable[[Any], None] | None = None
    ) -> TrioTask:
        task = TrioTask()
        live = self._live

        async def run() -> None:
            native = trio.lowlevel.current_task()
            try:
                if task._scope.cancel_called:  # cancelled before it started
                    coro.close()
                    return
                self._by_native[native] = task
                with task._scope:
                    await coro
            except Exception as exc:  # kept for join(): the nursery is not the task's
                task._error = exc
            finally:
                self._by_native.pop(native, None)
                live.discard(task)
                task._event.set()
                if done is not None:
                    done(task)

        if self._nursery is None:
            coro.close()
            raise RuntimeError(
                f"under trio, {self._owner} runs inside its `async with` block (or its "
                "serve()): its tasks need the nursery that block opens"
            )
        try:
            self._nursery.start_soon(run)
        except RuntimeError:
            # The nursery has closed: what it belonged to is over, so there is nothing
            # left for this task to do.
            coro.close()
            task._event.set()
            if done is not None:
                done(task)
            return task
        live.add(task)
        return task

    async def join(self, task: Any) -> None:
        await task

    def call_later(self, delay: float, callback: Callable[[], None]) -> TrioTask:
        async def later() -> None:
            await trio.sleep(delay)
            callback()

        return self.spawn(later())

    async def wait(self, tasks: Iterable[Any]) -> None:
        for task in list(tasks):
            await task._event.wait()

    def current_task(self) -> TrioTask | None:
        return self._by_native.get(trio.lowlevel.current_task())

    async def wait_until(self, future: Any, deadline: float | None) -> Any:
        if deadline is None:
            return await future
        with trio.move_on_at(deadline):
            return await future
        raise TimeoutError

    def expire_at(self, future: Any, deadline: float) -> _NoTimer:
        future._deadline = deadline
        return _NO_TIMER

    async def bounded(self, timeout: float, body: Callable[[], Awaitable[None]]) -> bool:
        with trio.move_on_after(timeout) as scope:
            await body()
        return not scope.cancelled_caught

    def cancel_all(self) -> None:
        """Cancel every task of this shell that has not ended."""
        for task in list(self._live):
            task.cancel()


class TrioScope:
    """[`task_scope`][wsframed.loops.task_scope] under trio: a nursery and its shell.

    Leaving cancels the tasks still running and waits for them. The block's exception
    is not handed to the nursery, which would fold it into an ``ExceptionGroup``: it
    passes through unchanged, and only a task's ``BaseException`` (tasks keep their
    ``Exception``) comes out of the nursery.
    """

    __slots__ = ("_manager", "_shell")

    async def __aenter__(self) -> TrioShell:
        self._manager = trio.open_nursery()
        nursery = await self._manager.__aenter__()
        self._shell = TrioShell(nursery)
        return self._shell

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shell.cancel_all()
        await self._manager.__aexit__(None, None, None)
