"""--max-connections counts a connection from its TCP accept, handshakes included.

Real bridge processes: the descriptors they hold are read from /proc. Clients open raw
TCP connections that never finish their handshake (a WebSocket request never sent, or
a target that never answers its own): exactly N are held, the others are refused
(answered 503 as soon as their request ends), and once the stalled ones are gone a
new client is served.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import sys

import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from wsframed.bridge import serve_bridge
from wsframed.bridge.admission import REFUSAL, Admission

from .conftest import wait_for
from .test_bridge import BridgeProcess, bridge, echo, loops, tcp_server

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

HELD = 5  # --max-connections
EXTRA = 20  # connections over the limit
TIMEOUT = 20


def descriptors(process: BridgeProcess) -> int:
    return len(os.listdir(f"/proc/{process.proc.pid}/fd"))


def refusals_logged(process: BridgeProcess) -> int:
    """The refusals the log tells of: one per named line, plus each count line's count."""
    total = 0
    for line in process.log:
        if re.fullmatch(r"wsframed\.bridge: refused peer=\S+: max-connections \(5\) reached",
                        line):
            total += 1
        elif match := re.fullmatch(
            r"wsframed\.bridge: refused (\d+) more connections: max-connections \(5\) reached",
            line,
        ):
            total += int(match.group(1))
    return total


async def open_stalled(port: int, count: int) -> list[tuple[asyncio.StreamReader,
                                                             asyncio.StreamWriter]]:
    return [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]


async def close_all(pairs: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in pairs:
        writer.close()
    for _, writer in pairs:
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


@loops
async def test_websocket_listener_counts_stalled_handshakes_from_the_accept(loop: str) -> None:
    async with tcp_server(echo) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}",
        "--max-connections", str(HELD),
    ) as process:
        base = descriptors(process)
        # Connections that never send their WebSocket request.
        stalled = await open_stalled(process.port, HELD)
        await wait_for(lambda: descriptors(process) == base + HELD, TIMEOUT)
        extra = await open_stalled(process.port, EXTRA)
        for reader, writer in extra:  # answered once the request ended, not at a timeout
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == REFUSAL
        await close_all(extra)
        # The refused sockets are closed once their linger is over; the stalled stay.
        await wait_for(lambda: descriptors(process) == base + HELD, TIMEOUT)
        for reader, _ in stalled:
            assert not reader.at_eof()
        await wait_for(lambda: refusals_logged(process) == EXTRA, TIMEOUT)
        await close_all(stalled)
        await wait_for(lambda: descriptors(process) == base, TIMEOUT)
        async with connect(process.url, compression=None, open_timeout=10) as client:
            await client.send(b"served")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == b"served"


