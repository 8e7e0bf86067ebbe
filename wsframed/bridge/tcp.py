"""The bridge's TCP side: one small interface, one thin shell per loop family.

The pump (``wsframed.bridge.pumping``) and the bridge servers talk to a TCP connection
only through ``TcpSide``: ``receive`` (``b""`` at the end of stream), ``send`` (which
returns once the other side's backpressure lets it), ``send_eof``, ``abort``,
``aclose`` and ``peer``. Every failure of the connection is an ``OSError`` (trio and
anyio wrap the system's error in their ``BrokenResourceError``: the shells unwrap it),
so the pump's decisions are made once, whatever the loop.

- ``AsyncioTcp``: an asyncio ``(StreamReader, StreamWriter)`` pair;
- ``TrioTcp``: a trio stream (``trio.SocketStream``, or any half-closeable
  ``trio.abc.Stream``);
- ``AnyioTcp``: an anyio ``ByteStream`` (``anyio.connect_tcp``), on either backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import sys
from typing import Any, Protocol

__all__: list[str] = []  # internal to wsframed.bridge


class TcpSide(Protocol):
    """A TCP connection as the bridge uses it."""

    async def receive(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at the end of stream; ``OSError`` if it broke."""
        ...

    async def send(self, data: bytes) -> None:
        """Send ``data``; return when more may be sent; ``OSError`` if it broke."""
        ...

    async def send_eof(self) -> None:
        """Half-close (no more bytes from this side); never raises."""
        ...

    def abort(self) -> None:
        """Close at once, dropping what was not sent; never raises."""
        ...

    async def aclose(self, timeout: float) -> None:
        """Close after the bytes sent went out, for at most ``timeout`` seconds, then
        abort; never raises."""
        ...

    def peer(self) -> Any:
        """The peer's socket address (``None`` if unknown)."""
        ...


def _broken(exc: BaseException) -> OSError:
    """The ``OSError`` behind a trio/anyio ``BrokenResourceError`` (or one saying so)."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError):
        return cause
    return ConnectionResetError(errno.ECONNRESET, str(exc) or "connection broken")


class AsyncioTcp:
    """``TcpSide`` over an asyncio ``(StreamReader, StreamWriter)`` pair."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def receive(self, max_bytes: int) -> bytes:
        return await self.reader.read(max_bytes)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_eof(self) -> None:
        writer = self.writer
        if writer.can_write_eof() and not writer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()

    def abort(self) -> None:
        self.writer.transport.abort()

    async def aclose(self, timeout: float) -> None:
        writer = self.writer
        writer.close()
        try:
            async with asyncio.timeout(timeout):
                # Shielded: the timeout must not cancel the writer's own close waiter,
                # or the caller's later ``writer.wait_closed()`` raises CancelledError.
                await asyncio.shield(writer.wait_closed())
        except TimeoutError:
            writer.transport.abort()
        except OSError:
            pass

    def peer(self) -> Any:
        return self.writer.get_extra_info("peername")


class TrioTcp:
    """``TcpSide`` over a trio stream (``trio.SocketStream``: ``send_eof`` half-closes)."""

    __slots__ = ("stream",)

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    async def receive(self, max_bytes: int) -> bytes:
        import trio

        try:
            return bytes(await self.stream.receive_some(max_bytes))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _broken(exc) from exc

    async def send(self, data: bytes) -> None:
        import trio

        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _broken(exc) from exc

    async def send_eof(self) -> None:
        import trio

        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError,
                                 trio.BusyResourceError, OSError, AttributeError):
            await self.stream.send_eof()

    def abort(self) -> None:
        sock = _socket_of(self.stream)
        if sock is not None:
            sock.close()  # trio's socket close is immediate; aclose() later is a no-op

    async def aclose(self, timeout: float) -> None:
        import trio

        # A TLS stream's aclose() sends close_notify, which raises on a connection that
        # broke or was aborted (closing its transport first): closed all the same.
        with trio.move_on_after(timeout) as scope, contextlib.suppress(
            trio.BrokenResourceError, trio.ClosedResourceError, OSError
        ):
            await self.stream.aclose()
        if scope.cancelled_caught:
            self.abort()

    def peer(self) -> Any:
        sock = _socket_of(self.stream)
        try:
            return sock.getpeername() if sock is not None else None
        except OSError:
            return None


def _socket_of(stream: Any) -> Any:
    """The socket under a trio stream, through ``SSLStream.transport_stream`` layers."""
    while stream is not None and not hasattr(stream, "socket"):
        stream = getattr(stream, "transport_stream", None)
    return getattr(stream, "socket", None)


class AnyioTcp:
    """``TcpSide`` over an anyio ``ByteStream`` (``anyio.connect_tcp``), on either backend."""

    __slots__ = ("stream",)

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    async def receive(self, max_bytes: int) -> bytes:
        import anyio

        try:
            return bytes(await self.stream.receive(max_bytes))
        except anyio.EndOfStream:
            return b""
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise _broken(exc) from exc

    async def send(self, data: bytes) -> None:
        import anyio

        try:
            await self.stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise _broken(exc) from exc

    async def send_eof(self) -> None:
        import anyio

        # RuntimeError: a TLS stream has no half-close (anyio's raises
        # NotImplementedError), and uvloop refuses write_eof() on a closed transport.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError,
                                 OSError, AttributeError, RuntimeError):
            await self.stream.send_eof()

    def abort(self) -> None:
        import anyio

        with contextlib.suppress(Exception):
            sock = self.stream.extra(anyio.abc.SocketAttribute.raw_socket)
            # Through a duplicate of its descriptor: on asyncio the raw socket is the
            # transport's, which refuses close() (and uvloop's shutdown() too), and
            # closing the descriptor under anyio's socket on trio is anyio's to do. The
            # end goes out at once; aclose() later releases the descriptor.
            with socket.socket(fileno=socket.dup(sock.fileno())) as duplicate:
                duplicate.shutdown(socket.SHUT_RDWR)

    async def aclose(self, timeout: float) -> None:
        import anyio

        with anyio.move_on_after(timeout) as scope, contextlib.suppress(
            anyio.BrokenResourceError, anyio.ClosedResourceError, OSError
        ):
            await self.stream.aclose()  # as TrioTcp's: a TLS stream's close_notify
        if scope.cancelled_caught:
            self.abort()

    def peer(self) -> Any:
        import anyio

        return self.stream.extra(anyio.abc.SocketAttribute.remote_address, None)


def tcp_side(reader: Any, writer: Any = None) -> TcpSide:
    """The shell for what [`pump`][wsframed.bridge.pump] was given: an asyncio pair, a
    trio stream or an anyio byte stream (``TypeError`` for anything else)."""
    if writer is not None:
        return AsyncioTcp(reader, writer)
    anyio_abc = sys.modules.get("anyio.abc")
    if anyio_abc is not None and isinstance(reader, anyio_abc.ByteStream):
        return AnyioTcp(reader)
    trio = sys.modules.get("trio")
    if trio is not None and isinstance(reader, trio.abc.Stream):
        return TrioTcp(reader)
    raise TypeError(
        "pump() takes an asyncio (StreamReader, StreamWriter) pair, a trio stream or "
        f"an anyio byte stream, not a {type(reader).__qualname__}"
    )
