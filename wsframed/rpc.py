"""msgpack-RPC peers over any :class:`~wsframed.Framed` whose codec carries arrays.

Wire format (the msgpack-RPC specification; nothing of wsframed's own)::

    request       [0, msgid, method, params]    msgid: uint32, method: str, params: array
    response      [1, msgid, error, result]     error: nil on success, any object otherwise
    notification  [2, method, params]           no response

Errors this module sends are strings, ``"<TypeName>: <message>"``
(``"ZeroDivisionError: division by zero"``, ``"NoMethodError: no method named 'x'"``), the
shape most msgpack-RPC implementations send and every one can display. Any error object
is accepted from the peer and kept as :attr:`RemoteError.error`. A handler that raises
:class:`RemoteError` sends its ``error`` object unchanged (a Neovim-style
``[code, message]`` array, a map, ...).

How it works
------------
One reader task takes every decoded message the :class:`~wsframed.Framed` holds
(``recv_many``) and dispatches them in order. A response resolves the future of the
:meth:`RpcPeer.call` waiting for its msgid; responses may come in any order, and one
for a call that timed out or was cancelled is dropped. A request or notification runs
its handler: a sync handler runs right there, in the reader; an async one (or one that
returns an awaitable) becomes a task. At most ``max_concurrency`` handlers run at once;
further requests wait in a queue, in arrival order, and start as handlers finish.

Backpressure. Once ``max_concurrency`` requests are queued the reader stops reading,
so unread data backs up into the transport and the peer's writes block: memory and
tasks stay bounded. Except while calls made here are in flight: their responses may sit
behind the peer's requests (a handler calling back into the peer is the usual case), so
stopping could deadlock both ends. The reader then reads on, queues up to
``16 * max_concurrency`` requests and refuses further ones with a ``"BusyError: ..."``
error response (notifications are dropped, with a warning).

Writing has a single path, :meth:`RpcPeer._flush`, one flush at a time. Every frame is
encoded whole by ``Framed.feed``, so frames never interleave. Calls and notifications
made while others are in flight are flushed by a writer task once per turn of the
event loop, so they share one WebSocket message; the only call in flight is flushed at
once, for latency. The reader flushes the responses to a batch of requests before it
reads on (unless calls made here are in flight, as above), so a peer that stops reading
its responses stops being read. Senders wait while a flush is held up by the transport
or ``_WRITE_BATCH`` frames are waiting.

Errors::

    WsFramedError
    ├── RemoteError          the peer answered a call with an error (this module)
    ├── ConnectionClosed     the connection ended while calls were pending, or was gone
    └── ClosedStreamError    this side closed the peer (aclose()) and then used it
    TimeoutError             no response within the timeout (builtin)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar, overload

from .errors import ClosedStreamError, ConnectionClosed, EndOfStream, WsFramedError
from .framed import Framed

__all__ = ["NOTIFICATION", "REQUEST", "RESPONSE", "RemoteError", "RpcPeer"]

logger = logging.getLogger("wsframed.rpc")

REQUEST = 0
"""Type code of a request, ``[0, msgid, method, params]``."""
RESPONSE = 1
"""Type code of a response, ``[1, msgid, error, result]``."""
NOTIFICATION = 2
"""Type code of a notification, ``[2, method, params]``."""

_MAX_MSGID = 0xFFFF_FFFF
_QUEUE_FACTOR = 16  # requests queued at most, per max_concurrency, while calls are in flight
_WRITE_BATCH = 256  # frames waiting for a flush before senders wait for one
_ABNORMAL = 1006  # RFC 6455 7.1.5: closed without a close frame
_TYPE_PREFIX = re.compile(r"([A-Za-z_][\w.]*): ")

# Results that are certainly not awaitable, checked before inspect.isawaitable().
_PLAIN = frozenset({type(None), bool, int, float, str, bytes, list, tuple, dict})

Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)


class RemoteError(WsFramedError):
    """The peer answered a call with an error; :attr:`error` is its error object, as sent.

    ``str()`` gives the method and the remote message. Raise a ``RemoteError`` in a
    handler to send a particular error object unchanged (any other exception is sent
    as ``"<TypeName>: <message>"``).
    """

    def __init__(self, error: Any, *, method: str | None = None):
        self.error = error
        """The error object from the response (a string from most peers)."""
        self.method = method
        """The method called, when this error answers a call made here."""
        text = self.message
        super().__init__(f"{method!r} failed on the peer: {text}" if method else text)

    @property
    def message(self) -> str:
        """The remote message: the string itself, ``error[1]`` of a ``[code, message]``
        array, ``error["message"]`` of a map, else ``str(error)``."""
        error = self.error
        if isinstance(error, bytes):
            return error.decode("utf-8", "replace")
        if isinstance(error, (list, tuple)) and len(error) == 2 and isinstance(error[1], str):
            return error[1]
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        return str(error)

    @property
    def type_name(self) -> str | None:
        """The remote exception's type when the error names one, else ``None``.

        Taken from a ``"TypeName: message"`` string, a ``[type, message]`` array or a
        map's ``"type"`` entry.
        """
        error = self.error
        if isinstance(error, str):
            match = _TYPE_PREFIX.match(error)
            return match[1] if match else None
        if isinstance(error, (list, tuple)) and len(error) == 2 and isinstance(error[0], str):
            return error[0]
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
        return None

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_remote_error, (self.error, self.method))


def _rebuild_remote_error(error: Any, method: str | None) -> RemoteError:
    return RemoteError(error, method=method)


def _error_text(exc: BaseException) -> str:
    """The error a handler's exception is sent as: ``"<TypeName>: <message>"``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _closed(exc: BaseException) -> ConnectionClosed:
    """A fresh ConnectionClosed describing ``exc`` (a read or write failure)."""
    if isinstance(exc, ConnectionClosed):
        error = ConnectionClosed(exc.code, exc.reason)
        error.__cause__ = exc.__cause__
    else:
        text = str(exc)
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        error = ConnectionClosed(_ABNORMAL, reason)
        error.__cause__ = exc
    return error


