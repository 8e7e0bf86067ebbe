"""The websockets backend: ``websockets.asyncio`` client and server connections.

Everything here uses websockets' documented API except three things:

- websockets does not report the ping, pong and close frames it receives, nor when a
  text message arrives. `_observe_frames()` wraps the connection's
  ``process_event`` method, the one place every received frame passes through. It is
  checked when a stream is created and covered by a test, so a websockets release
  that changes it fails loudly instead of silently losing events.
- one message per ``recv()`` and a context manager per ``send()`` cost more than a
  byte stream needs when a peer sends many small messages. ``_fast_paths`` takes
  the binary messages already queued together and sends a binary message in three
  inline steps; both check the internals they use when the stream is created and
  fall back to ``recv()`` and ``send()`` if those change.
- a task per stream awaiting ``wait_closed()`` would be most of what an idle
  connection holds of wsframed's: ``on_closed`` puts a callback on the future
  ``wait_closed()`` awaits instead, and the stream falls back to the task without it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeGuard

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State

from ..events import CloseFrame, Ping, Pong, TextMessage
from . import BackendClosed, EventSink

__all__ = ["WebsocketsBackend", "is_websockets_connection"]

# Codes after which a peer-initiated close counts as a normal end of stream. 1005
# means the close frame carried no code, which RFC 6455 section 7.1.5 treats as normal.
_NORMAL_CODES = frozenset({1000, 1001, 1005})
# RFC 6455 section 5.5: control frames are those whose opcode has the high bit set.
_FIRST_CONTROL = 0x8


def is_websockets_connection(connection: object) -> TypeGuard[Connection]:
    """Return whether ``connection`` is a ``websockets.asyncio`` connection."""
    return isinstance(connection, Connection)


def _end(rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None) -> BackendClosed:
    if rcvd is None:
        return BackendClosed(1006, "", clean=False)
    started_here = rcvd_then_sent is False
    clean = sent is not None and (started_here or rcvd.code in _NORMAL_CODES)
    return BackendClosed(rcvd.code, rcvd.reason, clean=clean)


def _closed_from(exc: WsConnectionClosed) -> BackendClosed:
    return _end(exc.rcvd, exc.sent, exc.rcvd_then_sent)


# websockets writes a pong for each ping as it parses it, whether or not the peer
# reads: a peer that sends pings and never reads would grow the write buffer without
# bound. Past this many buffered bytes at a ping, the connection is dropped.
_PONG_BACKLOG_LIMIT = 4 * 1024 * 1024


def _observe_frames(
    connection: Any,
    on_event: EventSink,
    queued: Iterable[Frame] | None,
    connection_class: type = Connection,
) -> list[int]:
    """Report control frames and text messages to ``on_event`` as they are parsed.

    A text message is reported when its last frame arrives (before any reader takes it
    from the queue), so its event comes in wire order with the ping, pong and close
    frames, and always before the end of the connection. Returns the sizes of the whole
    text messages already in ``queued`` (websockets' frame queue), which arrived
    before anything could observe them. ``connection_class`` is the connection's
    websockets class (``websockets.trio`` shares this hook).
    """
    original = connection.process_event
    if not callable(original) or "process_event" not in vars(connection_class):
        raise RuntimeError(
            "this websockets release has no Connection.process_event; wsframed "
            "cannot observe control frames (see wsframed/backends/websockets.py)"
        )

    binary, text = Opcode.BINARY, Opcode.TEXT
    text_size = -1  # UTF-8 bytes of the text message being received; -1: none
    texts_queued: list[int] = []
    for frame in queued or ():
        if frame.opcode is text:
            text_size = len(frame.data)
        elif frame.opcode is Opcode.CONT and text_size >= 0:
            text_size += len(frame.data)
        if frame.fin and text_size >= 0:
            texts_queued.append(text_size)
            text_size = -1

    def process_event(event: Any) -> None:
        nonlocal text_size
        original(event)
        if not isinstance(event, Frame):
            return
        opcode = event.opcode
        if opcode is binary:  # nearly every event: nothing to report
            return
        if opcode < _FIRST_CONTROL:  # a text frame, or a continuation
            if opcode is text:
                text_size = len(event.data)
            elif text_size < 0:  # a continuation of a binary message
                return
            else:
                text_size += len(event.data)
            if event.fin:
                on_event(TextMessage(text_size))
                text_size = -1
            return
        if opcode is Opcode.PING:
            on_event(Ping(bytes(event.data)))
            # (websockets.trio has no transport: it awaits each pong's write before it
            # reads on, so a peer that does not read stops being read.)
            transport = getattr(connection, "transport", None)
            if transport is not None and transport.get_write_buffer_size() > _PONG_BACKLOG_LIMIT:
                # The peer pings but does not read the pongs (nor anything else): a
                # close frame would not be read either, so drop the connection.
                transport.abort()
        elif opcode is Opcode.PONG:
            on_event(Pong(bytes(event.data)))
        elif opcode is Opcode.CLOSE:
            try:
                close = Close.parse(bytes(event.data))
            except Exception:  # websockets already failed the connection for it
                return
            on_event(CloseFrame(close.code, close.reason))

    # An instance attribute shadows the method: data_received() calls
    # self.process_event(event) for every frame the protocol parsed.
    connection.process_event = process_event
    return texts_queued


# Small binary messages that have already arrived are returned together, up to this
# many bytes (or one message, if larger): the stream's buffer holds at most its limit
# plus max(one message, _BATCH_MAX) bytes.
_BATCH_MAX = 16 * 1024


def _batched_receive(connection: Connection) -> Callable[[], Awaitable[bytes | str]]:
    """The connection's ``recv``, returning every small binary message already queued.

    One ``recv()`` per message costs a coroutine, the assembler's bookkeeping and a
    pass of the stream and its decoder per message; a peer sending one small message
    per item outpaces that. After ``recv()`` returns a binary message, whole binary
    messages waiting in websockets' queue of frames are taken too (without waiting),
    joined in one copy, and the queue's flow control is told, as ``recv()`` does.
    Text messages and fragmented ones stay for the next ``recv()``.
    """
    recv = connection.recv
    assembler = connection.recv_messages
    frames = assembler.frames.queue
    maybe_resume = assembler.maybe_resume
    binary = Opcode.BINARY

    async def receive() -> bytes | str:
        message = await recv()
        if not frames or type(message) is not bytes:
            return message
        size = len(message)
        parts: list[bytes | bytearray | memoryview] = [message]
        while frames:
            frame = frames[0]
            if frame.opcode is not binary or not frame.fin:
                break
            data = frame.data
            size += len(data)
            if size > _BATCH_MAX:
                break
            frames.popleft()
            parts.append(data)
        if len(parts) == 1:
            return message
        maybe_resume()
        return b"".join(parts)

    return receive


def _direct_send(
    connection: Connection,
) -> tuple[Callable[[bytes | memoryview], Awaitable[None]], Callable[[bytes | memoryview], bool]]:
    """The connection's ``send`` for one binary message, without its context manager,
    and the same without a wait (``send_nowait``: False, nothing sent, where it would
    have to wait or hand over to ``send()``).

    While the connection is open, no fragmented message is being sent and the
    transport is not paused, ``send()`` frames the message, writes it, and returns;
    this does the same three steps inline and waits in ``drain()`` only if the write
    paused the transport. Anything else (closing, paused, a fragmented send from
    other code) goes to ``send()`` itself, which raises or waits as it should.
    """
    send = connection.send
    protocol = connection.protocol
    send_binary = protocol.send_binary
    send_data = connection.send_data
    drain = connection.drain
    transport = connection.transport
    is_open = State.OPEN

    def send_nowait(data: bytes | memoryview) -> bool:
        # The stream's fastest path (WsStream._send_whole_nowait): a message that
        # pauses the transport is sent, and the next one waits.
        if (
            protocol.state is is_open
            and connection.send_in_progress is None
            and not connection.paused
            and not transport.is_closing()
        ):
            send_binary(data)
            send_data()
            return True
        return False

    async def direct_send(data: bytes | memoryview) -> None:
        if send_nowait(data):
            if connection.paused:
                try:
                    await drain()
                except Exception as exc:  # the connection was lost while waiting
                    transport.abort()
                    await connection.wait_closed()
                    raise protocol.close_exc from exc
            return
        await send(data)

    return direct_send, send_nowait


# What _batched_receive and _direct_send use of websockets beyond its documented API.
_CONNECTION_INTERNALS = ("recv_messages", "send_in_progress", "paused", "send_data", "drain")


def _fast_paths(
    connection: Connection,
) -> tuple[
    Callable[[], Awaitable[bytes | str]],
    Callable[[bytes | memoryview], Awaitable[None]],
    Callable[[bytes | memoryview], bool] | None,
]:
    """``(receive, send, send_nowait)`` for the stream: the fast ones, or the
    connection's own (and no ``send_nowait``).

    The fast paths rely on websockets internals (checked here): with a release that
    changes them, the stream falls back to ``recv()`` and ``send()``, slower per
    message but correct.
    """
    assembler = getattr(connection, "recv_messages", None)
    frames = getattr(getattr(assembler, "frames", None), "queue", None)
    if (
        all(hasattr(connection, name) for name in _CONNECTION_INTERNALS)
        and isinstance(frames, deque)
        and callable(getattr(assembler, "maybe_resume", None))
        and callable(getattr(connection.protocol, "send_binary", None))
    ):
        return (_batched_receive(connection), *_direct_send(connection))
    return connection.recv, connection.send, None


class WebsocketsBackend:
    """Adapts a ``websockets.asyncio`` connection to ``Backend``.

    Besides the ``Backend`` methods it offers the fast path
    [`WsStream`][wsframed.WsStream] looks for: ``raw_receive`` and ``raw_send`` (see
    ``_fast_paths``) raise websockets' own exceptions, which the stream turns
    into ``BackendClosed`` with ``closed_from``: one
    coroutine less per message each way. And ``send_nowait``, as picows' backend has
    it: a message sent with no coroutine at all while the transport is not paused.
    """

    # One per connection: slots, not a __dict__ (the trio subclass adds its own).
    __slots__ = (
        "_frames",
        "_peek_clean",
        "_peek_first",
        "connection",
        "raw_receive",
        "raw_send",
        "send_nowait",
        "texts_before_wrap",
    )

    closed_errors: tuple[type[BaseException], ...] = (WsConnectionClosed,)

    def __init__(self, connection: Connection, on_event: EventSink):
        self.connection = connection
        self.raw_receive, self.raw_send, send_nowait = _fast_paths(connection)
        if send_nowait is not None:  # (unset, the stream sees none)
            self.send_nowait = send_nowait
        frames = getattr(getattr(connection.recv_messages, "frames", None), "queue", None)
        # websockets' queue of received frames, if this release keeps it where
        # _fast_paths() expects it: without it, peek_end() cannot tell it is empty.
        self._frames: deque[Frame] | None = frames if isinstance(frames, deque) else None
        # What peek_end() scanned: the first queued frame then, and how many frames
        # from it were empty binary messages (-1: one was something else).
        self._peek_first: Frame | None = None
        self._peek_clean = 0
        self.texts_before_wrap = _observe_frames(connection, on_event, self._frames)
        """Sizes of the text messages queued before the stream existed, in order."""

    @staticmethod
    def closed_from(exc: BaseException) -> BackendClosed:
        """Translate one of ``closed_errors`` raised by ``raw_receive``/``raw_send``."""
        assert isinstance(exc, WsConnectionClosed)
        return _closed_from(exc)

    async def receive(self) -> bytes | str:
        try:
            return await self.connection.recv()
        except WsConnectionClosed as exc:
            raise _closed_from(exc) from exc

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.connection.send(data)
        except WsConnectionClosed as exc:
            raise _closed_from(exc) from exc

    async def close(self, code: int, reason: str) -> None:
        await self.connection.close(code, reason)

    def abort(self) -> None:
        transport = getattr(self.connection, "transport", None)
        if transport is not None:
            transport.abort()

    async def wait_closed(self) -> None:
        await self.connection.wait_closed()

    def on_closed(self, callback: Callable[[], None]) -> bool:
        """Call ``callback()`` once the connection is closed; False if it cannot.

        Instead of a task per stream awaiting ``wait_closed()`` (a task, two coroutines
        and a future held by every idle connection), a callback on the future
        ``wait_closed()`` awaits. The future is an internal of websockets: without it
        (another release; websockets.trio) this returns False and the stream watches
        with a task.
        """
        waiter = getattr(self.connection, "connection_lost_waiter", None)
        if not isinstance(waiter, asyncio.Future):
            return False
        waiter.add_done_callback(lambda _: callback())
        return True

    async def ping(self, data: bytes) -> float:
        # Timed here: websockets times pings with loop.time(), whose resolution is a
        # millisecond under uvloop (a loopback round trip would read 0.0).
        start = time.perf_counter()
        try:
            waiter = await self.connection.ping(data or None)
            await waiter
            return time.perf_counter() - start
        except WsConnectionClosed as exc:
            raise _closed_from(exc) from exc

    def ended(self) -> BackendClosed | None:
        protocol = self.connection.protocol
        if protocol.state is State.CLOSED:
            return _end(protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent)
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        if rcvd is None or sent is None:
            return None  # open, or waiting for the peer's close reply
        # Close frames went both ways: websockets parses nothing after the peer's close
        # frame, so how it ended is settled before TCP goes.
        return _end(rcvd, sent, protocol.close_rcvd_then_sent)

    def peek_end(self) -> BackendClosed | None:
        frames = self._frames
        if frames is None:
            return None
        # Empty binary messages still queued carry no byte: the end is behind them.
        # websockets parses every frame of a received chunk before max_queue pauses
        # reading, so a peer can queue tens of thousands of them (15,000 from one
        # 64 KiB write): scanned again on every call, a loop of at_eof() or read(0)
        # calls cost 0.5 ms each. Frames leave only from the left and arrive on the
        # right, so while the first frame is the same object, the frames scanned
        # before are unchanged: each call scans only the frames that arrived since.
        binary = Opcode.BINARY
        if not frames:
            self._peek_first = None
            return self.ended()
        first = frames[0]
        if first.data or first.opcode is not binary or not first.fin:
            self._peek_first = None  # not kept: it may hold a whole message
            return None
        if first is not self._peek_first:
            self._peek_first = first  # an empty frame: keeping it costs nothing
            self._peek_clean = 0
        clean = self._peek_clean  # frames known to be empty binary messages; -1: not all
        if clean < 0:
            return None
        new = len(frames) - clean
        if new:
            for frame in reversed(frames):
                if frame.data or frame.opcode is not binary or not frame.fin:
                    self._peek_clean = -1  # it stays ahead of the end until first goes
                    return None
                new -= 1
                if not new:
                    break
            self._peek_clean = len(frames)
        return self.ended()

    def closed_with(self) -> tuple[int, str] | None:
        code = self.connection.close_code
        if code is None:
            return None
        return code, self.connection.close_reason or ""

    def extra_info(self, name: str, default: Any) -> Any:
        connection = self.connection
        if name == "connection":
            return connection
        if name == "subprotocol":
            return connection.subprotocol
        transport = getattr(connection, "transport", None)
        if transport is None:
            return default
        return transport.get_extra_info(name, default)
