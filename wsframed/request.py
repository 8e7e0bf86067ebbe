"""The opening handshake's request, as a [`serve`][wsframed.serve] handler sees it.

A handler reaches it as [`framed.request`][wsframed.Framed.request]::

    async def handler(framed: Framed[str]) -> None:
        request = framed.request
        if request is None or request.path != "/chat":
            await framed.stream.aclose(4004, "no such room")
            return
        token = request.headers.get("Authorization")
        room = urllib.parse.parse_qs(request.query).get("room", ["lobby"])[0]

The server side of every backend has one: a websockets ``ServerConnection`` (in a
[`serve`][wsframed.serve] or ``wsframed.trio.serve`` handler), an aiohttp
``WebSocketResponse`` and a Starlette / FastAPI ``WebSocket``, so protocol code reads
``framed.request`` the same way whichever framework accepted the connection. A client's
[`Framed`][wsframed.Framed], or one over TCP or in memory, answers ``None``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # websockets is imported when a connection is made, not with wsframed
    from websockets.datastructures import Headers

from .backends import _library_of

__all__ = ["Request", "request_of"]


@dataclass(frozen=True, slots=True)
class Request:
    """The HTTP request that opened a WebSocket connection, on the server side.

    The names follow websockets' ``ServerConnection`` (``request.path``,
    ``request.headers``, ``remote_address``, ``subprotocol``), with one deliberate
    difference: websockets' ``request.path`` is the whole request target
    (``/chat?room=1``), while here [`path`][wsframed.Request.path] stops before the
    ``?`` and [`query`][wsframed.Request.query] holds the rest, so that routing on the
    path cannot be fooled by a query string. [`target`][wsframed.Request.target] is
    the whole, as sent.
    """

    target: str
    """The request target as sent: the path and, when present, ``?`` and the query
    (websockets' ``request.path``)."""
    path: str
    """The path, as sent (percent-escapes kept), without the query: ``"/chat"``."""
    query: str
    """The query string without its ``?`` (``"room=1"``), ``""`` when there is none.

    Parse it with ``urllib.parse.parse_qs``; it is as long as the peer made it, within
    websockets' bound on the request line (8 KiB)."""
    headers: Headers
    """The request headers: websockets' case-insensitive ``Headers``; ``get_all(name)``
    lists every value of a repeated header."""
    remote_address: Any
    """The client's address as the socket gives it (``(host, port)`` over IPv4)."""
    subprotocol: str | None
    """The subprotocol the server selected in the handshake, or ``None``.

    Starlette does not record what ``accept(subprotocol=...)`` chose: there it is
    ``None``, and the offers are in the ``Sec-WebSocket-Protocol`` header."""

    @classmethod
    def from_target(
        cls, target: str, headers: Headers, remote_address: Any, subprotocol: str | None
    ) -> Request:
        """Build a request from its target as sent (``/chat?room=1``), split at the ``?``."""
        path, _, query = target.partition("?")
        return cls(target, path, query, headers, remote_address, subprotocol)


_WEBSOCKETS_SERVERS = ("websockets.asyncio.server", "websockets.trio.server")


def request_of(connection: object) -> Request | None:
    """The [`Request`][wsframed.Request] that opened ``connection``, or ``None``.

    ``None`` unless ``connection`` is the server side of a connection past its opening
    handshake: a websockets ``ServerConnection`` (asyncio or trio), an aiohttp
    ``WebSocketResponse`` (prepared), a Starlette ``WebSocket`` or a picows server
    connection.
    """
    # Without websockets imported, no websockets connection exists to be given here.
    # Its asyncio and trio server connections have the same request attributes.
    for module in _WEBSOCKETS_SERVERS:
        server = sys.modules.get(module)
        if server is not None and isinstance(connection, server.ServerConnection):
            request = connection.request
            if request is None:  # the handshake has not completed
                return None
            return Request.from_target(
                request.path, request.headers, connection.remote_address, connection.subprotocol
            )
    library = _library_of(connection)  # imports only the library the connection is of
    if library == "aiohttp":
        from .backends.aiohttp import aiohttp_request

        return aiohttp_request(connection)
    if library == "starlette":
        from .backends.starlette import starlette_request

        return starlette_request(connection)
    http_request = getattr(connection, "http_request", None)  # the picows backend's
    return http_request() if callable(http_request) else None
