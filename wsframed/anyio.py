"""A [`WsStream`][wsframed.WsStream] as a genuine ``anyio.abc.ByteStream``.

A ``WsStream`` already has anyio's stream methods (``receive``, ``send``,
``send_eof``, ``aclose``, ``extra_attributes``) and raises an ``EndOfStream`` that
subclasses ``anyio.EndOfStream``, so anyio's wrappers (``TLSStream.wrap``,
``BufferedByteReceiveStream``, ...) work on it as it is. What it is not is an instance
of ``anyio.abc.ByteStream``: type checkers reject it where anyio annotates
``AnyByteStream``, and anyio code that branches on ``isinstance`` takes the generic
path. [`as_anyio_stream`][wsframed.anyio.as_anyio_stream] wraps it in a real subclass, adding
anyio's error conventions and typed attributes::

    tls = await TLSStream.wrap(as_anyio_stream(ws_stream), hostname="example.org")
    tls.extra(SocketAttribute.remote_address)  # passes through the layers
    tls.extra(WsAttribute.subprotocol)

Requires anyio (``pip install 'wsframed[anyio]'``); nothing else in wsframed does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

try:
    import anyio
    from anyio import TypedAttributeSet, typed_attribute
    from anyio.abc import ByteStream, SocketAttribute
except ImportError as exc:  # pragma: no cover - tested by hiding anyio
    raise ImportError(
        "wsframed.anyio needs anyio: pip install 'wsframed[anyio]'"
    ) from exc

from .checkpoint import Budget, checkpoint
from .errors import ClosedStreamError, ConnectionClosed
from .stream import WsStream

__all__ = ["AnyioWsStream", "WsAttribute", "as_anyio_stream"]


class WsAttribute(TypedAttributeSet):
    """Typed attributes of a WebSocket byte stream, for ``stream.extra(...)``."""

    #: the wrapped connection object (websockets, aiohttp or Starlette)
    connection: Any = typed_attribute()
    #: the negotiated subprotocol, or None
    subprotocol: str | None = typed_attribute()
    #: the [`WsStream`][wsframed.WsStream] itself
    ws_stream: WsStream = typed_attribute()


class AnyioWsStream(ByteStream):
    """An ``anyio.abc.ByteStream`` over a [`WsStream`][wsframed.WsStream].

    Errors follow anyio: the end of stream is ``anyio.EndOfStream`` (wsframed's
    subclass of it), an abnormal end is ``anyio.BrokenResourceError`` chained to the
    [`ConnectionClosed`][wsframed.errors.ConnectionClosed], and using a side this stream already
    closed is ``anyio.ClosedResourceError``. ``aclose()`` runs the WebSocket close
    handshake.

    Each method is a checkpoint in anyio's sense for a loop that retries it: one that
    raises yields to the event loop first, and one call in
    [`BUDGET`][wsframed.checkpoint.BUDGET] yields on success (see
    [`wsframed.checkpoint`][wsframed.checkpoint]).
    """

    def __init__(self, stream: WsStream):
        self.stream = stream
        """The wrapped [`WsStream`][wsframed.WsStream]."""
        self._spend = Budget().spend

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Return up to ``max_bytes`` bytes; ``anyio.EndOfStream`` at the end."""
        if self._spend():
            await checkpoint()
        try:
            if max_bytes < 1:
                raise ValueError(f"max_bytes must be a positive integer, not {max_bytes}")
            return await self.stream.receive(max_bytes)
        except ConnectionClosed as exc:
            await checkpoint()
            raise anyio.BrokenResourceError(str(exc)) from exc
        except Exception:
            await checkpoint()  # an end or error reported at once must not spin a loop
            raise

    async def send(self, item: bytes) -> None:
        """Send ``item`` (one or more binary messages) and wait for backpressure."""
        if self._spend():
            await checkpoint()  # before anything is written: a cancellation sends nothing
        try:
            await self.stream.send(item)
        except ClosedStreamError as exc:
            await checkpoint()
            raise anyio.ClosedResourceError(str(exc)) from exc
        except ConnectionClosed as exc:
            await checkpoint()
            raise anyio.BrokenResourceError(str(exc)) from exc
        except Exception:
            await checkpoint()
            raise

    async def send_eof(self) -> None:
        """Send the close frame; receiving goes on to the peer's end of stream."""
        if self._spend():
            await checkpoint()
        try:
            await self.stream.send_eof()
        except Exception:
            await checkpoint()
            raise

    async def aclose(self) -> None:
        """Close the WebSocket (the full close handshake, bounded by its timeout)."""
        if self._spend():
            await checkpoint()
        try:
            await self.stream.aclose()
        except Exception:
            await checkpoint()
            raise

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """anyio's socket addresses and [`WsAttribute`][wsframed.anyio.WsAttribute].

        Plus the wrapped stream's own ``extra_attributes``.
        """
        stream = self.stream
        attributes: dict[Any, Callable[[], Any]] = dict(stream.extra_attributes)
        for attribute, name in (
            (SocketAttribute.remote_address, "peername"),
            (SocketAttribute.local_address, "sockname"),
        ):
            address = stream.get_extra_info(name)
            if isinstance(address, tuple):
                address = address[:2]  # anyio gives IP addresses as (host, port)
            if address is not None:
                attributes[attribute] = _constant(address)
        attributes[WsAttribute.connection] = lambda: stream.get_extra_info("connection")
        attributes[WsAttribute.subprotocol] = lambda: stream.get_extra_info("subprotocol")
        attributes[WsAttribute.ws_stream] = lambda: stream
        return attributes


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def as_anyio_stream(stream: WsStream) -> AnyioWsStream:
    """Wrap ``stream`` as an ``anyio.abc.ByteStream``.

    See [`AnyioWsStream`][wsframed.anyio.AnyioWsStream].
    """
    if not isinstance(stream, WsStream):
        raise TypeError(
            f"as_anyio_stream() wraps a wsframed.WsStream, not {type(stream).__qualname__}"
        )
    return AnyioWsStream(stream)
