"""Loop shells: what wsframed's stream and RPC peer need from asyncio or trio, and nothing else.

The logic of [`WsStream`][wsframed.WsStream] (its buffer and the read methods' search
state, the text policy, the close state, the events) and of
[`RpcPeer`][wsframed.rpc.RpcPeer] (the reader, the dispatch, the bounds, the write path)
is written once and awaits only its transport, [`checkpoint`][wsframed.checkpoint.checkpoint]
and what a ``Shell`` provides:

- a one-shot result slot, a ``Future`` (asyncio: the loop's own future);
- background tasks, each cancellable, waiting for them without cancelling them, and
  the task running now;
- time: the clock, a deadline around a block, a deadline on a ``Future``, a bound on
  a wait that reports whether it ran out;
- a bounded concurrency limiter (asyncio: ``asyncio.Semaphore``);
- for the bridge: ``sleep``, a callback after a delay, the class a cancellation
  raises and a block that a cancellation does not interrupt (its cleanup).

``AsyncioShell`` hands out asyncio's own futures, tasks and timers, so the asyncio side
runs the code it ran before trio support. ``TrioShell`` (``wsframed.loops.trio``) runs
tasks in a nursery given to it: a stream's in its connection's nursery (websockets.trio
gives each connection one), an RpcPeer's in the nursery it opens inside
``async with peer:`` ([`task_scope`][wsframed.loops.task_scope]), so no task outlives
the block or connection it belongs to.

A backend names its shell with a ``shell`` attribute; without one the stream runs on
asyncio. Why own shells rather than anyio's primitives: docs/trio.md (measured).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

__all__ = [
    "Future",
    "Limiter",
    "Shell",
    "Task",
    "Timer",
    "Waiter",
    "asyncio_shell",
    "current_shell",
    "gather",
    "in_trio",
    "run",
    "system_error",
    "task_scope",
]


class Waiter(Protocol):
    """A one-shot wake-up: the part of ``asyncio.Future[None]`` the stream uses."""

    def done(self) -> bool: ...

    def cancelled(self) -> bool: ...

    def set_result(self, result: None, /) -> None: ...

    def __await__(self) -> Generator[Any, None, Any]: ...


class Future(Protocol):
    """A one-shot result slot: the part of ``asyncio.Future`` the RPC peer uses.

    Awaiting it returns the result or raises the exception set on it; on trio,
    cancelling that wait leaves the slot as it was (asyncio cancels it, as usual).
    """

    def done(self) -> bool: ...

    def cancelled(self) -> bool: ...

    def cancel(self) -> bool: ...

    def set_result(self, result: Any, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...

    def exception(self) -> BaseException | None: ...

    def __await__(self) -> Generator[Any, None, Any]: ...


class Task(Protocol):
    """A background task: the part of ``asyncio.Task[None]`` the stream and peer use."""

    def done(self) -> bool: ...

    def cancel(self) -> bool: ...


class Timer(Protocol):
    """A callback waiting for its time (``asyncio.TimerHandle``): it can be cancelled."""

    def cancel(self) -> Any: ...


class Limiter(Protocol):
    """A bounded count of holders: the part of ``asyncio.Semaphore`` the peer uses."""

    def locked(self) -> bool:
        """True when ``acquire()`` would wait."""
        ...

    async def acquire(self) -> Any: ...

    def release(self) -> None: ...


class Shell(Protocol):
    """One loop family's waiting, tasks and time bounds."""

    @property
    def create_waiter(self) -> Callable[[], Waiter]:
        """Make a new, unset ``Waiter`` (asyncio: the loop's ``create_future``)."""
        ...

    @property
    def create_future(self) -> Callable[[], Future]:
        """Make a new, unset ``Future`` (asyncio: the loop's ``create_future``)."""
        ...

    @property
    def time(self) -> Callable[[], float]:
        """The loop's clock, in seconds (what deadlines are measured on)."""
        ...

    def spawn(
        self, coro: Coroutine[Any, Any, None], done: Callable[[Any], None] | None = None
    ) -> Task:
        """Run ``coro`` in the background; its exception is kept, never raised there.

        ``done(task)`` is called when it has ended, also when it was cancelled before
        it started (then ``coro`` is closed without running). Given ``done``, the
        caller keeps a reference to the task until then (asyncio's loop keeps only
        weak ones) and the shell keeps none."""
        ...

    def join(self, task: Task | Waiter) -> Awaitable[None]:
        """Wait for ``task`` and raise its exception; cancelling the wait spares the task."""
        ...

    async def wait(self, tasks: Iterable[Task]) -> None:
        """Wait until every task in ``tasks`` has ended; never raises their exceptions,
        and cancelling the wait spares them."""
        ...

    def current_task(self) -> Task | None:
        """The task of this shell running now, or ``None`` (asyncio: the current task)."""
        ...

    def timeout_at(self, deadline: float | None) -> AbstractAsyncContextManager[Any]:
        """``async with``: ``TimeoutError`` when the block is still running at
        ``deadline`` (``None``: no bound), as ``asyncio.timeout_at`` does."""
        ...

    async def wait_until(self, future: Future, deadline: float | None) -> Any:
        """Await ``future``; ``TimeoutError`` at ``deadline`` (``None``: no bound)."""
        ...

    def expire_at(self, future: Future, deadline: float) -> Timer:
        """Make awaiting ``future`` raise ``TimeoutError`` once ``deadline`` has passed
        (unless it was set first); ``cancel()`` the timer returned when done waiting.

        ``wait_until`` without a coroutine of its own, for the wait of every RPC call:
        asyncio sets the error on the future with a timer, trio keeps the deadline on
        the future for its await."""
        ...

    async def bounded(self, timeout: float, body: Callable[[], Awaitable[None]]) -> bool:
        """Run ``body()``; False if it was cancelled because ``timeout`` seconds passed."""
        ...

    def limiter(self, size: int) -> Limiter:
        """A new limiter with ``size`` places."""
        ...

    @property
    def cancelled(self) -> type[BaseException]:
        """What a cancelled wait raises (``asyncio.CancelledError``, ``trio.Cancelled``)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback()`` after ``delay`` seconds, unless cancelled first."""
        ...

    def shielded(self) -> AbstractContextManager[Any]:
        """``with``: a block that cancelling its task does not interrupt (a cleanup
        bounded by its own timeouts). asyncio: nothing to do, the cleanup of a caught
        ``CancelledError`` runs on; trio: a shielded cancel scope."""
        ...


