"""Exceptions raised by wsframed.

Every exception derives from [`WsFramedError`][wsframed.errors.WsFramedError]::

    WsFramedError
    ├── FrameTooLarge        a frame over max_frame_size (ValueError too)
    ├── DecodeError          malformed bytes from the peer (ValueError too)
    │   └── IncompleteFrame  the stream ended inside a frame
    ├── ProtocolError        the peer broke a WebSocket-level rule wsframed enforces
    ├── ConnectionClosed     the connection ended abnormally (ConnectionError too)
    ├── ClosedStreamError    this side already closed what it is using (RuntimeError too)
    └── EndOfStream          the peer finished cleanly (anyio.EndOfStream too)

A failed decoder raises the *same* exception object again on every later use, so
``except`` clauses can compare identity; its traceback grows with each raise.

Errors say who was wrong. ``FrameTooLarge.local`` is true when *this* side tried to
encode an oversized frame (nothing was written, the connection is still usable) and
false when the peer sent one (the decoder is failed where the codec cannot resync).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "ClosedStreamError",
    "ConnectionClosed",
    "DecodeError",
    "EndOfStream",
    "FrameTooLarge",
    "IncompleteFrame",
    "ProtocolError",
    "WsFramedError",
]

if TYPE_CHECKING:  # pragma: no cover - the type checker sees the plain base
    _AnyioEndOfStream = Exception
else:
    try:  # anyio's stream wrappers recognise the end of a stream only by this type
        from anyio import EndOfStream as _AnyioEndOfStream
    except ImportError:  # pragma: no cover - anyio is optional
        _AnyioEndOfStream = Exception


class WsFramedError(Exception):
    """Base class of every exception wsframed raises."""


class FrameTooLarge(WsFramedError, ValueError):
    """A frame exceeds the codec's ``max_frame_size``.

    ``size`` is the frame's payload size in bytes, or the smallest size it is known to
    have when the frame was refused before its end arrived (``at_least``). ``limit`` is
    the ``max_frame_size`` in force; ``offset`` is where the frame starts in the
    decoded stream, when known. ``local`` tells who was wrong: ``True`` when this
    side tried to encode the frame (nothing was buffered or written, send smaller
    frames or raise the limit), ``False`` when the peer sent it.
    """

    def __init__(
        self,
        size: int,
        limit: int,
        *,
        local: bool = False,
        at_least: bool = False,
        offset: int | None = None,
    ):
        self.size = size
        self.limit = limit
        self.local = local
        self.at_least = at_least
        self.offset = offset
        who = "frame to encode" if local else "received frame"
        qualifier = "at least " if at_least else ""
        message = f"{who} of {qualifier}{size} bytes exceeds the limit of {limit} bytes"
        if offset is not None:
            message += f" (frame starting at stream offset {offset})"
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_too_large,
            (self.size, self.limit, self.local, self.at_least, self.offset),
        )


def _rebuild_too_large(
    size: int, limit: int, local: bool, at_least: bool, offset: int | None
) -> FrameTooLarge:
    return FrameTooLarge(size, limit, local=local, at_least=at_least, offset=offset)


class DecodeError(WsFramedError, ValueError):
    """The peer sent bytes that the codec cannot decode.

    ``offset`` is the position in the decoded stream where the bad frame starts, when
    the codec knows it. The codec library's own exception, if any, is the
    ``__cause__``. Codecs that cannot resynchronise stay failed: every later
    iteration raises this same error again.
    """

    def __init__(self, message: str, *, offset: int | None = None):
        self.offset = offset
        if offset is not None:
            message = f"{message} (frame starting at stream offset {offset})"
        super().__init__(message)


class IncompleteFrame(DecodeError):
    """The stream ended in the middle of a frame; ``pending`` bytes of it were kept."""

    def __init__(self, pending: int, *, offset: int | None = None):
        self.pending = pending
        super().__init__(
            f"stream ended inside a frame, with {pending} bytes of it received",
            offset=offset,
        )


class ProtocolError(WsFramedError):
    """The peer broke a rule that wsframed enforces on the WebSocket connection.

    For example a text message under ``text="reject"``: the connection is closed with
    code 1003 and the reader gets this error after every byte received before it.
    """


class ConnectionClosed(WsFramedError, ConnectionError):
    """The connection ended abnormally, or is gone while this side still writes.

    ``code`` and ``reason`` come from the close frame the peer sent, or are ``1006``
    and ``""`` when the TCP connection broke without one. A reader gets this error
    only after every byte received before the end.
    """

    def __init__(self, code: int, reason: str = ""):
        self.code = code
        self.reason = reason
        text = f"connection closed with code {code}"
        if reason:
            text += f" ({reason})"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.code, self.reason))


class ClosedStreamError(WsFramedError, RuntimeError):
    """This side already closed the stream (or its write side) and then used it.

    The caller is wrong, not the peer: for example ``write()`` after ``send_eof()``.
    """


class EndOfStream(WsFramedError, _AnyioEndOfStream):
    """The peer finished the stream cleanly; no more data or frames will arrive.

    When anyio is installed this also derives from ``anyio.EndOfStream``, so anyio's
    stream wrappers (``TLSStream``, ``BufferedByteReceiveStream``) see the end of a
    wsframed stream as the end of theirs.
    """