class RpcPeer:
    """One end of a msgpack-RPC connection: it calls the peer and serves the peer's calls.

    ``framed`` is any :class:`~wsframed.Framed` whose codec carries arrays
    (``MsgpackCodec``, ``CborCodec``, ``JsonLinesCodec``), over a WebSocket or over TCP
    with :meth:`Framed.from_streams`. ``handlers`` maps method names to functions (see
    :meth:`register`). ``max_concurrency`` bounds the handlers running at once (see the
    module's "How it works"). ``request_timeout`` is the default ``timeout`` of
    :meth:`call`, in seconds (``None``: wait for ever).

    Run the dispatch loop with ``async with peer:`` (closed on exit) or
    ``await peer.serve()``; :meth:`call` and :meth:`notify` start it too if needed.
    """

    def __init__(
        self,
        framed: Framed[Any],
        *,
        handlers: Mapping[str, Handler] | None = None,
        max_concurrency: int = 64,
        request_timeout: float | None = None,
    ):
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise TypeError(f"max_concurrency must be an int, not {max_concurrency!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
        if request_timeout is not None and request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive or None, not {request_timeout}")
        self.framed = framed
        """The Framed this peer speaks over."""
        self.request_timeout = request_timeout
        self._limit = max_concurrency
        self._max_queued = _QUEUE_FACTOR * max_concurrency
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        for name, fn in (handlers or {}).items():
            self.register(name, fn)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_msgid = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        # Handlers: running tasks, and requests waiting for a slot, in arrival order.
        self._running = 0
        self._backlog: deque[Any] = deque()
        self._room: asyncio.Future[None] | None = None  # the reader waits for backlog room
        self._tasks: set[asyncio.Task[None]] = set()
        # Writing: _dirty when frames were fed since the last flush started.
        self._dirty = False
        self._unflushed = 0  # frames fed since the last flush started
        self._flushing = False
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._wakeup: asyncio.Future[None] | None = None  # the writer task's
        self._write_error: ConnectionClosed | None = None
        # Lifecycle.
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ended: ConnectionClosed | None = None  # the connection ended (reader done)
        self._closing = False  # aclose() started
        self._closed: asyncio.Future[None] | None = None

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
        """How many calls made here await their response."""
        return len(self._pending)

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """Call ``method`` on the peer with ``params``; return its result.

        Raises :class:`RemoteError` when the peer answers with an error,
        ``TimeoutError`` when no response came within ``timeout`` seconds (default:
        ``request_timeout``), ``ConnectionClosed`` when the connection ends first,
        ``ClosedStreamError`` after :meth:`aclose`, and the codec's ``TypeError`` /
        ``ValueError`` / ``FrameTooLarge`` for params it cannot encode (nothing sent).
        A timeout or a cancellation forgets the call: a late response is dropped. The
        request may have reached the peer, so its handler may still run there.
        """
        if self._reader is None or self._closing or self._ended or self._write_error:
            self._check_usable()
        pending = self._pending
        msgid = self._next_msgid
        while msgid in pending:  # wrapped around onto a call still in flight
            msgid = (msgid + 1) & _MAX_MSGID
        self._next_msgid = (msgid + 1) & _MAX_MSGID
        self._feed([REQUEST, msgid, method, list(params)])
        loop = self._loop
        assert loop is not None
        future = loop.create_future()
        pending[msgid] = future
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)  # the reader must read on: the response may be queued
        # The only call in flight flushes at once (no hop through the writer task);
        # calls made while others are in flight leave it to the writer, which sends
        # every request fed during this turn of the event loop in one message, unless
        # the transport is backed up or a full batch waits: then they flush (and wait).
        flush = len(pending) == 1 or self._flushing or self._unflushed >= _WRITE_BATCH
        if not flush:
            self._kick()
        if timeout is None:
            timeout = self.request_timeout
        try:
            if timeout is None:
                if flush:
                    await self._flush()
                response = await future
            else:
                try:
                    async with asyncio.timeout(timeout):
                        if flush:
                            await self._flush()
                        response = await future
                except TimeoutError:
                    raise TimeoutError(
                        f"no response to {method!r} (msgid {msgid}) within {timeout} s"
                    ) from None
        finally:
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
        a full batch waits, it flushes first and waits for the transport.
        Raises like :meth:`call` when the connection is gone or params cannot be encoded.
        """
        self._check_usable()
        self._feed([NOTIFICATION, method, list(params)])
        if self._flushing or self._unflushed >= _WRITE_BATCH:
            await self._flush()
        else:
            self._kick()

    def _check_usable(self) -> None:
        if self._closing:
            raise ClosedStreamError("this RpcPeer was closed (aclose()); make a new one")
        ended = self._ended or self._write_error
        if ended is not None:
            raise _closed(ended)
        if self._reader is None:
            self._start()

    # Lifecycle ----------------------------------------------------------------

    def _start(self) -> None:
        if self._reader is None:
            self._loop = loop = asyncio.get_running_loop()
            self._reader = loop.create_task(self._read_loop())
            self._writer = loop.create_task(self._write_loop())

    async def serve(self) -> None:
        """Run the dispatch loop until the connection ends, then close the peer.

        Returns normally however the connection ended (pending calls fail with
        ``ConnectionClosed``); cancelling it closes the peer.
        """
        if self._closing:
            raise ClosedStreamError("this RpcPeer was closed (aclose()); make a new one")
        self._start()
        assert self._reader is not None
        try:
            await asyncio.wait([self._reader])  # never raises the reader's cancellation
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop the dispatch loop, cancel running handlers and close the Framed.

        Pending calls fail with ``ClosedStreamError``. Responses already produced are
        flushed by the close. Idempotent; a handler may call it (it is not cancelled).
        """
        if self._closed is not None:
            await asyncio.shield(self._closed)
            return
        self._closed = asyncio.get_running_loop().create_future()
        self._closing = True
        try:
            current = asyncio.current_task()
            tasks = [t for t in (self._reader, self._writer, *self._tasks) if t is not None]
            tasks = [t for t in tasks if t is not current and not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            self._backlog.clear()
            self._fail_pending(lambda: ClosedStreamError("the RpcPeer was closed"))
            self._wake_flush_waiters()
            try:
                await self.framed.aclose()
            except OSError as exc:  # already gone: nothing left to close
                logger.debug("closing the Framed failed: %s", exc)
        finally:
            self._closed.set_result(None)

    async def __aenter__(self) -> Self:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _fail_pending(self, make_error: Callable[[], BaseException]) -> None:
        futures = list(self._pending.values())
        self._pending.clear()
        for future in futures:
            if not future.done():
                future.set_exception(make_error())

    def _end(self, error: ConnectionClosed) -> None:
        """The connection ended: fail pending calls, stop every task, refuse new calls."""
        if self._ended is not None:
            return
        self._ended = error
        self._fail_pending(lambda: _closed(error))
        self._backlog.clear()
        current = asyncio.current_task()
        for task in (self._reader, self._writer, *self._tasks):
            if task is not None and task is not current:
                task.cancel()
        self._wake_flush_waiters()

    # Reading and dispatching --------------------------------------------------

    async def _read_loop(self) -> None:
        framed = self.framed
        recv_many = framed.recv_many
        pending = self._pending
        backlog = self._backlog
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
                for message in batch:
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
                        if self._running < self._limit and not backlog:
                            self._dispatch(message)
                        elif not pending or len(backlog) < self._max_queued:
                            backlog.append(message)  # read on only while room is left
                        else:
                            self._refuse(message)
                    else:
                        self._malformed(message, "unknown type code or wrong length")
                # While calls made here are in flight, their responses may be queued
                # behind the peer's requests: block on nothing (not even a flush,
                # which waits for the peer to read) or both ends could wait for ever.
                if self._dirty:
                    if not pending:
                        await self._flush()
                    elif self._flushing and self._unflushed >= _WRITE_BATCH:
                        await self._flush()  # bounded: wait when the transport is full
                    else:
                        self._kick()
                while len(backlog) >= self._limit and not pending:
                    self._room = room = asyncio.get_running_loop().create_future()
                    await room
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, (OSError, WsFramedError)):
                logger.exception("msgpack-RPC reader failed")
            elif not isinstance(exc, ConnectionClosed):
                logger.warning("msgpack-RPC connection failed: %s", exc)
            self._end(_closed(exc))

    def _dispatch(self, message: Any) -> None:
        """Run the handler of a request or notification (a slot is free)."""
        if message[0] == REQUEST:
            if len(message) < 2:
                self._malformed(message, "a request needs 4 elements")
                return
            msgid = message[1]
            if type(msgid) is not int or not 0 <= msgid <= _MAX_MSGID:
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
            self._invalid(msgid, message, f"the method must be a string, not {method!r:.80}")
            return
        if not isinstance(params, (list, tuple)):
            self._invalid(msgid, message, f"params must be an array, not {params!r:.80}")
            return
        entry = self._handlers.get(method)
        if entry is None:
            if msgid is None:
                logger.warning("notification of unknown method %r ignored", method)
            else:
                self._reply_error(msgid, f"NoMethodError: no method named {method!r}")
            return
        fn, is_async = entry
        try:
            result = fn(*params)
        except Exception as exc:
            self._handler_failed(msgid, method, exc)
            return
        if is_async or (type(result) not in _PLAIN and inspect.isawaitable(result)):
            self._running += 1
            loop = asyncio.get_running_loop()
            task = loop.create_task(self._run_handler(msgid, method, result))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._handler_done, result))
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

    def _handler_done(self, result: Awaitable[Any], task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if inspect.iscoroutine(result):
            result.close()  # a task cancelled before it started never awaited it

    def _refuse(self, message: Any) -> None:
        """The queue is full while calls made here are in flight: refuse, never block."""
        queued = len(self._backlog)
        msgid = message[1] if message[0] == REQUEST and len(message) > 1 else None
        if type(msgid) is int and 0 <= msgid <= _MAX_MSGID:
            logger.warning("refused request %d: %d requests already queued", msgid, queued)
            self._reply_error(msgid, f"BusyError: {queued} requests already queued")
        else:
            logger.warning("dropped a notification: %d requests already queued", queued)

    def _release(self) -> None:
        """A handler task finished: start queued requests while slots are free."""
        self._running -= 1
        if self._closing or self._ended is not None:
            return
        backlog = self._backlog
        while backlog and self._running < self._limit:
            self._dispatch(backlog.popleft())
        room = self._room
        if room is not None and len(backlog) < self._limit and not room.done():
            room.set_result(None)
        if self._dirty:
            self._kick()

    def _handler_failed(self, msgid: int | None, method: str, exc: Exception) -> None:
        if isinstance(exc, RemoteError):
            logger.debug("handler of %r raised RemoteError(%r)", method, exc.error)
            error: Any = exc.error
        else:
            logger.info("handler of %r raised %s", method, _error_text(exc), exc_info=exc)
            error = _error_text(exc)
        if msgid is not None:
            self._reply_error(msgid, error)

    def _reply(self, msgid: int, result: Any) -> None:
        try:
            self._feed([RESPONSE, msgid, None, result])
        except (TypeError, ValueError) as exc:  # FrameTooLarge is a ValueError
            logger.warning("cannot encode the result for msgid %d: %s", msgid, exc)
            self._reply_error(msgid, f"{type(exc).__name__}: cannot encode the result: {exc}")
        except ClosedStreamError:
            pass

    def _reply_error(self, msgid: int, error: Any) -> None:
        try:
            try:
                self._feed([RESPONSE, msgid, error, None])
            except (TypeError, ValueError) as exc:
                logger.warning("cannot encode the error for msgid %d: %s", msgid, exc)
                self._feed([RESPONSE, msgid, f"{type(exc).__name__}: unencodable error", None])
        except ClosedStreamError:
            pass

    def _invalid(self, msgid: int | None, message: Any, why: str) -> None:
        """A request or notification the spec does not allow: log, answer if a request."""
        self._malformed(message, why)
        if msgid is not None:
            self._reply_error(msgid, f"InvalidRequest: {why}")

    def _malformed(self, message: Any, why: str) -> None:
        logger.warning("malformed msgpack-RPC message from the peer (%s): %.200r", why, message)

    def _unmatched(self, message: Any) -> None:
        if type(message[1]) is int:  # a call that timed out or was cancelled here
            logger.debug("dropped the response to msgid %r: no call waits for it", message[1])
        else:
            self._malformed(message, "the msgid of a response must be a uint32")

    # Writing ------------------------------------------------------------------

    def _feed(self, message: Any) -> None:
        """Encode and buffer one message (the codec's errors leave nothing buffered)."""
        self.framed.feed(message)
        self._dirty = True
        self._unflushed += 1

    def _kick(self) -> None:
        """Frames were fed: have the writer task flush them this turn of the loop."""
        self._dirty = True
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._closing and self._ended is None:
                if self._dirty:
                    await self._flush()
                else:
                    self._wakeup = wakeup = loop.create_future()
                    await wakeup
                    self._wakeup = None
        except (OSError, WsFramedError) as exc:
            self._end(_closed(exc))

    async def _flush(self) -> None:
        """The one write path: flush what was fed, one flush at a time.

        Returns once a flush that started after the last feed has finished.
        """
        while self._dirty and not self._closing and self._ended is None:
            if self._write_error is not None:
                raise _closed(self._write_error)
            if self._flushing:
                await self._wait_flush()
                continue
            self._dirty = False
            self._unflushed = 0
            self._flushing = True
            try:
                await self.framed.flush()
            except asyncio.CancelledError:
                self._kick()  # what was not sent stays buffered: the writer sends it
                raise
            except (OSError, WsFramedError) as exc:
                self._write_error = _closed(exc)
                raise self._write_error from exc
            finally:
                self._flushing = False
                self._wake_flush_waiters()

    async def _wait_flush(self) -> None:
        """Wait for the flush in progress to end (backpressure for senders)."""
        waiter = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(waiter)
        await waiter

    def _wake_flush_waiters(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
