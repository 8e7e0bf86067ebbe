"""A bridge's admission in-process: what refused and held clients see, with exact values.

Refused ``ws://`` clients get the 503 and the end of stream once their request has
ended, then what they send is read and dropped while they linger (at most
``MAX_LINGERING`` at once; the others are closed at once); closing the bridge ends the
lingering ones and the TLS handshakes in progress; a TLS handshake that fails, is
cancelled or passes its timeout (uvloop's too) gives its slot back. Clients are raw
sockets on 127.0.0.1: a socket the bridge has closed answers the next byte sent to it
with a reset, which the client's TCP state shows (``TCP_INFO``: CLOSE after a reset,
CLOSE_WAIT while the bridge still reads).
Written for mutants of wsframed/bridge/admission.py no test killed (tools/mutation.py;
docs/contributing.md, Testing).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

import wsframed.bridge.admission as admission_module
from wsframed.bridge import BridgeServer, serve_bridge
from wsframed.bridge.admission import REFUSAL

from .loop_families import families, run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads TCP_INFO"),
]

WAIT = 30  # seconds: the bound on every wait (the machine is shared)
TCP_CLOSE = 7  # linux/tcp_states.h: the bridge reset the connection
TCP_CLOSE_WAIT = 8  # the bridge ended its stream and still holds the socket
MAX_LINGERING = 64  # the bridge's bound on refused connections lingering at once
NOBODY = "tcp://127.0.0.1:9"  # a target no test reaches (no client gets that far)


def tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\r\n"


def client(port: int, request: bytes = b"") -> socket.socket:
    """A raw TCP client (non-blocking once connected: the bridge runs in this loop)
    that sends ``request``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(request)
    sock.setblocking(False)
    return sock


async def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    with anyio.fail_after(WAIT):
        while True:
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                await anyio.wait_readable(sock)
                continue
            if not chunk:
                return data
            data += chunk


