"""The trio shell: background work in a nursery that belongs to the connection.

websockets.trio runs each connection's own tasks (the frame reader, the keepalive) in
a nursery that closes with the connection: the client's ``connect()`` block or the
server's per-connection handler. The stream's watcher, close handshake and discarding
reader start there too, so they end with the connection and never outlive it; a
failure in one is kept for whoever waits for it instead of cancelling that nursery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

try:
    import trio
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError("wsframed's trio shell needs trio: pip install 'wsframed[trio]'") from exc

__all__ = ["TrioShell", "TrioTask", "TrioWaiter"]


class TrioWaiter:
    """A one-shot wake-up over ``trio.Event``, shaped like an ``asyncio.Future[None]``."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    def done(self) -> bool:
        return self._event.is_set()

    def cancelled(self) -> bool:
        return False  # a cancelled wait leaves the waiter unset: done() tells

    def set_result(self, result: None) -> None:
        self._event.set()

    def __await__(self) -> Generator[Any, None, None]:
        return self._event.wait().__await__()


class TrioTask:
    """A background task of the connection's nursery: done, and its failure if any."""

    __slots__ = ("_done", "error")

    def __init__(self) -> None:
        self._done = trio.Event()
        self.error: Exception | None = None

    def done(self) -> bool:
        return self._done.is_set()


class TrioShell:
    """[`Shell`][wsframed.loops.Shell] whose tasks run in ``nursery``."""

    __slots__ = ("_nursery",)

    create_waiter = TrioWaiter

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def spawn(self, coro: Coroutine[Any, Any, None]) -> TrioTask:
        task = TrioTask()

        async def run() -> None:
            try:
                await coro
            except Exception as exc:  # kept for join(): the nursery is the connection's
                task.error = exc
            finally:
                task._done.set()

        try:
            self._nursery.start_soon(run)
        except RuntimeError:
            # The connection's nursery has closed: the connection is over and its
            # watcher has finished, so there is nothing left for this task to do.
            coro.close()
            task._done.set()
        return task

    async def join(self, task: Any) -> None:
        assert isinstance(task, TrioTask)
        await task._done.wait()
        if task.error is not None:
            raise task.error

    async def bounded(self, timeout: float, body: Callable[[], Awaitable[None]]) -> bool:
        with trio.move_on_after(timeout) as scope:
            await body()
        return not scope.cancelled_caught
