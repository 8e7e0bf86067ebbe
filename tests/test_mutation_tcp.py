"""The bridge's TCP shells (``wsframed/bridge/tcp.py``): the behaviours its mutants showed
untested, through ``pump()`` over real loopback TCP.

Each section names the lines it pins (as numbered in tcp.py today): the OSError the
system reported is the one in ``PumpResult.reason`` (not a generic reset), a write
failure on a trio or anyio stream ends the pump, ``aclose()`` is bounded and then
aborts (and leaves the writer's own ``wait_closed()`` usable), a stream the caller
closed under the pump is reported as a broken target, and anything else than the
three stream kinds is refused. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import trio  # imported: tcp_side() must still refuse what is not a trio stream
import trustme

from wsframed import WsStream
from wsframed.bridge import PumpResult, pump
from wsframed.bridge.pumping import TARGET_FAILED

from .loop_families import Peer, run, ws_pair
from .test_bridge_families import (
    TCP_SIDES,
    WAIT,
    closed_with,
    pumping,
    read_exactly,
    read_to_eof,
    tcp_pair,
)

pytestmark = pytest.mark.timeout(120)

tcp_sides = pytest.mark.parametrize(("family", "tcp"), TCP_SIDES)


def shut_writes_under(ours: tuple[Any, ...]) -> None:
    """Shut the write direction of the pump's TCP connection behind its library's back
    (on a duplicate of the descriptor): the next write fails with EPIPE."""
    stream = ours[0]
    if isinstance(stream, asyncio.StreamReader):
        fileno = ours[1].get_extra_info("socket").fileno()
    elif isinstance(stream, trio.SocketStream):
        fileno = stream.socket.fileno()
    else:
        fileno = stream.extra(anyio.abc.SocketAttribute.raw_socket).fileno()
    with socket.socket(fileno=socket.dup(fileno)) as duplicate:
        duplicate.shutdown(socket.SHUT_WR)


# 59 (the cause, not the context), 129 and 194 (a failed send raises) -----------------


@tcp_sides
def test_a_write_failure_ends_the_pump_with_the_system_s_error(family: str, tcp: str) -> None:
    """The pump's own write direction broken (EPIPE): the WebSocket peer gets 1011 and
    the reason names a broken pipe, the error the system gave, not a reset.

    anyio on asyncio raises its ``BrokenResourceError`` with the pipe error as cause
    and an ``IndexError`` as context; trio and anyio-on-trio let a failed send raise.
    """

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair(tcp) as (far, ours):
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(pumping, results, WsStream(client), ours, {})
                await peer.send(b"first")
                assert await read_exactly(far, 5) == b"first"
                shut_writes_under(ours)
                assert await read_to_eof(far) == b""
                await peer.send(b"second")
                assert await closed_with(peer) == (1011, TARGET_FAILED)
            [result] = results
            assert result.reason == "target failed: broken pipe"
            assert (result.close_code, result.tcp_to_ws) == (1011, 0)
            # anyio's asyncio stream reports the failure at the next receive, after
            # the write was handed to the transport (counted); the others at the write.
            assert result.ws_to_tcp == (11 if (family, tcp) == ("asyncio", "anyio") else 5)

    run(family, body)


# 62 (a stream closed under the pump: an OSError saying so) ---------------------------


@pytest.mark.parametrize(("family", "tcp"), [("trio", "trio"), ("asyncio", "anyio"),
                                             ("trio", "anyio")])
def test_a_stream_the_caller_closes_under_the_pump_is_a_failed_target(
    family: str, tcp: str
) -> None:
    """trio and anyio raise ``ClosedResourceError`` (no OSError behind it) in the
    pump's read when the caller closes the stream: it becomes a reset, so the pump
    ends as for any failed target, 1011 to the WebSocket peer."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair(tcp) as (far, ours):
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(pumping, results, WsStream(client), ours, {})
                await peer.send(b"before")
                assert await read_exactly(far, 6) == b"before"
                await ours[0].aclose()
                assert await closed_with(peer) == (1011, TARGET_FAILED)
            [result] = results
            assert result.reason == "target failed: connection reset by peer"
            assert (result.close_code, result.ws_to_tcp, result.tcp_to_ws) == (1011, 6, 0)

    run(family, body)


# 97, 99 (aclose waits for the bytes to go out, bounded, then aborts) ----------------


async def test_closing_a_target_that_reads_nothing_is_bounded_then_aborts() -> None:
    """A target that never reads: at the idle timeout the pump's close waits for the
    bytes still buffered at most ``close_timeout``, then aborts: the buffer is dropped
    and the connection closed, the pump returns (the far end never read)."""
    message = 1_000_000  # under websockets' 1 MiB limit
    sent = 2 * message
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:  # a plain socket: no reads
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before accept
        async with ws_pair("asyncio") as (client, peer), asyncio.timeout(WAIT):
            reader, writer = await asyncio.open_connection(*listener.getsockname())
            far, _ = listener.accept()  # already connected: does not block
            with far:
                far.setblocking(False)
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
                )
                task = asyncio.create_task(
                    pump(WsStream(client), reader, writer, idle_timeout=0.5, close_timeout=0.5)
                )
                for _ in range(2):
                    await peer.connection.send(b"x" * message)
                closed = await closed_with(Peer(peer.connection, "asyncio"))
                assert closed == (1001, "idle timeout")
                result = await task
                # aborted: the transport closed, not left flushing to a target that
                # never reads; and the caller's own wait_closed() returns (it raised
                # CancelledError when the bound cancelled the writer's close waiter).
                assert await writer.wait_closed() is None
                received = 0
                while chunk := await loop.sock_recv(far, 65536):
                    received += len(chunk)
    assert (result.close_code, result.reason) == (1001, "idle timeout")
    assert received < sent  # the bytes still buffered at the abort were dropped


