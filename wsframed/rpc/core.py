"""The machinery under [`RpcPeer`][wsframed.rpc.RpcPeer]: one reader, one write path.

The reader takes every message the [`Framed`][wsframed.Framed] has decoded and places
each one, in order: a response resolves the future of its call; a request or a
notification starts its handler when a slot is free, else waits in the backlog, else
(the backlog is full) is refused or makes the reader wait. The bounds hold per
message, never per read: one WebSocket message may carry thousands of requests.

    no call of ours in flight:  backlog <= max_concurrency; when full, stop reading
    calls of ours in flight:    backlog <= 16 * max_concurrency; when full, refuse
                                (the peer's answers may sit behind its requests)

Writing has a single path, ``PeerCore._flush``, one flush at a time. Frames are
encoded whole by ``Framed.feed``, so they never interleave; a writer task flushes what
was fed during one turn of the event loop as one message.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..checkpoint import Budget, checkpoint
from ..errors import ClosedStreamError, ConnectionClosed, EndOfStream, WsFramedError
from ..framed import Framed
from ..loops import Future, Shell, Task, Waiter
from .errors import MAX_MSGID, NOTIFICATION, REQUEST, RESPONSE, RemoteError, closed_error
from .errors import error_text as _error_text
from .logs import ConnectionLog, brief, logger

QUEUE_FACTOR = 16  # requests queued at most, per max_concurrency, while calls are in flight
WRITE_BATCH = 256  # frames waiting for a flush before senders wait for one
_READ_TURN = 1024  # messages the reader handles before it gives the loop a turn

# What a broken connection raises: the library's errors, the system's, and those of
# an anyio byte stream (BrokenResourceError, ClosedResourceError: not OSError), which
# would otherwise end the writer task silently and leave every call waiting.
_FAILED: tuple[type[Exception], ...] = (OSError, WsFramedError)
try:
    from anyio import BrokenResourceError, ClosedResourceError
except ImportError:  # pragma: no cover - anyio is optional
    pass
else:
    _FAILED += (BrokenResourceError, ClosedResourceError)

# Results that are certainly not awaitable, checked before inspect.isawaitable().
_PLAIN = frozenset({type(None), bool, int, float, str, bytes, list, tuple, dict})

Handler = Callable[..., Any]

# Kinds of log records (see logs.py): at most LOG_FIRST of each per connection.
MALFORMED = "malformed messages from the peer"
UNKNOWN_NOTIFICATION = "notifications of unknown methods"
REFUSED = "requests refused with BusyError"
DROPPED = "notifications dropped (queue full)"
HANDLER_ERROR = "handler exceptions"
HANDLER_REMOTE_ERROR = "RemoteErrors raised by handlers"
UNENCODABLE = "results or errors the codec could not encode"
LATE = "responses to calls no longer waiting"


class _Brief:
    """Formats as [`brief(value)`][wsframed.rpc.logs.brief], only if the record is written."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __str__(self) -> str:
        return brief(self.value)


