"""The sans-I/O core of [`WsStream`][wsframed.WsStream]: its state and every decision.

``StreamCore`` holds, without any I/O or event loop, what a byte stream over WebSocket
messages has to remember and decide:

- the read buffer, how bytes are taken out of it, and ``readuntil()``'s search step
  (where the scan resumes, and the ``limit`` it enforces);
- what a received message adds to the stream: empty messages skipped, text messages
  under the text policy (``"reject"``, ``"bytes"``, ``"ignore"``);
- the end of the stream and its failures: a clean end, the abnormal end, the rejected
  text, each raised to readers after the bytes received before it, and the first of
  them announced as the one [`Error`][wsframed.events.Error] event;
- the event observers and the order events reach them;
- the write buffer and how it is cut into messages of at most ``write_chunk_size``.

[`WsStream`][wsframed.WsStream] (``wsframed.stream``) is the shell around it: it
receives and sends messages through a backend, waits, and runs background work
through a loop shell (``wsframed.loops``), asyncio's or trio's. Whatever the shell
must do in reply to a decision here (start a close, discard messages, read the
backend's end) it provides as the three hooks at the bottom of the class. Only
asyncio's ``StreamReader`` exception classes are imported from asyncio: they are the
names the read methods promise, on either loop.
"""

from __future__ import annotations

from asyncio.exceptions import LimitOverrunError
from collections import deque
from collections.abc import Iterable
from typing import Literal

from .backends import BackendClosed
from .errors import ClosedStreamError, ConnectionClosed, ProtocolError
from .events import Error, Event, TextMessage
from .subscription import EventSubscription

__all__ = ["StreamCore", "TextPolicy"]

TextPolicy = Literal["reject", "bytes", "ignore"]
"""What a [`WsStream`][wsframed.WsStream] does with text messages (its ``text`` argument)."""

_TEXT_POLICIES = ("reject", "bytes", "ignore")
_UNSUPPORTED_DATA = 1003  # RFC 6455 section 7.4.1: "a type of data it cannot accept"
_VIEW_MIN = 8192  # reads at least this long are copied out through a memoryview