def in_trio() -> bool:
    """True inside a trio task (``trio.run``, or anyio on its trio backend).

    trio is not imported for this: a program that never imported it is not in it."""
    trio = sys.modules.get("trio")
    return trio is not None and bool(trio.lowlevel.in_trio_task())


def run(loop: str, main: Callable[[Any], Awaitable[T]], arg: Any) -> T:
    """Run ``main(arg)`` on a new event loop of family ``loop`` ("asyncio" or "trio")
    and return what it returns (``asyncio.run``, ``trio.run``)."""
    if loop == "trio":
        try:
            import trio
        except ImportError as exc:
            raise RuntimeError(
                "--loop trio needs trio: pip install 'wsframed[trio]'"
            ) from exc
        result: T = trio.run(main, arg)
        return result
    if loop != "asyncio":
        raise ValueError(f"loop must be 'asyncio' or 'trio', not {loop!r}")
    import asyncio

    async def with_arg() -> T:
        return await main(arg)

    return asyncio.run(with_arg())


def system_error(exc: BaseException) -> BaseException:
    """``exc``, or what the system said behind it when a loop wrapped it.

    trio's ``open_tcp_stream`` raises ``OSError("all attempts to connect to HOST:PORT
    failed")`` without an errno, the system's error of each attempt in an exception
    group as its cause: the first of those with an errno (``connection refused``) is
    what to tell the user."""
    if isinstance(exc, OSError) and not exc.errno:
        cause = exc.__cause__
        for attempt in getattr(cause, "exceptions", (cause,)):
            if isinstance(attempt, OSError) and attempt.errno:
                return attempt
    return exc


def asyncio_shell() -> Shell:
    """The shell of the running asyncio loop (``RuntimeError`` outside one)."""
    return AsyncioShell()


def current_shell(what: str) -> Shell:
    """The running loop's shell, outside any task scope.

    Under asyncio it spawns tasks on the loop. Under trio it has no nursery: its
    futures, waiters and time bounds work, and ``spawn()`` raises ``RuntimeError``
    saying that ``what`` runs inside its ``async with`` block, which opens one.
    """
    if in_trio():
        from .trio import TrioShell

        return TrioShell(None, what)
    return AsyncioShell()


def task_scope() -> AbstractAsyncContextManager[Shell]:
    """``async with task_scope() as shell:``, a shell whose tasks end within the block.

    Under trio it opens a nursery: leaving the block cancels the tasks still running
    and waits for them, and the block's own exception passes through unchanged (not
    folded into an ``ExceptionGroup``). Under asyncio the tasks are the loop's, and
    their owner cancels and awaits them before it leaves (as ``RpcPeer.aclose()``
    does): the block adds nothing to them.
    """
    if in_trio():
        from .trio import TrioScope

        return TrioScope()
    return AsyncioScope()


async def gather(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run ``calls`` as concurrent tasks of the running loop; their results, in order.

    ``asyncio.gather`` for either family, in a [`task_scope`][wsframed.loops.task_scope]:
    when one call fails, the others are cancelled, and its exception (the first one)
    is raised as itself once every task has ended; none outlives the call, also when
    the call itself is cancelled."""
    results: list[Any] = [None] * len(calls)
    errors: list[Exception] = []
    tasks: list[Task] = []

    async with task_scope() as shell:

        async def run(index: int, call: Callable[[], Awaitable[Any]]) -> None:
            try:
                results[index] = await call()
            except Exception as exc:
                errors.append(exc)
                running = shell.current_task()
                for task in tasks:
                    if task is not running:
                        task.cancel()

        tasks.extend(shell.spawn(run(i, call), _ignore) for i, call in enumerate(calls))
        try:
            await shell.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
            with shell.shielded():
                await shell.wait(tasks)
    if errors:
        raise errors[0]
    return results


def _ignore(task: Any) -> None:
    """``spawn()``'s ``done``: ``gather`` holds its tasks and waits for them itself."""

from .asyncio import AsyncioScope, AsyncioShell  # noqa: E402  (after the protocols)
