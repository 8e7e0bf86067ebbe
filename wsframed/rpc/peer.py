"""RpcPeer: calls the peer, serves the peer's calls, over one Framed."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, overload

from ..checkpoint import checkpoint
from ..errors import ClosedStreamError
from ..framed import Framed
from ..loops import Future, Limiter, Shell, Timer, Waiter, current_shell, task_scope
from .core import WRITE_BATCH, Handler, PeerCore
from .errors import MAX_MSGID, NOTIFICATION, REQUEST, RemoteError
from .logs import logger

__all__ = ["DEFAULT_MAX_PENDING", "DEFAULT_REQUEST_TIMEOUT", "RpcPeer"]

F = TypeVar("F", bound=Handler)

DEFAULT_REQUEST_TIMEOUT = 60.0
"""Seconds a [`call()`][wsframed.rpc.RpcPeer.call] waits by default (``request_timeout``)."""
DEFAULT_MAX_PENDING = 1024
"""Calls in flight at once by default (``max_pending``); further calls wait for a slot."""


class _TaskStatus(Protocol):
    """What trio's and anyio's ``start()`` hand a task to say that it has started."""

    def started(self, value: Any = None, /) -> None: ...


class _Ignored:
    """The ``task_status`` of a task not started with ``start()``: nobody waits."""

    __slots__ = ()

    def started(self, value: Any = None, /) -> None:
        return None


_IGNORED = _Ignored()


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


class RpcPeer(PeerCore):
    """One end of a msgpack-RPC connection: it calls the peer and serves the peer's calls.

    Args:
        framed: any [`Framed`][wsframed.Framed] whose codec carries arrays
            (``MsgpackCodec``, ``CborCodec``, ``JsonLinesCodec``), over a WebSocket or
            over TCP with [`Framed.from_streams`][wsframed.Framed.from_streams].
        handlers: method names to functions (see [`register`][wsframed.rpc.RpcPeer.register]).
        max_concurrency: the peer's requests whose handlers run at once. Up to as
            many more wait in a queue, then the reader stops reading (backpressure);
            while calls of this side are in flight it queues up to 16 times as many
            and refuses the rest with ``"BusyError: ..."``.
        max_pending: this side's calls in flight at once. A further
            [`call()`][wsframed.rpc.RpcPeer.call] waits for one of them to end, within
            its timeout: a peer that never answers holds at most this many calls.
        request_timeout: the default ``timeout`` of [`call()`][wsframed.rpc.RpcPeer.call],
            in seconds: 60 unless given. ``None`` or ``math.inf`` waits for ever for a
            response, which a peer that reads requests and never answers turns into
            calls that never end: choose it only when the peer is trusted to answer.

    Run the dispatch loop with ``async with peer:`` (closed on exit) or
    ``await peer.serve()``; [`call()`][wsframed.rpc.RpcPeer.call] and
    [`notify()`][wsframed.rpc.RpcPeer.notify] start it too if needed.
    """

    def __init__(
        self,
        framed: Framed[Any],
        *,
        handlers: Mapping[str, Handler] | None = None,
        max_concurrency: int = 64,
        max_pending: int = DEFAULT_MAX_PENDING,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ):
        _positive_int("max_concurrency", max_concurrency)
        _positive_int("max_pending", max_pending)
        if request_timeout is not None and not request_timeout > 0:
            raise ValueError(f"request_timeout must be positive or None, not {request_timeout}")
        super().__init__(framed, max_concurrency)
        self.request_timeout = request_timeout
        """The default timeout of [`call()`][wsframed.rpc.RpcPeer.call], in seconds."""
        self.max_pending = max_pending
        """This side's calls in flight at once; further calls wait for a slot."""
        self._slots: Limiter | None = None  # made with the shell, when the peer starts
        self._next_msgid = 0
        self._closed: Waiter | None = None
        self._scope: AbstractAsyncContextManager[Shell] | None = None  # its task scope
        for name, fn in (handlers or {}).items():
            self.register(name, fn)

    # Handlers -----------------------------------------------------------------

    def register(self, name: str, fn: Handler) -> None:
        """Serve method ``name`` with ``fn``, replacing any handler of that name.

        ``fn`` receives the request's params as positional arguments and may be sync
        (it runs in the reader: keep it quick) or async (it runs as a task). Its return
        value is the result; its exception becomes the error response.
        """
        if not callable(fn):
            raise TypeError(f"the handler of {name!r} must be callable, not {fn!r}")
        self._handlers[name] = (fn, inspect.iscoroutinefunction(fn))

    @overload
    def method(self, name_or_fn: F, /) -> F: ...

    @overload
    def method(self, name_or_fn: str | None = None, /) -> Callable[[F], F]: ...

    def method(self, name_or_fn: str | F | None = None, /) -> F | Callable[[F], F]:
        """Decorator: ``@peer.method`` serves a function under its own name,
        ``@peer.method("name")`` under ``name``. Returns the function unchanged."""
        if callable(name_or_fn):
            self.register(name_or_fn.__name__, name_or_fn)
            return name_or_fn
        name = name_or_fn

        def decorate(fn: F) -> F:
            self.register(fn.__name__ if name is None else name, fn)
            return fn

        return decorate

    # Calling ------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """How many calls made here await their response (at most ``max_pending``)."""
        return len(self._pending)

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """Call ``method`` on the peer with ``params``; return its result.

        ``timeout`` bounds the whole call in seconds, including the wait for a free
        slot (``max_pending`` calls in flight) and for the transport; ``None`` means
        ``request_timeout`` (60 s unless the peer was made with another), ``math.inf``
        no bound.

        Raises [`RemoteError`][wsframed.rpc.RemoteError] when the peer answers with an
        error, ``TimeoutError`` when no response came in time (its message tells
        whether the call was sent), [`ConnectionClosed`][wsframed.ConnectionClosed]
        when the connection ends first or has ended (every call raises the same error
        object, the one that ended it), [`ClosedStreamError`][wsframed.ClosedStreamError]
        after [`aclose()`][wsframed.rpc.RpcPeer.aclose], and the codec's
        ``TypeError`` / ``ValueError`` / ``FrameTooLarge`` for params it cannot encode
        (nothing sent). A timeout or a cancellation forgets the call: a late response
        is dropped. The request may have reached the peer, so its handler may still
        run there. Every error is raised after at least one turn of the event loop.
        """
        try:
            return await self._call(method, params, timeout)
        except Exception:
            await checkpoint()  # a retry loop must let the loop run (checkpoint.py)
            raise

    async def _call(self, method: str, params: tuple[Any, ...], timeout: float | None) -> Any:
        if self._reader is None or self._closing or self._ended or self._write_error:
            self._check_usable()
        if timeout is None:
            timeout = self.request_timeout
        shell = self._shell
        slots = self._slots
        assert shell is not None
        assert slots is not None
        # One deadline for the whole call: the wait for a slot, for a backed-up
        # transport, and for the response (on asyncio a timer on its future).
        deadline = None if timeout is None or timeout == math.inf else shell.time() + timeout
        pending = self._pending
        if slots.locked():  # max_pending calls in flight: wait for one to end
            try:
                async with shell.timeout_at(deadline):
                    await slots.acquire()
            except TimeoutError:
                raise TimeoutError(
                    f"no free slot for a call to {method!r} within {timeout} s: "
                    f"{len(pending)} calls in flight (max_pending={self.max_pending})"
                ) from None
        else:
            await slots.acquire()  # returns at once
        future: Future | None = None
        timer: Timer | None = None
        msgid = 0
        try:
            if self._closing or self._ended or self._write_error:
                self._check_usable()  # it ended while this call waited for a slot
            msgid = self._next_msgid
            while msgid in pending:  # wrapped around onto a call still in flight
                msgid = (msgid + 1) & MAX_MSGID
            self._next_msgid = (msgid + 1) & MAX_MSGID
            request = [REQUEST, msgid, method, list(params)]
            # The only call in flight, with nothing waiting to be sent, sends its
            # request at once as a message of its own (Framed.send's path: no write
            # buffer, no hop through the writer task); encoded before anything else, so
            # params it cannot encode leave nothing behind.
            lone = not pending and not self._dirty and not self._flushing
            if lone:
                data = self.framed._encode_checked(request)
            else:
                self._feed(request)
            future = shell.create_future()
            pending[msgid] = future
            if deadline is not None:  # (no coroutine of its own, as wait_until has)
                timer = shell.expire_at(future, deadline)
            self._make_room()  # the reader must read on: the response may be queued
            # Calls made while others are in flight leave it to the writer, which sends
            # every request fed during this turn of the event loop in one message,
            # unless the transport is backed up or a full batch waits: then they flush
            # (and wait).
            if lone:
                if not self._send_nowait(data):
                    if deadline is None:
                        await self._send_lone(data)
                    else:
                        async with shell.timeout_at(deadline):
                            await self._send_lone(data)
            elif len(pending) == 1 or self._flushing or self._unflushed >= WRITE_BATCH:
                if deadline is None:
                    await self._flush()
                else:
                    async with shell.timeout_at(deadline):
                        await self._flush()
            else:
                self._kick()
            response = await future
        except TimeoutError:
            raise TimeoutError(
                f"no response to {method!r} (msgid {msgid}) within {timeout} s"
            ) from None
        finally:
            slots.release()
            if timer is not None:
                timer.cancel()
            if future is not None:
                if pending.get(msgid) is future:
                    del pending[msgid]
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved, even when the flush raised first
                else:
                    future.cancel()
        error = response[2]
        if error is not None:
            raise RemoteError(error, method=method)
        return response[3]

    async def notify(self, method: str, *params: Any) -> None:
        """Send a notification (no response).

        Returns once it is buffered for sending, the writer task sending it with the
        other frames of this turn of the event loop; when the transport is backed up or
        a full batch waits, it flushes first and waits for the transport. Raises like
        [`call()`][wsframed.rpc.RpcPeer.call] when the connection is gone or params
        cannot be encoded, after a turn of the event loop.
        """
        try:
            self._check_usable()
            self._feed([NOTIFICATION, method, list(params)])
            if self._flushing or self._unflushed >= WRITE_BATCH:
                await self._flush()
                return
        except Exception:
            await checkpoint()
            raise
        self._kick()
        if self._budget.spend():  # a loop of notify() must let the writer run
            await checkpoint()

    def _check_usable(self) -> None:
        if self._closing:
            raise ClosedStreamError("this RpcPeer was closed (aclose()); make a new one")
        ended = self._write_error or self._ended
        if ended is not None:
            raise ended.with_traceback(None)  # the same object each time, no growth
        if self._reader is None:
            self._start()

    # Lifecycle ----------------------------------------------------------------

    def _start(self) -> None:
        """Start the reader and the writer (once), in the peer's task scope if it has
        one: asyncio lets a first call() start them, trio needs ``async with``."""
        if self._reader is None:
            shell = self._shell
            if shell is None:
                self._shell = shell = current_shell("RpcPeer")
            self._slots = shell.limiter(self.max_pending)
            self._reader = shell.spawn(self._read_loop())
            self._writer = shell.spawn(self._write_loop())

    async def _open(self) -> AbstractAsyncContextManager[Shell] | None:
        """Start in a task scope of its own (trio: a nursery) unless running already;
        return the scope to leave, if one was opened."""
        if self._reader is not None:
            return None
        scope = task_scope()
        self._shell = await scope.__aenter__()
        try:
            self._start()
        except BaseException:
            await scope.__aexit__(None, None, None)
            raise
        return scope

    async def serve(self, *, task_status: _TaskStatus = _IGNORED) -> None:
        """Run the dispatch loop until the connection ends, then close the peer.

        Returns normally however the connection ended (pending calls fail with
        ``ConnectionClosed``); cancelling it closes the peer. Raises
        ``ClosedStreamError`` (after a turn of the event loop) once closed.

        ``task_status.started()`` is called once the peer serves, so that trio's
        ``await nursery.start(peer.serve)`` (or anyio's ``task_group.start``) returns
        when [`call()`][wsframed.rpc.RpcPeer.call] may be used. Unless it runs already
        (``async with peer:``), its tasks run in a scope of its own (trio: a nursery)
        that ends with it.
        """
        if self._closing:
            await checkpoint()
            raise ClosedStreamError("this RpcPeer was closed (aclose()); make a new one")
        scope = await self._open()
        try:
            task_status.started()
            reader, shell = self._reader, self._shell
            assert reader is not None
            assert shell is not None
            try:
                await shell.wait([reader])  # never raises the reader's cancellation
            finally:
                await self.aclose()
        finally:
            if scope is not None:
                await scope.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Stop the dispatch loop, cancel running handlers and close the Framed.

        Pending calls fail with ``ClosedStreamError``. Responses already produced are
        flushed by the close. The log records left out on this connection are counted
        in one summary per kind. Idempotent; a handler may call it (it is not
        cancelled). Cancelled, it still has closed the peer (its calls fail, its tasks
        are cancelled), and may have left the Framed open.
        """
        shell = self._shell
        if shell is None:
            self._shell = shell = current_shell("RpcPeer")
        closed = self._closed
        if closed is not None:
            if not closed.done():
                await shell.join(closed)
            elif self._budget.spend():
                await checkpoint()
            return
        self._closed = closed = shell.create_waiter()
        self._closing = True
        try:
            current = shell.current_task()
            tasks = [t for t in (self._reader, self._writer, *self._tasks) if t is not None]
            tasks = [t for t in tasks if t is not current and not t.done()]
            for task in tasks:
                task.cancel()
            # Before any wait, so that a cancelled aclose() has failed them too.
            self._backlog.clear()
            self._fail_pending(ClosedStreamError("the RpcPeer was closed"))
            self._wake_flush_waiters()
            await shell.wait(tasks)
            self._log.summarize()
            try:
                await self.framed.aclose()
            except OSError as exc:  # already gone: nothing left to close
                logger.debug("closing the Framed failed: %s", exc)
        finally:
            closed.set_result(None)

    async def __aenter__(self) -> Self:
        """Start serving; under trio in a nursery of the peer's own, which every task
        of the peer (reader, writer, handlers) has left when the block ends."""
        if self._scope is None:
            self._scope = await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        finally:
            scope, self._scope = self._scope, None
            if scope is not None:
                await scope.__aexit__(None, None, None)
