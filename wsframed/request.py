"""The opening handshake's request, as a [`serve`][wsframed.serve] handler sees it.

A handler reaches it as [`framed.request`][wsframed.Framed.request]::

    async def handler(framed: Framed[str]) -> None:
        request = framed.request
        if request is None or request.path != "/chat":
            await framed.stream.aclose(4004, "no such room")
            return
        token = request.headers.get("Authorization")
        room = urllib.parse.parse_qs(request.query).get("room", ["lobby"])[0]

Only the server side of a websockets connection has one: a client's
[`Framed`][wsframed.Framed], one over TCP, aiohttp or Starlette answers ``None`` (take
the request from the web framework there).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # websockets is imported when a connection is made, not with wsframed
    from websockets.datastructures import Headers

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
    """The subprotocol the server selected in the handshake, or ``None``."""


def request_of(connection: object) -> Request | None:
    """The [`Request`][wsframed.Request] that opened ``connection``, or ``None``.

    ``None`` unless ``connection`` is a websockets ``ServerConnection`` past its
    opening handshake.
    """
    # Without websockets imported, no ServerConnection exists to be given here.
    server = sys.modules.get("websockets.asyncio.server")
    if server is None or not isinstance(connection, server.ServerConnection):
        return None
    request = connection.request
    if request is None:  # the handshake has not completed
        return None
    path, _, query = request.path.partition("?")
    return Request(
        target=request.path,
        path=path,
        query=query,
        headers=request.headers,
        remote_address=connection.remote_address,
        subprotocol=connection.subprotocol,
    )
