"""Adapters from WebSocket libraries to the small interface [`WsStream`][wsframed.WsStream] drives.

A backend turns one library's connection object into ``Backend``: whole messages
in and out, a close frame sent without waiting, an abort, pings, and a callback for
the control frames the peer sends. ``backend_for`` picks the adapter from the
connection's type, so ``WsStream(connection)`` accepts any supported library.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

from ..events import Event

__all__ = ["Backend", "BackendClosed", "EventSink", "backend_for"]

EventSink = Callable[[Event], None]
"""Receives Ping, Pong, CloseFrame and TextMessage events as the frames arrive, in the
order they arrived (a text message's event as its last frame arrives, before it is read)."""


class BackendClosed(Exception):
    """The connection is over: raised by ``Backend.receive`` and ``Backend.send``.

    ``clean`` is true when the close handshake completed normally: close frames went
    both ways and either this side started it or the peer's code was 1000, 1001 or 1005.
    """

    def __init__(self, code: int, reason: str, *, clean: bool):
        super().__init__(code, reason, clean)
        self.code = code
        self.reason = reason
        self.clean = clean


class Backend(Protocol):
    """What [`WsStream`][wsframed.WsStream] needs from a WebSocket connection."""

    async def receive(self) -> bytes | str:
        """Return the next whole message; raise ``BackendClosed`` at the end."""
        ...

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send one binary message and wait for transport backpressure."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame, then wait until the connection is closed."""
        ...

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        ...

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        ...

    async def ping(self, data: bytes) -> float:
        """Send a ping and return the round-trip time in seconds."""
        ...

    def ended(self) -> BackendClosed | None:
        """How the connection ended, once the close handshake is over or TCP is gone.

        None while it is open. Messages received before the end may still be unread.
        """
        ...

    def peek_end(self) -> BackendClosed | None:
        """What [`receive`][wsframed.backends.Backend.receive] would raise next at once.

        None while a message is left to receive or the end is not known yet.
        """
        ...

    def closed_with(self) -> tuple[int, str] | None:
        """``(code, reason)`` the peer closed with (1006 if none), or None while open."""
        ...

    def extra_info(self, name: str, default: Any) -> Any:
        """Answer ``get_extra_info`` for this connection."""
        ...


_LIBRARIES = ("websockets", "aiohttp", "starlette", "picows", "pyodide")


def _library_of(connection: object) -> str | None:
    """Name the supported library that defines ``connection``'s class (or a base)."""
    for cls in type(connection).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in _LIBRARIES:
            return root
    return None


def backend_for(connection: object, on_event: EventSink) -> Backend:
    """Return the backend adapter for ``connection``.

    Dispatches on the library that defines the connection's class, importing only
    that backend, so aiohttp and Starlette stay optional. Raises ``TypeError`` naming
    the accepted types when the connection is of no supported library, and
    ``ValueError`` for an aiohttp response not yet prepared or a Starlette WebSocket
    not yet accepted.
    """
    from .memory import is_memory_connection  # wsframed.testing's: no dependency

    if is_memory_connection(connection):
        return connection.attach(on_event)
    library = _library_of(connection)
    if library == "websockets":
        from .websockets import WebsocketsBackend, is_websockets_connection

        if is_websockets_connection(connection):
            return WebsocketsBackend(connection, on_event)
        if "trio" in sys.modules:  # a websockets.trio connection implies trio is imported
            from .websockets_trio import WebsocketsTrioBackend, is_websockets_trio_connection

            if is_websockets_trio_connection(connection):
                return WebsocketsTrioBackend(connection, on_event)
    elif library == "aiohttp":
        from .aiohttp import AiohttpBackend, is_aiohttp_connection

        if is_aiohttp_connection(connection):
            return AiohttpBackend(connection, on_event)
    elif library == "starlette":
        from .starlette import StarletteBackend, is_starlette_websocket

        if is_starlette_websocket(connection):
            return StarletteBackend(connection, on_event)
    elif library == "picows":
        from .picows import is_picows_connection

        if is_picows_connection(connection):
            return connection._attach(on_event)
    if library in (None, "pyodide"):  # Pyodide: a browser WebSocket (or its backend)
        from .browser import browser_backend_for

        backend = browser_backend_for(connection, on_event)
        if backend is not None:
            return backend
    raise TypeError(
        "WsStream wraps an open WebSocket connection: a websockets.asyncio "
        "ClientConnection or ServerConnection (websockets 14 or later), an aiohttp "
        "web.WebSocketResponse (prepared) or ClientWebSocketResponse, or a Starlette / "
        "FastAPI WebSocket (accepted), or a wsframed.backends.picows.PicowsConnection; got "
        f"{type(connection).__module__}.{type(connection).__qualname__}"
    )
