"""connect(): open a WebSocket and get a :class:`~wsframed.Framed` straight away."""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

from websockets.asyncio.client import connect as ws_connect

from .checkpoint import checkpoint
from .codecs.base import Codec
from .framed import Framed, check_codec
from .stream import TextPolicy, WsStream

__all__ = ["byte_stream_defaults", "connect"]

T = TypeVar("T")


def byte_stream_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """Return websockets options with the defaults suited to a byte stream.

    Compression is off unless asked for: permessage-deflate costs about 0.6x on small
    messages and far more on incompressible bulk, and byte streams rarely compress.
    """
    return {"compression": None, **options}


class connect(Generic[T]):  # lower case: a function-like class, as websockets' connect
    """Connect to ``uri`` and return a :class:`~wsframed.Framed` using ``codec``.

    Use either way::

        framed = await wsframed.connect(uri, MsgpackCodec())
        async with wsframed.connect(uri, MsgpackCodec()) as framed: ...

    ``text``, ``write_chunk_size``, ``limit``, ``event_queue_size`` and
    ``close_timeout`` configure the :class:`~wsframed.WsStream`; ``close_timeout`` is
    also websockets' own. Every other keyword goes to websockets' ``connect()``
    (``ssl``, ``origin``, ``subprotocols``, ``additional_headers``, ``max_size``,
    ``ping_interval``, ``open_timeout``, ...), with ``compression=None`` unless given.
    Leaving the ``async with`` block closes the connection (1000, or 1011 on error).
    """

    def __init__(
        self,
        uri: str,
        codec: Codec[T],
        *,
        text: TextPolicy = "reject",
        write_chunk_size: int = 64 * 1024,
        limit: int = 64 * 1024,
        event_queue_size: int = 256,
        close_timeout: float = 10.0,
        **options: Any,
    ):
        check_codec(codec, "connect()")
        self.uri = uri
        self.codec = codec
        self._stream_options: dict[str, Any] = {
            "text": text,
            "write_chunk_size": write_chunk_size,
            "limit": limit,
            "event_queue_size": event_queue_size,
            "close_timeout": close_timeout,
        }
        self._options = byte_stream_defaults({**options, "close_timeout": close_timeout})
        self._framed: Framed[T] | None = None

    async def _connect(self) -> Framed[T]:
        try:
            connection = await ws_connect(self.uri, **self._options)
        except Exception:
            # A bad URI or a refused loopback connection fails without waiting:
            # a reconnect loop must still give the event loop a turn.
            await checkpoint()
            raise
        try:
            stream = WsStream(connection, **self._stream_options)
        except Exception:
            await connection.close()  # bad stream options: do not leak the connection
            raise
        return Framed(stream, self.codec)

    def __await__(self) -> Generator[Any, None, Framed[T]]:
        return self._connect().__await__()

    async def __aenter__(self) -> Framed[T]:
        self._framed = await self._connect()
        return self._framed

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        framed, self._framed = self._framed, None
        if framed is not None:
            stream = framed.stream
            assert isinstance(stream, WsStream)
            await stream.aclose(1000 if exc is None else 1011)
