"""The byte streams [`Framed`][wsframed.Framed] runs over, behind one small interface.

Three shapes are accepted, so one codec and one protocol function serve WebSockets,
TCP, pipes and TLS alike:

- asyncio ``StreamReader``/``StreamWriter`` style: an object with ``read``, ``write``
  and ``drain`` (a [`WsStream`][wsframed.WsStream] is one), or a ``(reader, writer)`` pair;
- anyio ``ByteStream`` style: an object with ``receive``, ``send`` and ``aclose``.

``byte_stream`` wraps any of them in a ``ByteStream``.

The adapters' own coroutines follow [`wsframed.checkpoint`][wsframed.checkpoint]: one
that raises yields to the event loop first, and each adapter's
[`Budget`][wsframed.checkpoint.Budget] makes one call in
[`BUDGET`][wsframed.checkpoint.BUDGET] yield on success. ``read_some``, ``write`` and
``drain`` of a reader/writer pair are the pair's own methods; [`Framed`][wsframed.Framed]
yields around them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .checkpoint import Budget, checkpoint
from .errors import ClosedStreamError, EndOfStream

__all__ = ["AnyioByteStream", "ByteStream", "ReaderWriterByteStream", "byte_stream"]

READ_SIZE = 64 * 1024


class ByteStream(Protocol):
    """What [`Framed`][wsframed.Framed] needs from a byte stream."""

    def read_some(self) -> Awaitable[bytes]:
        """Return the next bytes available (at most 64 KiB), ``b""`` at the end."""
        ...

    def write(self, data: bytes) -> None:
        """Buffer ``data`` for sending."""
        ...

    async def drain(self) -> None:
        """Send what was buffered and wait for backpressure."""
        ...

    async def send_eof(self) -> None:
        """Flush and close the write side; reading goes on to the end of stream."""
        ...

    async def aclose(self) -> None:
        """Close the stream."""
        ...

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Transport information, as ``StreamWriter.get_extra_info``."""
        ...


def _uvloop_write(write: Callable[[Any], None], transport: Any) -> Callable[[Any], None]:
    """``write`` as on asyncio's own transports: once the connection is gone, uvloop
    raises ``RuntimeError`` where asyncio drops the bytes and lets ``drain()`` raise
    the ``ConnectionResetError``; so does this."""

    def write_or_drop(data: Any) -> None:
        try:
            write(data)
        except RuntimeError:
            if not transport.is_closing():
                raise

    return write_or_drop


class ReaderWriterByteStream:
    """An asyncio-style reader and writer (possibly the same object, as a WsStream).

    ``read_some``, ``write`` and ``drain`` are the reader's and writer's own methods
    (``read_some`` is ``reader.read`` with its size bound), not wrappers: a frame or a
    chunk costs no coroutine here.
    """

    read_some: Callable[[], Awaitable[bytes]]

    def __init__(self, reader: Any, writer: Any):
        self.reader = reader
        self.writer = writer
        self.read_some = functools.partial(reader.read, READ_SIZE)
        self.write = writer.write
        transport = getattr(writer, "transport", None)
        if type(transport).__module__.startswith("uvloop"):
            self.write = _uvloop_write(writer.write, transport)
        self.drain = writer.drain
        self._spend = Budget().spend

    async def send_eof(self) -> None:
        if self._spend():
            await checkpoint()
        try:
            await self._send_eof()
        except Exception:
            await checkpoint()  # a writer that fails at once must not spin a retry loop
            raise

    async def _send_eof(self) -> None:
        writer = self.writer
        send_eof = getattr(writer, "send_eof", None)
        if send_eof is not None:  # a WsStream: close frame, read side stays open
            await send_eof()
            return
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()

    async def aclose(self) -> None:
        if self._spend():
            await checkpoint()
        try:
            await self._aclose()
        except Exception:
            await checkpoint()
            raise

    async def _aclose(self) -> None:
        writer = self.writer
        aclose = getattr(writer, "aclose", None)
        if aclose is not None:
            await aclose()
            return
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        getter = getattr(self.writer, "get_extra_info", None)
        return default if getter is None else getter(name, default)


class AnyioByteStream:
    """An anyio ``ByteStream`` (``receive``/``send``/``send_eof``/``aclose``).

    anyio's ``send()`` cancelled while it waits may have written none, some or all of
    its bytes, and does not say which: sending them again could repeat or split a
    frame, dropping them would lose frames silently. So after a cancelled ``send()``
    nothing more is written: ``write()``, ``drain()`` and ``send_eof()`` raise
    [`ClosedStreamError`][wsframed.errors.ClosedStreamError] saying so (``aclose()``
    still closes).
    """

    def __init__(self, stream: Any):
        self.stream = stream
        self._pending: list[bytes] = []
        self._spend = Budget().spend
        self._cut: str | None = None  # why nothing more is written, after a cancelled send

    async def read_some(self) -> bytes:
        if self._spend():
            await checkpoint()
        try:
            data: bytes = await self.stream.receive(READ_SIZE)
        except Exception as exc:
            await checkpoint()  # an end or error reported at once must not spin a loop
            # anyio.EndOfStream without importing anyio (it is optional).
            if isinstance(exc, EndOfStream) or type(exc).__name__ == "EndOfStream":
                return b""
            raise
        return data

    def write(self, data: bytes) -> None:
        if self._cut is not None:
            raise ClosedStreamError(self._cut)
        self._pending.append(data)

    async def drain(self) -> None:
        if self._spend():
            await checkpoint()  # before taking the buffer: a cancellation sends nothing
        if self._cut is not None:
            await checkpoint()
            raise ClosedStreamError(self._cut)
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            try:
                await self.stream.send(data)
            except Exception:
                await checkpoint()
                raise
            except BaseException:  # cancelled: what reached the peer is unknown
                self._cut = (
                    f"a send of {len(data)} bytes over this anyio stream was cancelled and "
                    "may have been cut short: nothing more is sent on it"
                )
                raise

    async def send_eof(self) -> None:
        await self.drain()
        try:
            await self.stream.send_eof()
        except Exception:
            await checkpoint()
            raise

    async def aclose(self) -> None:
        if self._spend():
            await checkpoint()
        try:
            await self.stream.aclose()
        except Exception:
            await checkpoint()
            raise

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        getter = getattr(self.stream, "get_extra_info", None)
        return default if getter is None else getter(name, default)


def byte_stream(stream: Any) -> ByteStream:
    """Wrap ``stream`` (any accepted shape) as a ``ByteStream``.

    Raises ``TypeError`` naming the accepted shapes otherwise.
    """
    if isinstance(stream, tuple) and len(stream) == 2:
        return ReaderWriterByteStream(*stream)
    if all(hasattr(stream, name) for name in ("read", "write", "drain")):
        return ReaderWriterByteStream(stream, stream)
    if all(hasattr(stream, name) for name in ("receive", "send", "aclose")):
        return AnyioByteStream(stream)
    raise TypeError(
        "Framed needs a byte stream: a WsStream, an asyncio (StreamReader, "
        "StreamWriter) pair, or an anyio ByteStream; got "
        f"{type(stream).__module__}.{type(stream).__qualname__}"
    )