class StreamCore:
    """The state of a byte stream over WebSocket messages, and its transitions (no I/O)."""

    # Slots, not a __dict__: with the shell's attributes a stream has more than the 30 a
    # shared-key __dict__ holds, and its own dict cost 1.5 KiB per connection.
    __slots__ = (
        "__weakref__",  # a stream could be weakly referenced before; it still can
        "_announced",
        "_buffer",
        "_discarding",
        "_end_error",
        "_eof",
        "_event_queue_size",
        "_limit",
        "_pending",
        "_pending_size",
        "_read_error",
        "_reader_active",
        "_subscribers",
        "_text",
        "_text_ended_reads",
        "_text_ends_reads",
        "_text_error",
        "_texts_unreported",
        "_write_chunk_size",
        "_write_closed",
    )

    def __init__(
        self, text: TextPolicy, write_chunk_size: int, limit: int, event_queue_size: int
    ) -> None:
        if text not in _TEXT_POLICIES:
            raise ValueError(f"text must be one of {_TEXT_POLICIES}, not {text!r}")
        for name, value in (
            ("write_chunk_size", write_chunk_size),
            ("limit", limit),
            ("event_queue_size", event_queue_size),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be a positive number of bytes, not {value}")
        self._subscribers: list[EventSubscription] = []
        self._text: TextPolicy = text
        self._write_chunk_size = write_chunk_size
        self._limit = limit
        self._event_queue_size = event_queue_size

        # Read side.
        self._buffer = bytearray()
        self._eof = False  # the connection delivered its last message
        self._read_error: BaseException | None = None  # raised once _buffer is empty
        self._reader_active = False
        self._discarding = False  # aclose() or a rejected text took the read side

        # Failures: the first one, in stream order, is announced as the Error event.
        self._text_error: ProtocolError | None = None  # text='reject': the first text message
        self._end_error: ConnectionClosed | None = None  # the connection ended abnormally
        self._announced = False
        # Text messages that arrived before this stream could observe them: reported
        # when read, or before Closed, whichever comes first. None while there are none
        # (nearly always): an empty deque costs 760 bytes per idle connection.
        self._texts_unreported: deque[int] | None = None
        # The bridge's half-close (wsframed.bridge): a text message is the peer's end of
        # bytes, seen by reads exactly where it stands among the messages.
        self._text_ends_reads = False
        self._text_ended_reads = False

        # Write side. The chunks written and not sent: None until the first write(),
        # so an idle connection holds no deque (760 bytes); then kept for the next.
        self._pending: deque[bytes | memoryview] | None = None
        self._pending_size = 0
        self._write_closed = False

    # Events -------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        for subscription in tuple(self._subscribers):
            subscription._push(event)

    def _on_backend_event(self, event: Event) -> None:
        """A frame arrived (the backend reports it before any reader takes it)."""
        if self._texts_unreported:
            self._report_early_texts()  # they arrived before this frame
        self._note_event(event)

    def _note_event(self, event: Event) -> None:
        self._emit(event)
        if isinstance(event, TextMessage) and self._text == "reject" and self._text_error is None:
            # Decided as the frame arrives, so Error follows TextMessage in wire order
            # (and precedes Closed); the reader gets this same exception when it
            # reaches the message, after the bytes before it.
            self._text_error = ProtocolError(
                f"received a text message of {event.size} bytes; this stream carries "
                "binary messages only (text='reject'): closing with 1003"
            )
            self._announce(self._text_error)

    def _report_early_texts(self) -> None:
        """Report the text messages that arrived before this stream could observe them."""
        sizes = self._texts_unreported
        if not sizes:
            return
        self._texts_unreported = None
        for size in sizes:
            self._note_event(TextMessage(size))

    def _announce(self, exc: BaseException) -> None:
        """Emit the one Error event of this stream: its first failure in stream order."""
        if not self._announced:
            self._announced = True
            self._emit(Error(exc))

    # Reading ------------------------------------------------------------------

    def _record_end(self, closed: BackendClosed) -> None:
        if closed.clean:
            self._eof = True
        else:
            self._fail_reading(self._end_error_for(closed))

    def _end_error_for(self, closed: BackendClosed) -> ConnectionClosed:
        """The one exception for an abnormal end, whoever sees the end first."""
        if self._end_error is None:
            self._end_error = ConnectionClosed(closed.code, closed.reason)
            self._announce(self._end_error)
        return self._end_error

    def _accepted(self, message: bytes | str) -> bytes | None:
        """The bytes a received message adds to the stream; None to skip it."""
        if isinstance(message, str):
            return self._on_text(message) or None  # an empty text message adds nothing
        return message or None

    def _on_text(self, message: str) -> bytes | None:
        # The TextMessage event was emitted when the message arrived, unless it
        # arrived before the stream was created: then it is emitted now.
        unreported = self._texts_unreported
        if unreported:
            size = unreported.popleft()
            if not unreported:
                self._texts_unreported = None  # the last one
            self._note_event(TextMessage(size))
        if self._text_ends_reads:
            self._text_ended_reads = self._eof = True
            return None
        if self._text == "bytes":
            return message.encode()
        if self._text == "reject":
            error = self._text_error
            if error is None:  # a backend that did not report the message's arrival
                error = ProtocolError(
                    f"received a text message of {len(message.encode())} bytes; this "
                    "stream carries binary messages only (text='reject'): closing with 1003"
                )
                self._text_error = error
            self._fail_reading(error)
            self._start_close(_UNSUPPORTED_DATA, "text messages are not accepted")
            self._start_discarding()
        return None

    def _fail_reading(self, exc: BaseException) -> None:
        if self._read_error is None:
            self._read_error = exc
            self._announce(exc)

    def _enter_read(self) -> None:
        if self._reader_active:
            raise RuntimeError("another coroutine is already waiting to read this stream")
        if self._discarding:
            # aclose() or a rejected text message took the read side: only what was
            # buffered before is left, then the end (or the error) of the stream.
            self._eof = True
        self._reader_active = True

    def _raise_if_failed(self) -> None:
        """``read(0)``/``readexactly(0)``: raise the stream's error once nothing precedes it."""
        self._peek_end()
        if self._read_error is not None and not self._buffer:
            raise self._read_error.with_traceback(None)  # a traceback that does not grow

    def _take(self, n: int) -> bytes:
        """Remove and return the first ``n`` buffered bytes, copied once."""
        buffer = self._buffer
        if n < _VIEW_MIN:
            data = bytes(buffer[:n])  # for a few bytes, cheaper than a memoryview
        else:
            with memoryview(buffer) as view:
                data = view[:n].tobytes()
        del buffer[:n]
        return data

    def _take_all(self) -> bytes:
        """Remove and return every buffered byte (the partial bytes of an early end)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def _scan(self, separator: bytes, offset: int) -> tuple[int, int]:
        """One step of ``readuntil()``'s search: ``(index, offset)``.

        ``index`` is where ``separator`` starts in the buffer, or -1 when it is not
        there yet; ``offset`` is where the next step resumes. No separator starts before
        ``offset``; with a separator of k bytes the last k - 1 bytes searched may begin
        one, so they are searched again. These are asyncio.StreamReader's rules, so
        ``consumed`` and when the limit is hit are the same as there. Raises
        ``LimitOverrunError`` (the bytes stay buffered) once ``limit`` bytes were
        searched in vain, or when the separator starts past ``limit``.
        """
        buffer = self._buffer
        limit = self._limit
        seplen = len(separator)
        size = len(buffer)
        if size - offset >= seplen:
            index = buffer.find(separator, offset)
            if index >= 0:
                if index > limit:
                    raise LimitOverrunError(
                        f"separator found {index} bytes in, past the limit of {limit} bytes",
                        index,
                    )
                return index, offset
            offset = size + 1 - seplen
            if offset > limit:
                raise LimitOverrunError(
                    f"no separator in the first {offset} bytes buffered, over "
                    f"the limit of {limit} bytes",
                    offset,
                )
        return -1, offset

    def at_eof(self) -> bool:
        """Return True when the buffer is empty and the stream has ended.

        As on ``asyncio.StreamReader``, True as soon as the peer's clean close has
        arrived with nothing left before it, before any read returned ``b""``.
        """
        if not self._buffer and not (self._eof or self._discarding):
            self._peek_end()
        return not self._buffer and (self._eof or self._discarding)

    # Writing ------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer ``data`` for sending; call [`drain`][wsframed.WsStream.drain] to send it.

        Raises [`ClosedStreamError`][wsframed.errors.ClosedStreamError] after ``send_eof()`` or a
        close. The buffer is not bounded: drain regularly. A ``bytearray`` is copied
        (the caller may reuse it); ``bytes`` and ``memoryview`` are kept as they are.
        """
        if self._write_closed:
            raise ClosedStreamError("cannot write: this stream's write side is closed")
        if data:
            if isinstance(data, bytearray):
                data = bytes(data)
            pending = self._pending
            if pending is None:
                pending = self._pending = deque()
            pending.append(data)
            self._pending_size += len(data)

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Buffer every chunk in ``chunks``, as [`write`][wsframed.WsStream.write] does."""
        for chunk in chunks:
            self.write(chunk)

    @property
    def write_buffer_size(self) -> int:
        """Bytes written and not yet sent."""
        return self._pending_size

    def _take_message(self) -> bytes | memoryview:
        """Remove and return the next message of at most write_chunk_size bytes."""
        pending = self._pending
        assert pending  # called only while bytes are pending
        size = self._write_chunk_size
        if len(pending) > 1 and len(pending[0]) < size:
            # Small writes: join them all with one copy (joining them message by
            # message would copy as much) and cut the messages out of the result.
            joined = b"".join(pending)
            pending.clear()
            pending.append(joined)
        first = pending[0]
        if len(first) <= size:
            pending.popleft()
            message = first
        else:
            view = first if isinstance(first, memoryview) else memoryview(first)
            message, pending[0] = view[:size], view[size:]
        self._pending_size -= len(message)
        return message

    def can_write_eof(self) -> bool:
        """Return True: a WebSocket can close its write side (the close frame)."""
        return True

    # What the shell provides ----------------------------------------------------

    def _start_close(self, code: int, reason: str) -> None:
        """Close the write side and send a close frame (in the background)."""
        raise NotImplementedError

    def _start_discarding(self) -> None:
        """Read and drop the remaining messages so the close handshake completes."""
        raise NotImplementedError

    def _peek_end(self) -> None:
        """With nothing buffered, take the connection's end if nothing is left before it."""
        raise NotImplementedError