class PeerCore:
    """State, reading, dispatching and writing shared by [`RpcPeer`][wsframed.rpc.RpcPeer]."""

    def __init__(self, framed: Framed[Any], max_concurrency: int):
        self.framed = framed
        """The Framed this peer speaks over."""
        self._limit = max_concurrency
        self._max_queued = QUEUE_FACTOR * max_concurrency
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._log = ConnectionLog()
        self._budget = Budget()
        self._shell: Shell | None = None  # set when the peer starts (loops.py)
        self._pending: dict[int, Future] = {}
        # Handlers: running tasks, and requests waiting for a slot, in arrival order.
        self._running = 0
        self._backlog: deque[Any] = deque()
        self._room: Waiter | None = None  # the reader waits for backlog room
        self._tasks: set[Task] = set()
        # Writing: _dirty when frames were fed since the last flush started.
        self._dirty = False
        self._unflushed = 0  # frames fed since the last flush started
        self._flushing = False
        self._flush_waiters: list[Waiter] = []
        self._wakeup: Waiter | None = None  # the writer task's
        self._write_error: ConnectionClosed | None = None  # kept: raised by every later use
        # The reader is dispatching the only message of its batch: a sync handler's
        # response may leave at once (_feed_response). Never true across an await.
        self._lone_response = False
        # Lifecycle.
        self._reader: Task | None = None
        self._writer: Task | None = None
        self._ended: ConnectionClosed | None = None  # the connection ended (reader done)
        self._closing = False  # aclose() started

    def _fail_pending(self, error: BaseException) -> None:
        futures = list(self._pending.values())
        self._pending.clear()
        for future in futures:
            if not future.done():
                future.set_exception(error)

    def _end(self, error: ConnectionClosed) -> None:
        """The connection ended: fail pending calls, stop every task, refuse new calls.

        ``error`` is kept: every pending and later call raises this same object.
        """
        if self._ended is not None:
            return
        self._ended = error
        self._fail_pending(error)
        self._backlog.clear()
        current = self._shell.current_task() if self._shell is not None else None
        for task in (self._reader, self._writer, *self._tasks):
            if task is not None and task is not current:
                task.cancel()
        self._wake_flush_waiters()
        self._log.summarize()

    # Reading and dispatching --------------------------------------------------

    async def _read_loop(self) -> None:
        framed = self.framed
        recv_many = framed.recv_many
        pending = self._pending
        budget = Budget(_READ_TURN)
        try:
            while self._ended is None:
                try:
                    batch = await recv_many()
                except EndOfStream:
                    code = getattr(framed.stream, "close_code", None) or 1000
                    if pending:
                        logger.debug("end of stream with %d calls pending", len(pending))
                    self._end(ConnectionClosed(code, "the peer ended the connection"))
                    return
                lone = len(batch) == 1 and framed._sends_nowait
                for message in batch:
                    if budget.spend():  # a turn for other tasks every _READ_TURN messages
                        await checkpoint()
                    kind = message[0] if isinstance(message, (list, tuple)) and message else None
                    if type(kind) is not int:
                        self._malformed(message, "not an array starting with a type code")
                    elif kind == RESPONSE and len(message) == 4:
                        msgid = message[1]
                        future = pending.pop(msgid, None) if type(msgid) is int else None
                        if future is None:
                            self._unmatched(message)
                        elif not future.done():
                            future.set_result(message)
                    elif kind in (REQUEST, NOTIFICATION):
                        # Only while the reader itself dispatches (no handler task
                        # answers in between): see _feed_response.
                        self._lone_response = lone
                        try:
                            while not self._place(message):
                                self._lone_response = False
                                await self._wait_for_room()
                        finally:
                            self._lone_response = False
                    else:
                        self._malformed(message, "unknown type code or wrong length")
                # While calls made here are in flight, their responses may be queued
                # behind the peer's requests: block on nothing (not even a flush,
                # which waits for the peer to read) or both ends could wait for ever.
                if self._dirty:
                    if not pending:
                        await self._flush()
                    elif self._flushing and self._unflushed >= WRITE_BATCH:
                        await self._flush()  # bounded: wait when the transport is full
                    else:
                        self._kick()
        except Exception as exc:  # (a cancellation is not an Exception: it passes)
            if not isinstance(exc, _FAILED):
                logger.exception("msgpack-RPC reader failed")
            elif not isinstance(exc, ConnectionClosed):
                logger.warning("msgpack-RPC connection failed: %.500s", exc)
            self._end(self._write_error or closed_error(exc))

    def _place(self, message: Any) -> bool:
        """Start, queue or refuse a request or notification; False when the reader
        must wait for room first (the backlog is full and no call of ours waits)."""
        backlog = self._backlog
        if self._running < self._limit and not backlog:
            self._dispatch(message)
        elif self._pending:
            if len(backlog) < self._max_queued:
                backlog.append(message)
            else:
                self._refuse(message)
        elif len(backlog) < self._limit:
            backlog.append(message)
        else:
            return False
        return True

    async def _wait_for_room(self) -> None:
        """Stop reading until a handler ends or a call of ours needs the reader."""
        if self._dirty:
            await self._flush()  # the responses so far: the peer may wait for them
        assert self._shell is not None
        create_waiter = self._shell.create_waiter
        while len(self._backlog) >= self._limit and not self._pending:
            self._room = room = create_waiter()
            await room

    def _dispatch(self, message: Any) -> None:
        """Run the handler of a request or notification (a slot is free)."""
        if message[0] == REQUEST:
            if len(message) < 2:
                self._malformed(message, "a request needs 4 elements")
                return
            msgid = message[1]
            if type(msgid) is not int or not 0 <= msgid <= MAX_MSGID:
                self._malformed(message, "the msgid of a request must be a uint32")
                return
            if len(message) != 4:
                self._invalid(msgid, message, f"a request has 4 elements, not {len(message)}")
                return
            method, params = message[2], message[3]
        else:
            if len(message) != 3:
                self._malformed(message, f"a notification has 3 elements, not {len(message)}")
                return
            msgid = None
            method, params = message[1], message[2]
        if type(method) is bytes:  # from peers that send method names as raw bytes
            method = method.decode("utf-8", "replace")
        if type(method) is not str:
            self._invalid(msgid, message, f"the method must be a string, not {brief(method)}")
            return
        if not isinstance(params, (list, tuple)):
            self._invalid(msgid, message, f"params must be an array, not {brief(params)}")
            return
        entry = self._handlers.get(method)
        if entry is None:
            if msgid is None:
                self._log.log(
                    UNKNOWN_NOTIFICATION,
                    logging.WARNING,
                    "notification of unknown method %s ignored",
                    brief(method),
                )
            else:
                self._reply_error(msgid, f"NoMethodError: no method named {brief(method)}")
            return
        fn, is_async = entry
        try:
            result = fn(*params)
        except Exception as exc:
            self._handler_failed(msgid, method, exc)
            return
        if is_async or (type(result) not in _PLAIN and inspect.isawaitable(result)):
            self._running += 1
            assert self._shell is not None
            task = self._shell.spawn(
                self._run_handler(msgid, method, result),
                functools.partial(self._handler_done, result),
            )
            if not task.done():  # (a trio shell whose nursery closed ends it at once)
                self._tasks.add(task)
        elif msgid is not None:
            self._reply(msgid, result)

    async def _run_handler(self, msgid: int | None, method: str, result: Awaitable[Any]) -> None:
        try:
            try:
                value = await result
            except Exception as exc:
                self._handler_failed(msgid, method, exc)
            else:
                if msgid is not None:
                    self._reply(msgid, value)
        finally:
            self._release()

    def _handler_done(self, result: Awaitable[Any], task: Task) -> None:
        self._tasks.discard(task)
        if inspect.iscoroutine(result):
            result.close()  # a task cancelled before it started never awaited it

    def _refuse(self, message: Any) -> None:
        """The queue is full while calls made here are in flight: refuse, never block."""
        queued = len(self._backlog)
        msgid = message[1] if message[0] == REQUEST and len(message) > 1 else None
        if type(msgid) is int and 0 <= msgid <= MAX_MSGID:
            self._log.log(
                REFUSED,
                logging.WARNING,
                "refused request %d: %d requests already queued",
                msgid,
                queued,
            )
            self._reply_error(msgid, f"BusyError: {queued} requests already queued")
        else:
            self._log.log(
                DROPPED,
                logging.WARNING,
                "dropped a notification: %d requests already queued",
                queued,
            )

    def _release(self) -> None:
        """A handler task finished: start queued requests while slots are free."""
        self._running -= 1
        if self._closing or self._ended is not None:
            return
        backlog = self._backlog
        while backlog and self._running < self._limit:
            self._dispatch(backlog.popleft())
        if len(backlog) < self._limit:
            self._make_room()
        if self._dirty:
            self._kick()

    def _make_room(self) -> None:
        """Wake the reader if it waits for room (the backlog shrank or a call started)."""
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

    def _handler_failed(self, msgid: int | None, method: str, exc: Exception) -> None:
        if isinstance(exc, RemoteError):
            self._log.log(
                HANDLER_REMOTE_ERROR,
                logging.DEBUG,
                "handler of %s raised RemoteError(%s)",
                brief(method),
                brief(exc.error),
            )
            error: Any = exc.error
        else:
            text = _error_text(exc)
            self._log.log(
                HANDLER_ERROR,
                logging.INFO,
                "handler of %s raised %.500s",
                brief(method),
                text,
                exc_info=exc,
            )
            error = text
        if msgid is not None:
            self._reply_error(msgid, error)

    def _reply(self, msgid: int, result: Any) -> None:
        try:
            self._feed_response([RESPONSE, msgid, None, result])
        except (TypeError, ValueError) as exc:  # FrameTooLarge is a ValueError
            self._log.log(
                UNENCODABLE,
                logging.WARNING,
                "cannot encode the result for msgid %d: %.500s",
                msgid,
                exc,
            )
            self._reply_error(msgid, f"{type(exc).__name__}: cannot encode the result: {exc}")
        except ClosedStreamError:
            pass

    def _reply_error(self, msgid: int, error: Any) -> None:
        try:
            try:
                self._feed([RESPONSE, msgid, error, None])
            except (TypeError, ValueError) as exc:
                self._log.log(
                    UNENCODABLE,
                    logging.WARNING,
                    "cannot encode the error for msgid %d: %.500s",
                    msgid,
                    exc,
                )
                self._feed([RESPONSE, msgid, f"{type(exc).__name__}: unencodable error", None])
        except ClosedStreamError:
            pass

    def _invalid(self, msgid: int | None, message: Any, why: str) -> None:
        """A request or notification the spec does not allow: log, answer if a request."""
        self._malformed(message, why)
        if msgid is not None:
            self._reply_error(msgid, f"InvalidRequest: {why}")

    def _malformed(self, message: Any, why: str) -> None:
        self._log.log(
            MALFORMED,
            logging.WARNING,
            "malformed msgpack-RPC message from the peer (%s): %s",
            why,
            _Brief(message),
        )

    def _unmatched(self, message: Any) -> None:
        if type(message[1]) is int:  # a call that timed out or was cancelled here
            self._log.log(
                LATE,
                logging.DEBUG,
                "dropped the response to msgid %s: no call waits for it",
                _Brief(message[1]),
            )
        else:
            self._malformed(message, "the msgid of a response must be a uint32")

    # Writing ------------------------------------------------------------------

    def _feed(self, message: Any) -> None:
        """Encode and buffer one message (the codec's errors leave nothing buffered)."""
        self.framed.feed(message)
        self._dirty = True
        self._unflushed += 1

    def _feed_response(self, message: Any) -> None:
        """``_feed`` a response; the response to the reader's only message of its batch
        is sent at once, as its own message, when nothing waits to be sent before it
        and the stream takes it without waiting (``_send_nowait``)."""
        if self._lone_response and not self._dirty and not self._flushing:
            self._lone_response = False
            framed = self.framed
            data = framed._encode_checked(message)
            if self._send_nowait(data):
                return
            framed._feed_encoded(data)
            self._dirty = True
            self._unflushed += 1
            return
        self._feed(message)

    def _kick(self) -> None:
        """Frames were fed: have the writer task flush them this turn of the loop."""
        self._dirty = True
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _write_loop(self) -> None:
        assert self._shell is not None
        create_waiter = self._shell.create_waiter
        try:
            while not self._closing and self._ended is None:
                if self._dirty:
                    await self._flush()
                else:
                    self._wakeup = wakeup = create_waiter()
                    await wakeup
                    self._wakeup = None
        except _FAILED as exc:
            self._end(self._write_error or closed_error(exc))

    async def _flush(self) -> None:
        """The one write path: flush what was fed, one flush at a time.

        Returns once a flush that started after the last feed has finished. A failed
        flush is kept: this and every later use raise the same ``ConnectionClosed``.
        """
        while self._dirty and not self._closing and self._ended is None:
            if self._write_error is not None:
                raise self._write_error.with_traceback(None)  # same object, no growth
            if self._flushing:
                await self._wait_flush()
                continue
            self._dirty = False
            self._unflushed = 0
            self._flushing = True
            try:
                await self.framed.flush()
            except _FAILED as exc:
                self._write_error = error = closed_error(exc)
                self._end(error)  # nothing more can reach the peer: fail every call
                raise error from exc
            except BaseException:  # cancelled (asyncio or trio)
                self._kick()  # what was not sent stays buffered: the writer sends it
                raise
            finally:
                self._flushing = False
                self._wake_flush_waiters()

    def _send_nowait(self, data: bytes) -> bool:
        """Send one encoded message now if the stream takes it without waiting.

        Only while nothing waits to be sent (``_dirty`` and ``_flushing`` false), so
        it leaves after every message before it. ``False``, with nothing sent, when it
        would have to wait: then ``_send_lone``. A failure is kept, as in ``_flush``.
        """
        try:
            return self.framed._send_nowait(data)
        except _FAILED as exc:
            self._write_error = error = closed_error(exc)
            self._end(error)
            raise error from exc

    async def _send_lone(self, data: bytes) -> None:
        """Send one encoded message as its own, while nothing waits to be sent.

        The write path of ``_flush`` for a message that skipped the write buffer:
        it counts as the flush in progress (later messages queue behind it), a
        failure is kept, and a cancellation leaves what was not sent to the writer.
        """
        if self._write_error is not None:
            raise self._write_error.with_traceback(None)
        self._flushing = True
        try:
            await self.framed._send_later(data)
        except _FAILED as exc:
            self._write_error = error = closed_error(exc)
            self._end(error)
            raise error from exc
        except BaseException:  # cancelled: what the stream kept, the writer sends
            self._kick()
            raise
        finally:
            self._flushing = False
            self._wake_flush_waiters()

    async def _wait_flush(self) -> None:
        """Wait for the flush in progress to end (backpressure for senders)."""
        assert self._shell is not None
        waiter = self._shell.create_waiter()
        self._flush_waiters.append(waiter)
        await waiter

    def _wake_flush_waiters(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
