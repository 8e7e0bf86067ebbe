"""A [`Framed`][wsframed.Framed] as an ``anyio.abc.ObjectStream``.

anyio code takes object streams (``receive()`` raising ``anyio.EndOfStream`` at the
end, ``send()``, ``send_eof()``, ``aclose()``, ``async for``); a ``Framed`` has the
same operations under asyncio's names. [`as_object_stream`][wsframed.anyio_framed.as_object_stream]
wraps one in a genuine subclass, so anyio utilities and type checkers accept it::

    objects = as_object_stream(framed)           # ObjectStream[T]
    async for item in objects: ...               # ends at the peer's end of stream
    StapledObjectStream(objects, memory_receive) # any anyio object-stream utility

Errors follow anyio: the end of stream is ``anyio.EndOfStream``; an abnormal end is
``anyio.BrokenResourceError`` chained to the [`ConnectionClosed`][wsframed.ConnectionClosed];
sending after ``send_eof()`` or using the stream after ``aclose()`` is
``anyio.ClosedResourceError``. Errors in the data (``DecodeError``, ``FrameTooLarge``)
are raised as they are: they are the peer's mistake, not the resource's state.

Requires anyio (``pip install 'wsframed[anyio]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

try:
    import anyio
    from anyio.abc import ObjectReceiveStream, ObjectSendStream, ObjectStream, SocketAttribute
except ImportError as exc:  # pragma: no cover - tested by hiding anyio
    raise ImportError("wsframed.anyio_framed needs anyio: pip install 'wsframed[anyio]'") from exc

from .checkpoint import checkpoint
from .errors import ClosedStreamError, ConnectionClosed
from .framed import Framed

__all__ = [
    "AnyioFramed",
    "AnyioFramedReceiveStream",
    "AnyioFramedSendStream",
    "as_object_stream",
    "as_object_stream_halves",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)

_CLOSED = "this object stream was closed with aclose() on this side"


async def _send(framed: Framed[Any], item: Any) -> None:
    """``framed.send(item)`` with wsframed's errors as anyio's (one place for both faces)."""
    try:
        await framed.send(item)
    except ClosedStreamError as exc:
        raise anyio.ClosedResourceError(str(exc)) from exc
    except ConnectionClosed as exc:
        raise anyio.BrokenResourceError(str(exc)) from exc


class AnyioFramed(ObjectStream[T]):
    """An ``anyio.abc.ObjectStream`` over a [`Framed`][wsframed.Framed].

    ``receive()`` is [`Framed.recv`][wsframed.Framed.recv], ``send()``
    [`Framed.send`][wsframed.Framed.send], ``send_eof()``
    [`Framed.send_eof`][wsframed.Framed.send_eof] (over a WebSocket, the close frame:
    receiving goes on to the peer's end) and ``aclose()``
    [`Framed.aclose`][wsframed.Framed.aclose]; each keeps its cancellation safety and
    its yields to the event loop. Only the errors change, to anyio's (see the module).
    """

    def __init__(self, framed: Framed[T]):
        self.framed = framed
        """The wrapped [`Framed`][wsframed.Framed]."""
        self._closed = False

    async def receive(self) -> T:
        """Return the next frame; ``anyio.EndOfStream`` at the peer's clean end."""
        if self._closed:
            await checkpoint()  # raised without waiting: a retry loop must not spin
            raise anyio.ClosedResourceError(_CLOSED)
        try:
            return await self.framed.recv()
        except ConnectionClosed as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc

    async def send(self, item: T) -> None:
        """Encode and send ``item``, waiting for backpressure."""
        if self._closed:
            await checkpoint()
            raise anyio.ClosedResourceError(_CLOSED)
        await _send(self.framed, item)

    async def send_eof(self) -> None:
        """Close the sending side; ``receive()`` goes on to the peer's end of stream."""
        await self.framed.send_eof()

    async def aclose(self) -> None:
        """Close the connection (over a WebSocket, the close handshake). Idempotent."""
        self._closed = True
        await self.framed.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The wrapped stream's anyio attributes, and anyio's socket addresses."""
        return _attributes_of(self.framed)


class AnyioFramedSendStream(ObjectSendStream[T_contra]):
    """The sending half of a [`Framed`][wsframed.Framed] as an ``anyio.abc.ObjectSendStream``.

    ``aclose()`` closes the sending side only, as closing a memory object stream's
    sending end does: over a WebSocket it sends the close frame, and the peer's
    receiver sees the end of stream. Sending afterwards is ``anyio.ClosedResourceError``.
    """

    def __init__(self, framed: Framed[Any]):
        self.framed = framed
        """The wrapped [`Framed`][wsframed.Framed]."""

    async def send(self, item: T_contra) -> None:
        """Encode and send ``item``, waiting for backpressure."""
        await _send(self.framed, item)

    async def aclose(self) -> None:
        """Close the sending side ([`Framed.send_eof`][wsframed.Framed.send_eof]). Idempotent."""
        await self.framed.send_eof()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The wrapped stream's anyio attributes, and anyio's socket addresses."""
        return _attributes_of(self.framed)


class AnyioFramedReceiveStream(ObjectReceiveStream[T_co]):
    """The receiving half of a [`Framed`][wsframed.Framed] as an ``anyio.abc.ObjectReceiveStream``.

    ``aclose()`` closes the whole connection ([`Framed.aclose`][wsframed.Framed.aclose]):
    a WebSocket cannot stop receiving while it goes on sending, so the sending half
    gets ``anyio.ClosedResourceError`` afterwards. Close the sending half first for an
    orderly end.
    """

    def __init__(self, framed: Framed[Any]):
        self.framed = framed
        """The wrapped [`Framed`][wsframed.Framed]."""
        self._closed = False

    async def receive(self) -> T_co:
        """Return the next frame; ``anyio.EndOfStream`` at the peer's clean end."""
        if self._closed:
            await checkpoint()
            raise anyio.ClosedResourceError(_CLOSED)
        try:
            item: T_co = await self.framed.recv()
        except ConnectionClosed as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc
        return item

    async def aclose(self) -> None:
        """Close the connection (over a WebSocket, the close handshake). Idempotent."""
        self._closed = True
        await self.framed.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The wrapped stream's anyio attributes, and anyio's socket addresses."""
        return _attributes_of(self.framed)


def _attributes_of(framed: Framed[Any]) -> dict[Any, Callable[[], Any]]:
    attributes: dict[Any, Callable[[], Any]] = dict(getattr(framed.stream, "extra_attributes", {}))
    for attribute, address in (
        (SocketAttribute.remote_address, framed.remote_address),
        (SocketAttribute.local_address, framed.local_address),
    ):
        if isinstance(address, tuple):
            address = address[:2]  # anyio gives IP addresses as (host, port)
        if address is not None:
            attributes.setdefault(attribute, _constant(address))
    return attributes


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def as_object_stream(framed: Framed[T]) -> AnyioFramed[T]:
    """Wrap ``framed`` as an ``anyio.abc.ObjectStream``.

    See [`AnyioFramed`][wsframed.anyio_framed.AnyioFramed]; ``TypeError`` for anything
    but a [`Framed`][wsframed.Framed].
    """
    if not isinstance(framed, Framed):
        raise TypeError(
            f"as_object_stream() wraps a wsframed.Framed, not {type(framed).__qualname__}"
        )
    return AnyioFramed(framed)


def as_object_stream_halves(
    framed: Framed[T],
) -> tuple[AnyioFramedSendStream[T], AnyioFramedReceiveStream[T]]:
    """Return ``framed``'s sending and receiving halves as anyio object streams.

    In the order of ``anyio.create_memory_object_stream()`` and
    [`Framed.split`][wsframed.Framed.split]: ``(send_stream, receive_stream)``, for two
    tasks, or stapled back together with ``StapledObjectStream``.
    """
    if not isinstance(framed, Framed):
        raise TypeError(
            f"as_object_stream_halves() wraps a wsframed.Framed, not {type(framed).__qualname__}"
        )
    return AnyioFramedSendStream(framed), AnyioFramedReceiveStream(framed)
