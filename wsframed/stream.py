"""WsStream: a WebSocket connection as one continuous byte stream.

How it works
------------
Reading is pull-based. [`WsStream`][wsframed.WsStream] keeps one read buffer and takes the next
message from the connection only when a read needs more bytes than the buffer holds.
An unread message therefore stays in the WebSocket library's bounded queue, which
pauses the socket when full: a slow reader slows the peer's TCP sender, and memory is
bounded by the read buffer plus that queue. Message boundaries carry no meaning: empty
messages are skipped, a read may span messages and a message may serve many reads.
When the buffer is empty and a message fits the read, the message's own ``bytes`` are
returned without a copy.

Writing is buffered. ``write()`` appends to a list of chunks; ``drain()`` sends them as
binary messages of at most ``write_chunk_size`` bytes, so many small writes leave as
one message (joined with one copy; a chunk of ``write_chunk_size`` or more leaves
without one, sliced if it is larger). Each message is removed from the buffer before
it is handed to the connection, so a cancelled ``drain()`` never sends a byte twice or
loses one. One ``drain()`` sends at a time; others wait their turn, first come first
served, and an uncontended ``drain()`` takes no lock.

Per-message cost. With the websockets backend the stream awaits the connection's own
``recv()`` and ``send()`` and translates their ``ConnectionClosed`` itself, so a message
costs no coroutine of wsframed's beyond the read or drain that asked for it.

Closing follows RFC 6455 section 7. ``send_eof()`` flushes and sends a close frame in
a background task while the read side stays open: the peer's remaining bytes are read
normally and the end of stream comes with its close reply. A clean end (the handshake
completed after a close this side started, or the peer closed with 1000, 1001 or 1005)
reads as ``b""``; anything else raises [`ConnectionClosed`][wsframed.errors.ConnectionClosed] once
every byte received before it was read.

Control frames and text messages cannot travel in a byte stream; they are reported to
observers ([`WsStream.events`][wsframed.WsStream.events]), each with its own bounded queue.

Layers. The state and every decision (the buffer and ``readuntil()``'s search step,
the text policy, the end and failures, the events, the write buffer) are the sans-I/O
``StreamCore`` (``wsframed/stream_core.py``); ``WsStream`` adds the I/O: it awaits the
backend's messages and runs its waiting and background work through a loop shell
(``wsframed/loops``), asyncio's or trio's, chosen by the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self

from .backends import Backend, BackendClosed, backend_for
from .checkpoint import Budget, checkpoint
from .errors import ClosedStreamError, ConnectionClosed, EndOfStream
from .events import Closed
from .loops import Shell, Task, Waiter, asyncio_shell
from .stream_core import StreamCore, TextPolicy
from .subscription import EventSubscription

# EventSubscription and TextPolicy live in their own modules; importable from here too.
__all__ = ["EventSubscription", "TextPolicy", "WsStream"]


def _as_backend_closed(exc: BaseException) -> BackendClosed:
    assert isinstance(exc, BackendClosed)
    return exc


class WsStream(StreamCore):
    """A WebSocket connection read and written as one continuous byte stream.

    ``connection`` is an open ``websockets.asyncio`` ``ClientConnection`` or
    ``ServerConnection`` (the default backend), an aiohttp ``WebSocketResponse`` or
    ``ClientWebSocketResponse`` (``wsframed[aiohttp]``), or a Starlette/FastAPI
    ``WebSocket`` (``wsframed[starlette]``); under trio, a ``websockets.trio``
    connection (``wsframed[trio]``, see the trio guide). Anything else is a
    ``TypeError``. What each backend guarantees is in the integrations guide.

    Args:
        text: what to do with a text message. ``"reject"`` (default): close the
            connection with 1003, emit [`TextMessage`][wsframed.events.TextMessage], and
            raise [`ProtocolError`][wsframed.errors.ProtocolError] to the reader after the bytes
            received before it. ``"bytes"``: its UTF-8 bytes join the stream.
            ``"ignore"``: drop it and emit the event.
        write_chunk_size: the largest binary message ``drain()`` sends. Keep it at or
            below the peer's maximum message size (websockets: ``max_size``, 1 MiB).
        limit: the most bytes ``readuntil()``/``readline()`` buffer while looking for
            the separator.
        event_queue_size: the queue length of each [`events`][wsframed.WsStream.events] observer.
        close_timeout: the default time ``aclose()`` waits for the close handshake.

    The reading methods are the ``asyncio.StreamReader`` ones, the writing methods
    the ``asyncio.StreamWriter`` ones, and ``receive``/``send``/``send_eof``/``aclose``
    make it an anyio ``ByteStream``. One task may read while another writes; two
    concurrent readers are a ``RuntimeError``.
    """

    __slots__ = (
        "_aclose_task",
        "_backend",
        "_budget",
        "_close_task",
        "_close_timeout",
        "_closed_errors",
        "_closed_event",
        "_closed_from",
        "_closing",
        "_discard_task",
        "_drain_waiters",
        "_draining",
        "_receive_message",
        "_send_message",
        "_send_nowait",
        "_shell",
        "_watcher",
    )

    def __init__(
        self,
        connection: object,
        *,
        text: TextPolicy = "reject",
        write_chunk_size: int = 64 * 1024,
        limit: int = 64 * 1024,
        event_queue_size: int = 256,
        close_timeout: float = 10.0,
    ):
        # The state and its decisions (wsframed.stream_core); the arguments are
        # checked there, before the connection's type.
        super().__init__(text, write_chunk_size, limit, event_queue_size)
        # The type check first: a wrong object is a TypeError even outside a loop.
        self._backend: Backend = backend_for(connection, self._on_backend_event)
        # The loop family's waiting and tasks (wsframed.loops): asyncio's unless the
        # backend brings its own (the websockets.trio backend brings trio's).
        shell: Shell | None = getattr(self._backend, "shell", None)
        self._shell: Shell = shell if shell is not None else asyncio_shell()
        # A backend may offer a raw receive/send raising its library's own "connection
        # closed" exceptions, which the stream then translates: one coroutine less per
        # message each way (the websockets backend's also batch and inline; see
        # backends/websockets.py).
        backend: Any = self._backend
        self._receive_message: Callable[[], Awaitable[bytes | str]] = getattr(
            backend, "raw_receive", backend.receive
        )
        self._send_message: Callable[[bytes | memoryview], Awaitable[None]] = getattr(
            backend, "raw_send", backend.send
        )
        # And one that sends a message without waiting, while it need not (picows', websockets').
        self._send_nowait: Callable[[bytes], bool] | None = getattr(backend, "send_nowait", None)
        self._closed_errors: tuple[type[BaseException], ...] = getattr(
            backend, "closed_errors", (BackendClosed,)
        )
        self._closed_from: Callable[[BaseException], BackendClosed] = getattr(
            backend, "closed_from", _as_backend_closed
        )
        self._close_timeout = close_timeout
        self._budget = Budget()  # shared by every coroutine of the stream
        texts = getattr(backend, "texts_before_wrap", ())
        if texts:
            self._texts_unreported = deque(texts)

        # Write side: the turns of drain(), the close.
        self._draining = False  # a drain() is sending; the lock of _acquire_drain()
        # The drain() calls waiting their turn: None until two contend (an empty deque
        # costs 760 bytes per idle connection).
        self._drain_waiters: deque[Waiter] | None = None
        self._close_task: Task | None = None
        self._aclose_task: Task | None = None
        self._closing = False
        self._discard_task: Task | None = None

        self._closed_event: Closed | None = None
        # The end of the connection: a callback where the backend offers one (no task,
        # coroutine and future held per idle connection), else a watcher task.
        on_closed: Callable[[Callable[[], None]], bool] | None = getattr(
            backend, "on_closed", None
        )
        self._watcher: Task | None = None
        if on_closed is None or not on_closed(self._connection_closed):
            self._watcher = self._spawn(self._watch_connection())

    # Events -------------------------------------------------------------------

    def events(self) -> EventSubscription:
        """Subscribe a new observer of this stream's events.

        Returns an async iterator of [`wsframed.events`][wsframed.events] dataclasses,
        in the order the frames arrived, that ends after
        [`Closed`][wsframed.events.Closed]. Subscribe before the events of interest
        happen; ``close()`` the subscription to stop observing.
        """
        subscription = EventSubscription(
            self._event_queue_size, self._subscribers.remove, self._shell.create_waiter
        )
        self._subscribers.append(subscription)
        if self._closed_event is not None:
            subscription._push(self._closed_event)
        return subscription

    async def _watch_connection(self) -> None:
        await self._backend.wait_closed()
        self._connection_closed()

    def _connection_closed(self) -> None:
        """The connection is closed: report what is left, then the one Closed event."""
        self._report_early_texts()  # not after Closed, where they would be lost
        end = self._backend.ended()
        if end is not None and not end.clean and not self._discarding:
            # Announced before Closed, not after it. (After aclose() readers get the
            # end of stream, not this error: nothing to announce then.)
            self._end_error_for(end)
        code, reason = self._backend.closed_with() or (1006, "")
        self._closed_event = Closed(code, reason)
        self._emit(self._closed_event)

    # Reading ------------------------------------------------------------------

    async def _next_message(self) -> bytes | None:
        """Take the next non-empty message from the connection; None at the end."""
        while True:
            if self._read_error is not None:
                raise self._read_error.with_traceback(None)  # a traceback that does not grow
            if self._eof:
                return None
            try:
                received = await self._receive_message()
            except self._closed_errors as exc:
                self._on_closed(exc)
                continue
            message = self._accepted(received)
            if message is not None:
                return message

    def _on_closed(self, exc: BaseException) -> None:
        """Record the end of the connection: a clean end of stream, or the error."""
        self._record_end(self._closed_from(exc))

    def _peek_end(self) -> None:
        """With nothing buffered, take the end of the connection if nothing is left before it."""
        if self._buffer or self._eof or self._read_error is not None or self._discarding:
            return  # (after aclose() only the end of stream is left, as _enter_read says)
        end = self._backend.peek_end()
        if end is not None:
            self._record_end(end)

    def _leave_read(self) -> None:
        self._reader_active = False
        if self._discarding and self._discard_task is None:
            self._discard_task = self._spawn(self._discard())

    async def _after_error(self, exc: BaseException) -> None:
        """Give the loop a turn before ``exc`` is raised (the error path of every read).

        A read that fails at once would otherwise never yield: a retry loop around it
        would hold the loop. Bytes ``exc`` carries are put back if the turn is
        cancelled, so a cancellation here loses none.
        """
        try:
            await checkpoint()
        except BaseException:  # cancelled (asyncio.CancelledError, trio.Cancelled)
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                self._buffer[:0] = exc.partial
            raise

    async def _fill(self) -> bool:
        """Append one more message to the buffer; False at the clean end of stream."""
        message = await self._next_message()
        if message is None:
            return False
        self._buffer += message
        return True

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes; ``b""`` at the end of the stream.

        With ``n < 0``, read until the end of the stream. Returns as soon as any bytes
        are available; never waits for ``n`` of them (use
        [`readexactly`][wsframed.WsStream.readexactly]). Cancelling it loses no bytes.
        """
        if self._budget.spend():
            await checkpoint()
        try:
            if n == 0:
                self._raise_if_failed()
                return b""
            self._enter_read()
            try:
                buffer = self._buffer
                if n < 0:
                    while await self._fill():
                        pass
                    data = bytes(buffer)
                    buffer.clear()
                    if not data:  # at the end: a loop reading b"" must not spin
                        await checkpoint()
                    return data
                if buffer:
                    return self._take(n)
                message = None
                if self._read_error is None and not self._eof:
                    # The usual case inline, one coroutine less per message; anything
                    # unusual (the end, a text or an empty message) goes on below.
                    try:
                        received = await self._receive_message()
                    except self._closed_errors as exc:
                        self._on_closed(exc)
                    else:
                        message = self._accepted(received)
                if message is None:
                    message = await self._next_message()
                    if message is None:
                        await checkpoint()  # at the end: a loop reading b"" must not spin
                        return b""
                if len(message) <= n:
                    return message  # as it is: no copy
                buffer += memoryview(message)[n:]
                return message[:n]
            finally:
                self._leave_read()
        except Exception as exc:
            await self._after_error(exc)
            raise

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises ``asyncio.IncompleteReadError`` (with the bytes read in ``partial``) when
        the stream ends first. Cancelling it loses no bytes: they stay buffered.
        """
        if self._budget.spend():
            await checkpoint()
        try:
            if n < 0:
                raise ValueError(f"readexactly size can not be less than zero, got {n}")
            if n == 0:
                self._raise_if_failed()
                return b""
            self._enter_read()
            try:
                buffer = self._buffer
                if not buffer:
                    message = await self._next_message()
                    if message is None:
                        raise asyncio.IncompleteReadError(b"", n)
                    if len(message) == n:
                        return message
                    buffer += message
                while len(buffer) < n:
                    if not await self._fill():
                        raise asyncio.IncompleteReadError(self._take_all(), n)
                return self._take(n)
            finally:
                self._leave_read()
        except Exception as exc:
            await self._after_error(exc)
            raise

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Read up to and including ``separator``.

        Raises ``asyncio.LimitOverrunError`` when ``limit`` bytes were buffered without
        finding it, or when it is found past ``limit``; the bytes stay buffered (read
        them with [`read`][wsframed.WsStream.read]). Raises ``asyncio.IncompleteReadError`` with
        the remaining bytes when the stream ends first. Within one call no byte is
        searched twice; a call that ends without a separator (overrun, end of stream,
        cancellation) keeps nothing of its search, as asyncio's does.
        """
        if self._budget.spend():
            await checkpoint()
        try:
            seplen = len(separator)
            if seplen == 0:
                raise ValueError("separator should be at least one-byte string")
            self._enter_read()
            try:
                # The search state is one offset (stream_core.StreamCore._scan); it
                # lives and dies with this call.
                scan = self._scan
                index, offset = scan(separator, 0)
                while index < 0:
                    if not await self._fill():
                        raise asyncio.IncompleteReadError(self._take_all(), None)
                    index, offset = scan(separator, offset)
                return self._take(index + seplen)
            finally:
                self._leave_read()
        except Exception as exc:
            await self._after_error(exc)
            raise

    async def readline(self) -> bytes:
        """Read one ``\\n``-terminated line, or the last bytes before the end of stream.

        Unlike ``asyncio.StreamReader.readline`` (which discards the buffer and raises
        ``ValueError``), a line over ``limit`` raises ``asyncio.LimitOverrunError`` and
        leaves every byte buffered: no data is lost.
        """
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter_lines()

    async def _iter_lines(self) -> AsyncIterator[bytes]:
        while line := await self.readline():
            yield line

    # Writing ------------------------------------------------------------------

    async def drain(self) -> None:
        """Send every buffered byte as binary messages, then wait for backpressure.

        Raises [`ConnectionClosed`][wsframed.errors.ConnectionClosed] when the connection is gone.
        Safe to cancel: bytes are sent in order and exactly once; what was not sent
        stays buffered for the next ``drain()``. Concurrent calls take turns.
        """
        if self._budget.spend():
            await checkpoint()
        try:
            if self._draining or self._drain_waiters:
                await self._acquire_drain()
            else:
                self._draining = True
            try:
                pending = self._pending
                send = self._send_message
                while pending:
                    message = self._take_message()
                    try:
                        await send(message)
                    except self._closed_errors as exc:
                        closed = self._closed_from(exc)
                        raise ConnectionClosed(closed.code, closed.reason) from None
            finally:
                self._release_drain()
        except Exception:
            await checkpoint()  # a retry loop around a failing drain() lets others run
            raise

    def _sends_whole(self, data: bytes) -> bool:
        """Whether ``data`` may skip the write buffer: nothing buffered or being sent,
        the write side open, and a non-empty ``bytes`` within ``write_chunk_size``."""
        return not (
            self._pending_size
            or self._draining
            or self._drain_waiters
            or self._write_closed
            or not data
            or len(data) > self._write_chunk_size
            or type(data) is not bytes
        )

    async def _send_whole(self, data: bytes) -> None:
        """Send ``data`` as one message now if nothing is buffered or being sent.

        [`Framed.send`][wsframed.Framed.send]'s fast path: a frame sent alone skips the
        write buffer, its join and the turn-taking of ``drain()``, and goes straight to
        the connection, holding the drain turn while it waits for backpressure (so a
        ``drain()`` started meanwhile waits, and bytes leave in the order written).
        Otherwise (bytes buffered, a ``drain()`` under way or waiting, a frame over
        ``write_chunk_size``, the write side closed) it is ``write()`` then ``drain()``.
        The same errors, and the same cancellation guarantee, as those: the message is
        handed to the connection before the first wait.
        """
        if not self._sends_whole(data):
            self.write(data)
            await self.drain()
            return
        self._draining = True
        try:
            await self._send_message(data)
        except self._closed_errors as exc:
            closed = self._closed_from(exc)
            raise ConnectionClosed(closed.code, closed.reason) from None
        finally:
            self._release_drain()

    def _send_whole_nowait(self, data: bytes) -> bool:
        """``_send_whole`` without a wait, where it needs none.

        Returns ``True`` once ``data`` was sent as one message; ``False`` with nothing
        sent when the backend offers no ``send_nowait``, when ``_send_whole`` would
        write and drain, or while the transport is paused (then await
        ``_send_whole``). Raises [`ConnectionClosed`][wsframed.errors.ConnectionClosed]
        when the connection is gone.
        """
        send_nowait = self._send_nowait
        if send_nowait is None or not self._sends_whole(data):
            return False
        try:
            return send_nowait(data)
        except self._closed_errors as exc:
            closed = self._closed_from(exc)
            raise ConnectionClosed(closed.code, closed.reason) from None

    async def _acquire_drain(self) -> None:
        """Wait for the drain() in progress, first come first served.

        The uncontended case is handled inline by [`drain`][wsframed.WsStream.drain]; this is the
        lock's slow path. The lock passes straight to the next waiter on release.
        """
        waiter = self._shell.create_waiter()
        waiters = self._drain_waiters
        if waiters is None:
            waiters = self._drain_waiters = deque()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release_drain()  # the turn came with the cancellation: pass it on
            else:
                with contextlib.suppress(ValueError):  # a release may have dropped it
                    waiters.remove(waiter)
            raise

    def _release_drain(self) -> None:
        waiters = self._drain_waiters
        while waiters:  # (None: nobody ever waited)
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # its turn: _draining stays True
                return
        self._draining = False

    def write_eof(self) -> None:
        """Start [`send_eof`][wsframed.WsStream.send_eof] in the background.

        For ``StreamWriter`` compatibility.
        """
        if not self._write_closed:
            self._write_closed = True
            self._close_task = self._spawn(self._flush_and_close(1000, ""))

    async def send_eof(self, code: int = 1000, reason: str = "") -> None:
        """Flush, then send a close frame; the read side stays open.

        Every byte the peer sends before its close reply is still delivered; then
        reads see the end of stream. If nobody reads, the close reply can sit behind
        unread messages: keep reading, or use [`aclose`][wsframed.WsStream.aclose]. Idempotent.
        """
        if self._write_closed:
            if self._budget.spend():
                await checkpoint()
            return
        self._write_closed = True
        try:
            await self.drain()
        finally:
            self._start_close(code, reason)

    def _start_close(self, code: int, reason: str) -> None:
        self._write_closed = True
        if self._close_task is None:
            self._close_task = self._spawn(self._backend.close(code, reason))

    async def _flush_and_close(self, code: int, reason: str) -> None:
        try:
            await self.drain()
        finally:
            await self._backend.close(code, reason)

    def _start_discarding(self) -> None:
        """Keep reading and dropping messages so the close handshake can complete.

        A close reply can sit behind unread messages in the library's queue; reading
        and dropping them lets it through, so a slow or hostile peer cannot hold the
        close up until the timeout. A read in progress finishes first.
        """
        self._discarding = True
        if not self._reader_active and self._discard_task is None:
            self._discard_task = self._spawn(self._discard())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> Task:
        # Failures are kept by the task, not raised: they surface through the stream.
        return self._shell.spawn(coro)

    async def _discard(self) -> None:
        while True:
            try:
                await self._backend.receive()
            except BackendClosed:
                return
            except Exception:  # the connection failed; the watcher reports it
                return

    async def aclose(
        self, code: int = 1000, reason: str = "", timeout: float | None = None
    ) -> None:
        """Close the stream: flush, send a close frame, wait for the handshake.

        Messages arriving meanwhile are discarded (what was buffered before stays
        readable). When the peer has not completed the handshake within ``timeout``
        seconds (default: the stream's ``close_timeout``), the TCP connection is
        dropped. Idempotent; never raises for a connection that is already gone.
        """
        if timeout is None:
            timeout = self._close_timeout
        if self._aclose_task is None:
            self._closing = True
            self._aclose_task = self._spawn(self._aclose(code, reason, timeout))
        if self._budget.spend():
            # Once closed, aclose() completes without waiting. (The close is started
            # first: a cancellation here still closes the stream.)
            await checkpoint()
        await self._shell.join(self._aclose_task)

    async def _aclose(self, code: int, reason: str, timeout: float) -> None:
        if not await self._shell.bounded(timeout, lambda: self._close_handshake(code, reason)):
            self._backend.abort()
            await self._backend.wait_closed()
        await checkpoint()  # let the watcher (task or callback) emit Closed

    async def _close_handshake(self, code: int, reason: str) -> None:
        if not self._write_closed:
            self._write_closed = True
            with contextlib.suppress(ConnectionClosed):
                await self.drain()
        self._start_close(code, reason)
        self._start_discarding()
        await self._backend.wait_closed()

    def close(self) -> None:
        """Start [`aclose`][wsframed.WsStream.aclose] in the background.

        For ``StreamWriter`` compatibility.
        """
        if self._aclose_task is None:
            self._closing = True
            self._aclose_task = self._spawn(self._aclose(1000, "", self._close_timeout))

    def is_closing(self) -> bool:
        """Return True once this side closed its write side or the connection ended."""
        return self._closing or self._write_closed or self._backend.closed_with() is not None

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        if self._budget.spend():
            await checkpoint()  # once closed, this completes without waiting
        if self._aclose_task is not None:
            await self._shell.join(self._aclose_task)
        await self._backend.wait_closed()

    # anyio ByteStream ---------------------------------------------------------

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Read up to ``max_bytes`` (anyio's ``receive``).

        Raises [`EndOfStream`][wsframed.errors.EndOfStream] at the end of the stream, and
        [`ClosedStreamError`][wsframed.errors.ClosedStreamError] once this side closed it
        ([`aclose`][wsframed.WsStream.aclose]) and every byte buffered before was read,
        as anyio's ``ClosedResourceError`` says "you closed it".
        """
        data = await self.read(max_bytes)
        if not data:  # read() gave the loop a turn at the end already
            if self._closing:
                raise ClosedStreamError(
                    "cannot receive: this side closed the stream (aclose() or close()); "
                    "the bytes buffered before were all read"
                )
            raise EndOfStream
        return data

    async def send(self, item: bytes | bytearray | memoryview) -> None:
        """Write ``item`` and drain."""
        try:
            self.write(item)
        except ClosedStreamError:
            await checkpoint()
            raise
        await self.drain()

    @property
    def extra_attributes(self) -> dict[Any, Any]:
        """anyio typed attributes: none are provided.

        Use [`get_extra_info`][wsframed.WsStream.get_extra_info] instead.
        """
        return {}

    # Connection ---------------------------------------------------------------

    async def ping(self, data: bytes = b"") -> float:
        """Send a ping and return the round-trip time in seconds.

        An empty ``data`` sends a unique random 4-byte payload, so concurrent pings
        do not collide. Raises [`ConnectionClosed`][wsframed.errors.ConnectionClosed] when the
        connection ends first, and ``NotImplementedError`` on backends that cannot
        send pings (Starlette; aiohttp with its default ``autoping=True``).
        """
        if self._budget.spend():
            await checkpoint()
        try:
            return await self._backend.ping(data or os.urandom(4))
        except BackendClosed as closed:
            await checkpoint()
            raise ConnectionClosed(closed.code, closed.reason) from None
        except Exception:  # NotImplementedError: this backend cannot send pings
            await checkpoint()
            raise

    @property
    def close_code(self) -> int | None:
        """The close code the peer sent (1006 if none); None while open."""
        closed = self._backend.closed_with()
        return None if closed is None else closed[0]

    @property
    def close_reason(self) -> str | None:
        """The close reason the peer sent; None while open."""
        closed = self._backend.closed_with()
        return None if closed is None else closed[1]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Return transport information, as ``StreamWriter.get_extra_info`` does.

        Answers ``"peername"``, ``"sockname"``, ``"subprotocol"``, ``"connection"``
        (the wrapped object) and whatever the underlying transport answers
        (``"socket"``, ``"ssl_object"``, ...).
        """
        return self._backend.extra_info(name, default)

    async def __aenter__(self) -> Self:
        if self._budget.spend():
            await checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(1000 if exc is None else 1011)
