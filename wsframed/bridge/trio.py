"""The bridge under trio: listening and dialling on trio, the rest shared.

[`wsframed.trio.serve_bridge`][wsframed.trio.serve_bridge] runs a
[`BridgeServer`][wsframed.bridge.BridgeServer] whose connections are handled by the
same code as on asyncio (``wsframed.bridge.server``: the handlers, the 1011 for an
unreachable target, the log line; ``wsframed.bridge.pumping``: the pump and every
ending). Only this module's part is trio's: trio's TCP listeners and
``trio.open_tcp_stream``, websockets.trio's server and client, and the nurseries.

Structured concurrency: ``serve_bridge`` opens a nursery for the connections inside
the call (so inside the nursery that started it); every connection's tasks, its
pump's loops and the refusals' lingering run there and end before it returns.

Admission: a listener wraps trio's, so a connection is counted when ``accept()``
returns it, before any handshake (TLS included), and released when its stream is
closed, whoever closes it (websockets.trio after a failed handshake, the handler
after the pump). One over the limit is refused in the accept: a ``tcp://`` or
``wss://`` listener closes it at once, a ``ws://`` one sends the HTTP 503 and the end
of stream once the client's request has ended, and reads for ``LINGER`` more seconds
(``MAX_LINGERING`` at a time, the others closed at once; see ``wsframed.bridge.admission``).
"""

from __future__ import annotations

import functools
from contextlib import AbstractAsyncContextManager
from typing import Any

try:
    import trio
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError("wsframed.bridge.trio needs trio: pip install 'wsframed[trio]'") from exc
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import serve as ws_serve

from ..client import byte_stream_defaults
from ..loops.trio import TrioShell
from .admission import LINGER, REFUSAL, RequestEnd
from .admission import format_address as _format_address
from .server import BridgeServer, serve_bridge
from .tcp import TcpSide, TrioTcp

__all__ = ["TrioBridgeServer", "run_bridge"]


class _CountedStream(trio.abc.HalfCloseableStream):
    """A trio stream holding a slot of the bridge's admission until it is closed."""

    def __init__(self, stream: trio.SocketStream, server: TrioBridgeServer) -> None:
        self.stream = stream
        self.socket = stream.socket  # what websockets.trio reads the addresses from
        self._server = server

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.stream.receive_some(max_bytes)

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        self._server._admission.release(self)
        await self.stream.aclose()


class _CountingListener(trio.abc.Listener[_CountedStream]):
    """trio's listener, admitting each accepted connection before it is handed on."""

    def __init__(self, listener: trio.SocketListener, server: TrioBridgeServer) -> None:
        self.listener = listener
        self.socket = listener.socket  # what websockets.trio logs
        self._server = server

    async def accept(self) -> _CountedStream:
        server = self._server
        while True:
            stream = await self.listener.accept()
            counted = _CountedStream(stream, server)
            if not server._closing and server._admission.admit(counted):
                return counted
            server._refuse(stream)

    async def aclose(self) -> None:
        await self.listener.aclose()


async def _request_ended(stream: trio.SocketStream) -> bool:
    """Read and drop until the request's headers end (True), or until the end of
    stream or ``LINGER`` seconds (False)."""
    request = RequestEnd()
    with trio.move_on_after(LINGER):
        while data := await stream.receive_some(4096):
            if request.feed(data):
                return True
    return False


