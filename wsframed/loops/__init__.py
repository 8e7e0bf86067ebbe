"""Loop shells: what [`WsStream`][wsframed.WsStream] needs from asyncio or trio, and nothing else.

The stream's logic (its buffer and the read methods' search state, the text policy,
the close state, the events) is written once, in ``wsframed.stream``, and awaits only
its backend's messages, [`checkpoint`][wsframed.checkpoint.checkpoint] and the four
things a ``Shell`` provides: a one-shot waiter, a background task, waiting for such a
task without cancelling it, and a time bound. ``asyncio_shell()`` hands out asyncio's
own futures and tasks, so the asyncio stream runs exactly the code it ran before trio
support; ``wsframed.loops.trio`` runs background work in the connection's own nursery
(websockets.trio gives each connection one), so no task outlives the connection.

A backend names its shell with a ``shell`` attribute; without one the stream runs on
asyncio. Why own shells rather than anyio's primitives: docs/trio.md (measured).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Protocol

__all__ = ["Shell", "Task", "Waiter", "asyncio_shell"]


class Waiter(Protocol):
    """A one-shot wake-up: the part of ``asyncio.Future[None]`` the stream uses."""

    def done(self) -> bool: ...

    def cancelled(self) -> bool: ...

    def set_result(self, result: None, /) -> None: ...

    def __await__(self) -> Generator[Any, None, Any]: ...


class Task(Protocol):
    """A background task: the part of ``asyncio.Task[None]`` the stream uses."""

    def done(self) -> bool: ...


class Shell(Protocol):
    """One loop family's waiting, tasks and time bounds."""

    @property
    def create_waiter(self) -> Callable[[], Waiter]:
        """Make a new, unset ``Waiter`` (asyncio: the loop's ``create_future``)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> Task:
        """Run ``coro`` in the background; its exception is kept, never raised there."""
        ...

    def join(self, task: Task) -> Awaitable[None]:
        """Wait for ``task`` and raise its exception; cancelling the wait spares the task."""
        ...

    async def bounded(self, timeout: float, body: Callable[[], Awaitable[None]]) -> bool:
        """Run ``body()``; False if it was cancelled because ``timeout`` seconds passed."""
        ...


def asyncio_shell() -> Shell:
    """The shell of the running asyncio loop (``RuntimeError`` outside one)."""
    return AsyncioShell()


from .asyncio import AsyncioShell  # noqa: E402  (after the protocols it implements)