async def until(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(WAIT):
        while not predicate():
            await anyio.sleep(0.01)


def reset(sock: socket.socket) -> bool:
    """Whether the bridge reset ``sock`` (it had closed it when a byte arrived)."""
    return tcp_state(sock) == TCP_CLOSE


async def sent_until_reset(sock: socket.socket) -> None:
    """Send a byte every 10 ms until the bridge answers one with a reset."""
    with anyio.fail_after(WAIT):
        while not reset(sock):
            try:
                sock.send(b"x")
            except OSError:  # the reset arrived between the check and the send
                break
            await anyio.sleep(0.01)


@asynccontextmanager
async def ws_bridge(
    family: str, listen: str = "ws://127.0.0.1:0", to: str = NOBODY, **options: Any
) -> AsyncIterator[BridgeServer]:
    """A bridge (``ws://`` unless ``listen`` says) in this process on ``family``'s
    loop; closed on exit (the exit waits until every connection it held has ended)."""
    if family == "asyncio":
        bridge = await serve_bridge(listen, to, **options)
        try:
            yield bridge
        finally:
            bridge.close()
            with anyio.fail_after(WAIT):
                await bridge.wait_closed()
        return
    import trio

    import wsframed.trio

    with anyio.fail_after(WAIT + 5):
        async with trio.open_nursery() as nursery:
            bridge = await nursery.start(functools.partial(
                wsframed.trio.serve_bridge, listen, to, **options))
            try:
                yield bridge
            finally:
                bridge.close()  # serve_bridge returns once every connection ended


def linger_for(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """How long refused connections linger, on both loops (a long one: the test
    decides when they end, by closing the bridge)."""
    import wsframed.bridge.trio as trio_bridge

    monkeypatch.setattr(admission_module, "LINGER", seconds)
    monkeypatch.setattr(trio_bridge, "LINGER", seconds)


@families
def test_max_lingering_refused_connections_linger_until_the_bridge_closes(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One client holds the only slot; 66 more are refused in turn, each sending its
    request. The first 64 read the whole 503 and the end of stream, then send a byte:
    they linger (the bridge reads and drops it); the last two were closed at once,
    unanswered (a reset answers them).
    Closing the bridge ends the 64 at once (not after their 60 s linger)."""
    linger_for(monkeypatch, 60)

    async def body() -> None:
        async with ws_bridge(family, max_connections=1) as bridge:
            held = client(bridge.port)
            await until(lambda: bridge.active_connections == 1)
            refused = []
            for _ in range(MAX_LINGERING):
                sock = client(bridge.port, REQUEST)
                refused.append(sock)
                assert await read_to_eof(sock) == REFUSAL
            for _ in range(2):  # closed at the accept: their request meets a reset
                refused.append(client(bridge.port, REQUEST))
            for sock in refused:
                sock.send(b"x")
            await until(lambda: reset(refused[-1]) and reset(refused[-2]))
            await anyio.sleep(0.5)  # a reset to any other would have arrived by now
            assert [reset(sock) for sock in refused] == [False] * MAX_LINGERING + [True] * 2
            assert [tcp_state(sock) for sock in refused[:MAX_LINGERING]] == (
                [TCP_CLOSE_WAIT] * MAX_LINGERING
            )
            assert tcp_state(held) != TCP_CLOSE
            bridge.close()
            for sock in refused[:MAX_LINGERING]:
                await sent_until_reset(sock)
        for sock in [held, *refused]:
            sock.close()

    run(family, body)


@families
def test_a_refused_connection_lingers_then_is_closed_and_frees_its_place(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused client's bytes are read and dropped while it lingers; then the
    bridge closes it. 64 refused connections that lingered and ended leave room for
    the next refused one to linger too (the bookkeeping forgets the ended ones)."""
    linger_for(monkeypatch, 0.3)

    async def body() -> None:
        async with ws_bridge(family, max_connections=1) as bridge:
            held = client(bridge.port)
            await until(lambda: bridge.active_connections == 1)
            lingered = []
            for _ in range(MAX_LINGERING):
                sock = client(bridge.port, REQUEST)
                lingered.append(sock)
                assert await read_to_eof(sock) == REFUSAL
            for sock in lingered:  # each is closed once its linger is over
                await sent_until_reset(sock)
            linger_for(monkeypatch, 60)
            late = client(bridge.port, REQUEST)
            assert await read_to_eof(late) == REFUSAL
            late.send(b"x")
            await anyio.sleep(0.5)  # a reset would have arrived by now
            assert tcp_state(late) == TCP_CLOSE_WAIT  # it lingers: its byte was read
        for sock in [held, late, *lingered]:
            sock.close()

    run(family, body)


# TLS on asyncio's own loop: the connection runs the handshake once it holds a slot.

own_tls = pytest.mark.skipif(
    os.environ.get("WSFRAMED_LOOP") == "uvloop",
    reason="uvloop runs the TLS handshake itself, before the connection (docs/bridge.md)",
)


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ssl)
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    return server_ssl, client_ssl


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@asynccontextmanager
async def tls_bridge(**options: Any) -> AsyncIterator[tuple[BridgeServer, ssl.SSLContext]]:
    server_ssl, client_ssl = tls_contexts()
    target = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = target.sockets[0].getsockname()[1]
    bridge = await serve_bridge(
        "wss://127.0.0.1:0", f"tcp://127.0.0.1:{port}", ssl=server_ssl, **options
    )
    try:
        yield bridge, client_ssl
    finally:
        bridge.close()
        await asyncio.wait_for(bridge.wait_closed(), WAIT)
        target.close()


async def served(bridge: BridgeServer, client_ssl: ssl.SSLContext) -> None:
    async with connect(f"wss://127.0.0.1:{bridge.port}", ssl=client_ssl,
                       compression=None, open_timeout=WAIT) as ws:
        await ws.send(b"served")
        assert await asyncio.wait_for(ws.recv(), WAIT) == b"served"


async def failed_handshake_frees_its_slot() -> None:
    """The only slot is taken by a client that sends no TLS at all: its handshake
    fails, the connection is closed (no bytes, the end of stream) and its slot is
    free for a real client."""
    async with tls_bridge(max_connections=1, ssl_handshake_timeout=60) as (bridge, client_ssl):
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        await until(lambda: bridge.active_connections == 1)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        await until(lambda: bridge.active_connections == 0)
        await served(bridge, client_ssl)
        writer.close()


@own_tls
async def test_a_failed_tls_handshake_gives_its_slot_back() -> None:
    await failed_handshake_frees_its_slot()


@own_tls
async def test_a_failed_tls_handshake_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """A client's failed handshake is the client's problem: nothing at ERROR."""
    with caplog.at_level(logging.ERROR):
        await failed_handshake_frees_its_slot()
    assert [record.getMessage() for record in caplog.records] == []


async def test_closing_the_bridge_closes_a_tls_connection_with_1001() -> None:
    """A wss:// client whose handshake completed is closed by ``close()`` like any
    other: close frame 1001 "bridge shutting down", not a cut connection."""
    async with (
        tls_bridge() as (bridge, client_ssl),
        connect(f"wss://127.0.0.1:{bridge.port}", ssl=client_ssl, compression=None,
                open_timeout=WAIT) as ws,
    ):
        await ws.send(b"ping")
        assert await asyncio.wait_for(ws.recv(), WAIT) == b"ping"
        bridge.close()
        with pytest.raises(WsConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT)
        assert closed.value.rcvd is not None  # a close frame, not a cut connection
        assert closed.value.rcvd.code == 1001
        assert bridge.active_connections == 0


@own_tls
def test_a_tls_handshake_cut_by_the_loop_s_end_gives_its_slot_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``asyncio.run()`` ending while a client has not sent its ClientHello cancels
    the handshake: its connection is closed, its slot given back, and nothing is
    logged as an error (the cancellation ends the handshake's task as cancelled)."""
    held: list[BridgeServer] = []
    sockets: list[socket.socket] = []

    async def main() -> None:
        server_ssl, _ = tls_contexts()
        bridge = await serve_bridge("wss://127.0.0.1:0", NOBODY, ssl=server_ssl,
                                    ssl_handshake_timeout=60)
        held.append(bridge)
        sockets.append(client(bridge.port))
        async with asyncio.timeout(WAIT):
            while bridge.active_connections != 1:
                await asyncio.sleep(0.01)
        # Returning cancels the handshake's task (asyncio.run's shutdown).

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(main())
    [bridge], [sock] = held, sockets
    assert bridge.active_connections == 0
    sock.setblocking(True)
    sock.settimeout(WAIT)
    assert sock.recv(1) == b""  # closed
    sock.close()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


# TLS on uvloop: the loop runs the handshake before the connection hears of it.


def on_uvloop(main: Callable[[], Any]) -> None:
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def test_on_uvloop_a_stalled_tls_handshake_holds_its_slot_until_the_loop_drops_it() -> None:
    """uvloop drops a client that never sends its ClientHello at the handshake
    timeout (1 s here) without telling the connection; the slot comes back a second
    after that: when it is free, the client's socket is already closed."""

    async def main() -> None:
        async with tls_bridge(max_connections=1, ssl_handshake_timeout=1) as (bridge, client_ssl):
            sock = client(bridge.port)
            await until(lambda: bridge.active_connections == 1)
            await until(lambda: bridge.active_connections == 0)
            try:
                ended = sock.recv(1) == b""
            except BlockingIOError:
                ended = False  # still open: the slot came back too early
            except ConnectionResetError:
                ended = True
            assert ended
            sock.close()
            await served(bridge, client_ssl)

    on_uvloop(main)


def test_on_uvloop_a_tls_connection_keeps_its_slot_past_the_handshake_timeout() -> None:
    """A wss:// client whose handshake completed holds its slot for as long as it is
    connected, also after the handshake timeout (plus its second) has passed."""

    async def main() -> None:
        async with tls_bridge(max_connections=1, ssl_handshake_timeout=1) as (bridge, client_ssl):
            async with connect(f"wss://127.0.0.1:{bridge.port}", ssl=client_ssl,
                               compression=None, open_timeout=WAIT) as ws:
                await asyncio.sleep(3)  # the handshake timeout, its second, and more
                assert bridge.active_connections == 1
                await ws.send(b"still here")
                assert await asyncio.wait_for(ws.recv(), WAIT) == b"still here"
            await until(lambda: bridge.active_connections == 0)

    on_uvloop(main)