class TrioBridgeServer(BridgeServer):
    """A [`BridgeServer`][wsframed.bridge.BridgeServer] listening and dialling on trio.

    Made and run by [`wsframed.trio.serve_bridge`][wsframed.trio.serve_bridge]:
    ``close()`` stops it (connections closed with 1001) and that call returns once
    every connection has ended; ``wait_closed()`` waits for that.
    """

    def __init__(self, config: serve_bridge, shell: TrioShell) -> None:
        super().__init__(config, shell)
        self._trio_shell = shell
        self._listeners: list[trio.SocketListener] = []
        self._ws_trio_server: Any = None
        self._ended = trio.Event()

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets (none once closed)."""
        if self._closing:
            return ()
        return tuple(listener.socket for listener in self._listeners)

    async def _open_tcp(self) -> TcpSide:
        return TrioTcp(await trio.open_tcp_stream(self.to.host, self.to.port))

    def _connect_ws(self, **options: Any) -> AbstractAsyncContextManager[Any]:
        return ws_connect(str(self.to), **options)

    def _peer_of(self, connection: Any) -> Any:
        # websockets.trio's remote_address wants a trio.SocketStream, which is final:
        # the counted stream carries the socket instead.
        return TrioTcp(connection.stream).peer()

    async def _handle_trio_tcp(self, stream: _CountedStream) -> None:
        # trio's serve_listeners closes ``stream`` after this returns (its slot with it).
        try:
            await self._serve_tcp_client(TrioTcp(stream))
        finally:
            self._admission.release(stream)

    def _refuse(self, stream: trio.SocketStream) -> None:
        """A connection over the limit (or come while closing): refused at the accept."""
        admission = self._admission
        if not self._closing:
            admission.refused(_format_address(stream.socket.getpeername()))
        if self._closing or not self.listen.is_websocket or self._config.ssl is not None:
            stream.socket.close()  # TCP: nothing to say; TLS: no TLS work for it
            return

        if not admission.may_linger():
            stream.socket.close()  # MAX_LINGERING wait already
            return

        async def refuse_http() -> None:
            # What the client sends is read and dropped; the 503 and the end of stream
            # go once its request has ended (within LINGER seconds of the accept), then
            # it is read for LINGER more seconds before the close (closing with unread
            # bytes would send a reset that can destroy the response before it is read).
            try:
                if await _request_ended(stream):
                    with trio.move_on_after(LINGER):
                        await stream.send_all(REFUSAL)
                        await stream.send_eof()
                        while await stream.receive_some(4096):
                            pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                stream.socket.close()

        admission.lingering(self._trio_shell.spawn(refuse_http(), admission.lingered))

    def _stop_listening(self) -> None:
        return None  # _run() stops the listeners once closing

    async def wait_closed(self) -> None:
        """Wait until the server and every connection it served are closed."""
        await self._ended.wait()

    async def serve_forever(self) -> None:
        """Wait until closed (under trio the server runs in ``serve_bridge()``)."""
        await self._ended.wait()

    async def _run(
        self, handlers: trio.Nursery, task_status: trio.TaskStatus[BridgeServer]
    ) -> None:
        config = self._config
        listen = self.listen
        try:
            self._listeners = await trio.open_tcp_listeners(listen.port, host=listen.host)
            self._bound()
            counting = [_CountingListener(listener, self) for listener in self._listeners]
            async with trio.open_nursery() as listening:
                if listen.is_websocket:
                    self._ws_trio_server = await listening.start(functools.partial(
                        # websockets.trio uses a listener's accept(), aclose() and socket
                        ws_serve, self._handle_websocket,
                        listeners=counting,  # type: ignore[arg-type]
                        ssl=config.ssl, select_subprotocol=self._select_subprotocol,
                        process_request=self._process_request,
                        **byte_stream_defaults(config.ws_options),
                    ))
                else:
                    await listening.start(functools.partial(
                        trio.serve_listeners, self._handle_trio_tcp, counting,
                        handler_nursery=handlers,
                    ))
                task_status.started(self)
                await self._closing_waiter
                if self._ws_trio_server is not None:  # connections end in its nursery
                    await self._ws_trio_server.aclose(close_connections=False)
                listening.cancel_scope.cancel()
        finally:
            self.close()


async def run_bridge(
    config: serve_bridge,
    *,
    task_status: trio.TaskStatus[BridgeServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the bridge ``config`` describes (an unstarted ``serve_bridge``) under trio:
    [`wsframed.trio.serve_bridge`][wsframed.trio.serve_bridge]'s body."""
    server: TrioBridgeServer | None = None
    try:
        async with trio.open_nursery() as handlers:
            server = TrioBridgeServer(config, TrioShell(handlers, "the bridge"))
            await server._run(handlers, task_status)
    finally:
        if server is not None:
            server._ended.set()