# 140, 141, 213 (abort() ends the connection at once, on every shell) -----------------


@tcp_sides
def test_abort_ends_the_connection_at_once(family: str, tcp: str) -> None:
    """``TcpSide.abort()`` (the pump's first step on a failed target, before the
    WebSocket's close handshake, which may take ``close_timeout``): the far end sees
    the end at once, before any ``aclose()``. Tested on the shell itself: on every
    path of ``pump()`` that reaches it the connection has already broken."""
    from wsframed.bridge.tcp import tcp_side

    async def body() -> None:
        async with tcp_pair(tcp) as (far, ours):
            side = tcp_side(*ours)
            await side.send(b"sent before")
            assert await read_exactly(far, 11) == b"sent before"
            side.abort()
            assert await read_to_eof(far) == b""
            await side.aclose(WAIT)

    run(family, body)


# aclose() never raises: a TLS stream whose target reset --------------------------------


@asynccontextmanager
async def tls_tcp_pair(tcp: str) -> AsyncIterator[tuple[Any, tuple[Any, ...]]]:
    """(the far end: an anyio TLS stream, the pump's side: a trio ``SSLStream`` or an
    anyio TLS stream over loopback TCP)."""
    from anyio.streams.tls import TLSStream

    ca = trustme.CA()
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ssl)
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    async with tcp_pair("trio" if tcp == "trio-ssl" else "anyio") as (far_tcp, ours):
        far: list[Any] = []

        async def serve_tls() -> None:
            far.append(await TLSStream.wrap(far_tcp, server_side=True, ssl_context=server_ssl))

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as group:
                group.start_soon(serve_tls)
                if tcp == "trio-ssl":
                    mine: Any = trio.SSLStream(ours[0], client_ssl, server_hostname="127.0.0.1")
                    await mine.do_handshake()
                else:
                    mine = await TLSStream.wrap(
                        ours[0], hostname="127.0.0.1", ssl_context=client_ssl
                    )
        yield far[0], (mine,)


@pytest.mark.parametrize(("family", "tcp"), [("trio", "trio-ssl"), ("asyncio", "anyio-tls"),
                                             ("trio", "anyio-tls")])
def test_a_tls_target_s_reset_ends_the_pump_with_1011_not_an_exception(
    family: str, tcp: str
) -> None:
    """The pump aborts a failed target, then closes it: a TLS stream's ``aclose()``
    then tries to send its close_notify on the aborted socket and raises
    (``ClosedResourceError`` / ``BrokenResourceError``). The shell's ``aclose()``
    never raises: the pump returns its result, 1011 to the WebSocket peer."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tls_tcp_pair(tcp) as (far, ours):
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(pumping, results, WsStream(client), ours, {})
                await peer.send(b"hello")
                assert await read_exactly(far, 5) == b"hello"
                raw = far.extra(anyio.abc.SocketAttribute.raw_socket)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await anyio.aclose_forcefully(far)  # SO_LINGER 0: a reset
                assert await closed_with(peer) == (1011, TARGET_FAILED)
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (5, 0)
            assert (result.close_code, result.reason) == (
                1011, "target failed: connection reset by peer"
            )

    run(family, body)


@pytest.mark.parametrize(("family", "tcp"), [("trio", "trio-ssl"), ("asyncio", "anyio-tls"),
                                             ("trio", "anyio-tls")])
def test_a_clean_websocket_close_over_a_tls_target_is_websocket_closed(
    family: str, tcp: str
) -> None:
    """TLS has no half-close: the pump's ``send_eof()`` on a TLS stream (anyio's
    raises ``NotImplementedError``) does nothing, and the pump reads on until the
    target ends, then returns "websocket closed" with the peer's 1000."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tls_tcp_pair(tcp) as (far, ours):
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(pumping, results, WsStream(client), ours, {})
                await peer.send(b"hello")
                assert await read_exactly(far, 5) == b"hello"
                await peer.close(1000)
                await far.send(b"late")  # read and dropped: the WebSocket is closed
                await far.aclose()
            [result] = results
            assert (result.ws_to_tcp, result.close_code, result.reason) == (
                5, 1000, "websocket closed"
            )

    run(family, body)


# 240, 242 (anything else than the three stream kinds is refused) --------------------


async def test_pump_refuses_what_is_not_a_stream_with_its_type() -> None:
    async with ws_pair("asyncio") as (client, _peer):
        with pytest.raises(TypeError) as info:
            await pump(WsStream(client), b"not a stream")
        assert str(info.value) == (
            "pump() takes an asyncio (StreamReader, StreamWriter) pair, a trio stream or "
            "an anyio byte stream, not a bytes"
        )


def test_pump_refuses_what_is_not_a_stream_under_trio() -> None:
    async def body() -> None:
        async with ws_pair("trio") as (client, _peer):
            with pytest.raises(TypeError, match=r"not a socket$"):
                await pump(WsStream(client), socket.socket())

    run("trio", body)

