"""The Starlette backend: an accepted ``starlette.websockets.WebSocket`` (FastAPI's too).

Starlette speaks ASGI, which gives an application whole messages and a final
``websocket.disconnect`` and nothing else: no ping or pong frames, no way to drop the
TCP connection, and no news of the peer's close reply once this side has closed. The
server (uvicorn, hypercorn, ...) answers pings and runs the close handshake itself.
A pump task reads ahead of the reader until 64 KiB are waiting (see
``wsframed.backends._pump``), so ``wait_closed()`` and the ``Closed`` event need no
reader.

What follows from ASGI, and is documented in ``docs/integrations.md``:

- ``StarletteBackend.ping`` raises ``NotImplementedError``; no Ping/Pong events.
- Closing: after ``websocket.close`` the server discards the messages that arrive
  while it waits for the peer's reply (uvicorn does). So ``send_eof()`` delivers the
  messages the server had already queued, then the end of stream; bytes the peer
  sent after that are lost. ``close_code`` is then the code this side sent.
- ``abort()`` cannot drop the TCP connection: the stream ends at once with 1006 and
  the server closes the connection when the endpoint returns.
- uvicorn reports a TCP connection that ended without a close frame as code 1005
  with no ``reason`` key, while a real close frame always carries one; this backend
  reads the former as 1006 (abnormal), so a dropped peer is not a clean end.
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeGuard

try:
    from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
except ImportError as exc:  # pragma: no cover - tested by hiding starlette
    raise ImportError(
        "wsframed's Starlette backend needs starlette: pip install 'wsframed[starlette]'"
    ) from exc

from websockets.datastructures import Headers

from ..events import CloseFrame
from ..request import Request
from . import BackendClosed, EventSink
from ._pump import NORMAL_CLOSE_CODES, PumpedBackend

__all__ = ["StarletteBackend", "is_starlette_websocket", "starlette_request"]


def is_starlette_websocket(connection: object) -> TypeGuard[WebSocket]:
    """Return whether ``connection`` is a Starlette (or FastAPI) ``WebSocket``."""
    return isinstance(connection, WebSocket)


def starlette_request(connection: object) -> Request | None:
    """The [`Request`][wsframed.Request] of a Starlette / FastAPI ``WebSocket``.

    Built from the ASGI scope: the target as sent (``raw_path`` when the server gives
    it, and the query string), the headers, the client's address. Starlette does not
    record the subprotocol ``accept()`` chose: ``subprotocol`` is ``None``.
    """
    if not isinstance(connection, WebSocket):
        return None
    scope = connection.scope
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope.get("path", "/")
    query = scope.get("query_string", b"").decode("latin-1")
    client = scope.get("client")
    return Request.from_target(
        f"{path}?{query}" if query else path,
        Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())),
        None if client is None else tuple(client),
        None,
    )


class StarletteBackend(PumpedBackend):
    """Adapts an accepted Starlette ``WebSocket`` to ``Backend``.

    Once wrapped, the stream owns the connection: do not call the WebSocket's
    ``receive*()``, ``send*()`` or ``close()`` yourself.
    """

    def __init__(self, connection: WebSocket, on_event: EventSink):
        if connection.application_state is not WebSocketState.CONNECTED:
            raise ValueError(
                "this Starlette WebSocket is not open: await websocket.accept() before "
                f"wrapping it in a WsStream (state: {connection.application_state.name})"
            )
        self.connection = connection
        self._close_sent = False
        super().__init__(on_event)

    async def _receive_one(self) -> None:
        message = await self.connection.receive()
        kind = message["type"]
        if kind == "websocket.receive":
            data = message.get("bytes")
            if data is not None:
                self._deliver(bytes(data))
            elif message.get("text") is not None:
                self._deliver(message["text"])
            return
        # websocket.disconnect, the last message ASGI delivers.
        code = int(message.get("code", 1005))
        reason = message.get("reason") or ""
        if code == 1005 and "reason" not in message:
            self._finish(1006, "", clean=False)  # TCP ended without a close frame
        elif self._close_sent:
            self._finish(code, reason, clean=True)  # the server's report of our close
        else:
            self._on_event(CloseFrame(code, reason))
            self._finish(code, reason, clean=code in NORMAL_CLOSE_CODES)

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        if self._final is not None:
            raise self._closed_error()
        try:
            await self.connection.send_bytes(data if isinstance(data, bytes) else bytes(data))
        except WebSocketDisconnect as exc:
            raise self._final_or(exc.code, exc.reason) from None
        except (RuntimeError, OSError):  # closed, or starlette's "WebSocketDisconnected"
            raise self._closed_error() from None

    def _final_or(self, code: int, reason: str) -> BackendClosed:
        if self._final is not None:
            return self._closed_error()
        return BackendClosed(code, reason, clean=False)

    async def close(self, code: int, reason: str) -> None:
        if not self._close_sent and self._final is None:
            self._close_sent = True
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.connection.close(code, reason)
        await self._done.wait()

    def abort(self) -> None:
        self._finish(1006, "", clean=False)
        self._pump_task.cancel()

    async def ping(self, data: bytes) -> float:
        raise NotImplementedError(
            "ASGI (Starlette, FastAPI) gives applications no access to ping and pong "
            "frames; the server answers pings itself (uvicorn: --ws-ping-interval and "
            "--ws-ping-timeout keep connections alive)"
        )

    def extra_info(self, name: str, default: Any) -> Any:
        ws = self.connection
        if name == "connection":
            return ws
        if name == "peername":
            client = ws.scope.get("client")
            return default if client is None else tuple(client)
        if name == "sockname":
            server = ws.scope.get("server")
            return default if server is None else tuple(server)
        if name == "subprotocol":
            # Starlette does not record what accept() chose; it is None for sure
            # only when the client offered none.
            return None if not ws.scope.get("subprotocols") else default
        return default
