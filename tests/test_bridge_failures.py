"""How a bridge tells a failed or unreachable target: what the peer sees, what it logs.

Real bridge processes; the targets run in the test process. The WebSocket client must
see 1011 and the reason (a clean 1000 would look like success), and both directions
word an unreachable target the same way in the log.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from wsframed.bridge.pumping import TARGET_FAILED, TARGET_UNREACHABLE

from .test_bridge import bridge, free_port, loops, tcp_server, wait_for_lines, ws_echo_server

TIMEOUT = 20


def connection_line(peer: str, target: str, to_target: int, to_client: int, close: str,
                    reason: str) -> str:
    """The pattern of the one log line of a connection (its duration varies)."""
    return (
        rf"wsframed\.bridge: peer={re.escape(peer)} target={re.escape(target)} "
        rf"to_target={to_target} to_client={to_client} duration=\d+\.\d{{3}}s "
        rf"close={close} reason={re.escape(repr(reason))}"
    )


async def reset_after_five_bytes(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Read five bytes, then reset the connection (SO_LINGER 0 sends RST on close)."""
    await reader.readexactly(5)
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    writer.transport.abort()


@loops
async def test_a_failed_target_closes_the_websocket_with_1011_and_the_reason(loop: str) -> None:
    async with tcp_server(reset_after_five_bytes) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
    ) as process:
        async with connect(process.url, compression=None, open_timeout=10) as client:
            host, client_port = client.local_address[:2]
            await client.send(b"hello")
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(client.recv(), TIMEOUT)
        assert client.close_code == 1011
        assert client.close_reason == TARGET_FAILED == "target connection failed"
        [line] = await wait_for_lines(process, 1)
    assert re.fullmatch(
        connection_line(f"{host}:{client_port}", f"tcp://127.0.0.1:{port}", 5, 0, "1011",
                        "target failed: connection reset by peer"),
        line,
    ), line


@loops
async def test_an_unreachable_target_is_worded_the_same_both_ways(loop: str) -> None:
    port = free_port()  # nothing listens there
    async with bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
    ) as process:
        async with connect(process.url, compression=None, open_timeout=10) as client:
            host, client_port = client.local_address[:2]
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(client.recv(), TIMEOUT)
        assert client.close_code == 1011
        assert client.close_reason == TARGET_UNREACHABLE == "target unreachable"
        [line] = await wait_for_lines(process, 1)
    assert re.fullmatch(
        connection_line(f"{host}:{client_port}", f"tcp://127.0.0.1:{port}", 0, 0, "1011",
                        "target unreachable: connection refused"),
        line,
    ), line

    async with ws_echo_server() as url:
        pass  # started and stopped: its port now refuses connections
    async with bridge("--loop", loop, "--listen", "tcp://127.0.0.1:0", "--to", url) as process:
        reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
        host, client_port = writer.get_extra_info("sockname")[:2]
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        writer.close()
        [line] = await wait_for_lines(process, 1)
    assert re.fullmatch(
        connection_line(f"{host}:{client_port}", url, 0, 0, "-",
                        "target unreachable: connection refused"),
        line,
    ), line


# pump() in-process: the caller's mistakes and the peer's text ------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_size": 0}, "chunk_size must be a positive number of bytes, not 0"),
        ({"chunk_size": -1}, "chunk_size must be a positive number of bytes, not -1"),
        ({"idle_timeout": 0}, "idle_timeout must be positive or None, not 0"),
        ({"idle_timeout": -0.5}, "idle_timeout must be positive or None, not -0.5"),
    ],
)
async def test_pump_refuses_bad_options_before_touching_either_side(
    options: dict[str, float], message: str
) -> None:
    """The caller's mistake raises at once; both connections stay open and usable."""
    from wsframed import WsStream
    from wsframed.bridge import pump

    from .conftest import tcp_pair, ws_pair

    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        with pytest.raises(ValueError, match=r"^(chunk_size|idle_timeout) must be") as refused:
            await pump(WsStream(ws_server), *tcp_ours, **options)  # type: ignore[arg-type]
        assert str(refused.value) == message
        await ws_client.send(b"still open")
        assert await asyncio.wait_for(ws_server.recv(), 5) == b"still open"
        tcp_peer[1].write(b"tcp too")
        assert await asyncio.wait_for(tcp_ours[0].readexactly(7), 5) == b"tcp too"


async def test_pump_rejects_a_text_message_with_1003_after_the_bytes_before_it() -> None:
    """Without the half-close subprotocol a text message is not bytes: the bytes before
    it reach TCP, then the WebSocket closes with 1003 and the TCP side sees its end."""
    from wsframed import WsStream
    from wsframed.bridge import pump

    from .conftest import tcp_pair, ws_pair

    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        running = asyncio.create_task(pump(WsStream(ws_server), *tcp_ours))
        await ws_client.send(b"bytes first")
        await ws_client.send("then text")
        assert await asyncio.wait_for(tcp_peer[0].read(), TIMEOUT) == b"bytes first"
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (11, 0)
        assert (result.close_code, result.reason) == (1003, "text message rejected")
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws_client.recv(), TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003