@loops
async def test_tcp_listener_counts_connections_whose_target_handshake_stalls(loop: str) -> None:
    release = asyncio.Event()

    async def stall(connection: ServerConnection, request: Request) -> Response | None:
        await release.wait()  # the target's handshake stalls until the test releases it
        return None

    async def echo_ws(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(echo_ws, "127.0.0.1", 0, compression=None, process_request=stall,
                     open_timeout=None) as target:
        url = f"ws://127.0.0.1:{next(iter(target.sockets)).getsockname()[1]}"
        async with bridge(
            "--loop", loop, "--listen", "tcp://127.0.0.1:0", "--to", url,
            "--max-connections", str(HELD),
        ) as process:
            base = descriptors(process)
            stalled = await open_stalled(process.port, HELD)
            # Each held client and its connection to the target.
            await wait_for(lambda: descriptors(process) == base + 2 * HELD, TIMEOUT)
            extra = await open_stalled(process.port, EXTRA)
            for reader, _ in extra:
                assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            await close_all(extra)
            await wait_for(lambda: descriptors(process) == base + 2 * HELD, TIMEOUT)
            for reader, _ in stalled:
                assert not reader.at_eof()
            await wait_for(lambda: refusals_logged(process) == EXTRA, TIMEOUT)
            release.set()  # the target answers: the held ones become tunnels, then end
            await close_all(stalled)
            await wait_for(lambda: descriptors(process) == base, TIMEOUT)
            reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
            writer.write(b"served")
            assert await asyncio.wait_for(reader.readexactly(6), TIMEOUT) == b"served"
            writer.close()
            await writer.wait_closed()


async def test_tls_listener_counts_from_the_accept_and_frees_failed_handshakes() -> None:
    """TLS handshakes in progress hold slots; one that fails gives its slot back."""
    ca = trustme.CA()
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ssl)
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    async with tcp_server(echo) as port, serve_bridge(
        "wss://127.0.0.1:0", f"tcp://127.0.0.1:{port}", ssl=server_ssl, max_connections=2,
        ssl_handshake_timeout=1,  # asyncio drops a TLS handshake after 1 s
    ) as server:
        stalled = await open_stalled(server.port, 2)  # never send a ClientHello
        await wait_for(lambda: server.active_connections == 2, TIMEOUT)
        garbage = await open_stalled(server.port, 1)
        garbage[0][1].write(b"GET / HTTP/1.1\r\n\r\n")  # not TLS: fails at once
        await asyncio.wait_for(garbage[0][0].read(), TIMEOUT)  # closed (after an alert)
        assert server.active_connections == 2
        # asyncio closes the stalled sockets without telling websockets; their slots
        # come back once the TLS handshake timeout has passed.
        for reader, _ in stalled:
            await asyncio.wait_for(reader.read(), TIMEOUT)
        await wait_for(lambda: server.active_connections == 0, TIMEOUT)
        await close_all(stalled + garbage)
        async with connect(f"wss://127.0.0.1:{server.port}", ssl=client_ssl,
                           compression=None, open_timeout=10) as client:
            assert server.active_connections == 1
            await client.send(b"served")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == b"served"


@pytest.mark.skipif(
    os.environ.get("WSFRAMED_LOOP") == "uvloop",
    reason="uvloop runs the TLS handshake itself before the connection (docs/bridge.md)",
)
async def test_tls_listener_closes_connections_over_the_limit_at_the_accept() -> None:
    """Over the limit, a wss:// listener does no TLS work: the socket is closed at once,
    not held until the TLS handshake timeout (30 s here)."""
    ca = trustme.CA()
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ssl)
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    async with tcp_server(echo) as port, serve_bridge(
        "wss://127.0.0.1:0", f"tcp://127.0.0.1:{port}", ssl=server_ssl, max_connections=2,
        ssl_handshake_timeout=30,
    ) as server:
        stalled = await open_stalled(server.port, 2)  # never send a ClientHello
        await wait_for(lambda: server.active_connections == 2, TIMEOUT)
        extra = await open_stalled(server.port, EXTRA)
        for reader, _ in extra:  # ended at once (the handshake timeout is 30 s)
            assert await asyncio.wait_for(reader.read(), 10) == b""
        with pytest.raises((ssl.SSLError, ConnectionError)):  # a TLS client: no session
            await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", server.port, ssl=client_ssl), 10
            )
        assert server.active_connections == 2
        for reader, _ in stalled:
            assert not reader.at_eof()
        await close_all(extra + stalled)
        # The stalled handshakes give their slots back as their sockets close.
        await wait_for(lambda: server.active_connections == 0, TIMEOUT)
        async with connect(f"wss://127.0.0.1:{server.port}", ssl=client_ssl,
                           compression=None, open_timeout=10) as client:
            assert server.active_connections == 1
            await client.send(b"served")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == b"served"


async def test_refusals_are_logged_at_most_once_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.admission")
    admission = Admission(1, logger)
    assert admission.admit("held")
    assert not admission.admit("refused")
    with caplog.at_level(logging.WARNING, logger="test.admission"):
        for number in range(1000):
            admission.refused(f"192.0.2.1:{number}")
        await wait_for(lambda: len(caplog.records) == 2, TIMEOUT)
    assert [record.getMessage() for record in caplog.records] == [
        "refused peer=192.0.2.1:0: max-connections (1) reached",
        "refused 999 more connections: max-connections (1) reached",
    ]
