"""How a pumped connection pair ends, in-process: what each peer sees and what
[`pump`][wsframed.bridge.pump] returns, with exact values. Real websockets and asyncio
connections on 127.0.0.1. Written for mutants of wsframed/bridge/ that no test killed
(tools/mutation.py; docs/contributing.md, Testing); through the public API only
(``pump``, ``serve_bridge``, ``run_command``), so a restructuring of the package keeps
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from wsframed import WsStream
from wsframed.bridge import pump, run_command

from .conftest import tcp_pair, wait_for, ws_pair
from .test_bridge import bridge_args, echo, tcp_server

pytestmark = pytest.mark.timeout(60)
TIMEOUT = 10


async def test_target_eof_closes_the_websocket_with_1000_after_every_byte() -> None:
    """The TCP target sends bytes and its end: the WebSocket peer gets every byte,
    then close 1000 "target closed"; its own close ends the pump."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        running = asyncio.create_task(pump(WsStream(ws_server), *tcp_ours))
        await ws_client.send(b"abc")
        assert await asyncio.wait_for(tcp_peer[0].readexactly(3), TIMEOUT) == b"abc"
        tcp_peer[1].write(b"12345")
        tcp_peer[1].write_eof()
        assert await asyncio.wait_for(ws_client.recv(), TIMEOUT) == b"12345"
        with pytest.raises(WsConnectionClosed) as closed:
            await asyncio.wait_for(ws_client.recv(), TIMEOUT)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "target closed")
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (3, 5)
        assert (result.close_code, result.reason) == (1000, "target closed")
        assert await asyncio.wait_for(tcp_peer[0].read(), TIMEOUT) == b""


async def test_a_clean_websocket_close_half_closes_tcp_and_waits_for_the_target() -> None:
    """The WebSocket peer closes with 1000: TCP gets every byte then its end of
    stream; what the target still sends is read and dropped until its end."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        running = asyncio.create_task(pump(WsStream(ws_server), *tcp_ours))
        await ws_client.send(b"last bytes")
        await ws_client.close(1000)
        assert await asyncio.wait_for(tcp_peer[0].read(), TIMEOUT) == b"last bytes"
        await asyncio.sleep(0.2)
        assert not running.done()  # closing TCP with the reply unread would reset it
        tcp_peer[1].write(b"late reply" * 10_000)
        await tcp_peer[1].drain()
        tcp_peer[1].write_eof()
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (10, 0)
        assert (result.close_code, result.reason) == (1000, "websocket closed")


async def test_a_websocket_that_breaks_ends_the_pump_with_1006() -> None:
    """The WebSocket's TCP connection drops without a close frame: the pump ends with
    "websocket failed (1006)" and closes the target."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        running = asyncio.create_task(pump(WsStream(ws_server), *tcp_ours))
        await ws_client.send(b"xy")
        assert await asyncio.wait_for(tcp_peer[0].readexactly(2), TIMEOUT) == b"xy"
        ws_client.transport.abort()
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (2, 0)
        assert (result.close_code, result.reason) == (1006, "websocket failed (1006)")
        assert await asyncio.wait_for(tcp_peer[0].read(), TIMEOUT) == b""


async def test_a_target_reset_closes_the_websocket_with_1011_and_the_reason() -> None:
    """The target resets its connection: the WebSocket peer gets 1011 "target
    connection failed", the result says what failed in the system's words."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        running = asyncio.create_task(pump(WsStream(ws_server), *tcp_ours))
        sock = tcp_peer[1].get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        tcp_peer[1].transport.abort()
        with pytest.raises(WsConnectionClosed) as closed:
            await asyncio.wait_for(ws_client.recv(), TIMEOUT)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            1011, "target connection failed"
        )
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (0, 0)
        assert (result.close_code, result.reason) == (
            1011, "target failed: connection reset by peer"
        )


async def test_half_close_both_ways_then_both_sides_finished() -> None:
    """With half_close, each side's end of bytes crosses as the marker; once both
    directions ended the pump closes the WebSocket with 1000."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        stream = WsStream(ws_server, text="ignore")
        running = asyncio.create_task(pump(stream, *tcp_ours, half_close=True))
        await ws_client.send(b"request")
        await ws_client.send("EOF")
        assert await asyncio.wait_for(tcp_peer[0].read(), TIMEOUT) == b"request"
        tcp_peer[1].write(b"response")
        tcp_peer[1].write_eof()
        assert await asyncio.wait_for(ws_client.recv(), TIMEOUT) == b"response"
        assert await asyncio.wait_for(ws_client.recv(), TIMEOUT) == "EOF"
        with pytest.raises(WsConnectionClosed) as closed:
            await asyncio.wait_for(ws_client.recv(), TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1000
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (7, 8)
        assert (result.close_code, result.reason) == (1000, "both sides finished")


async def test_the_command_in_process_serves_until_sigterm_then_returns_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``run_command`` prints its listening line, bridges a client, and returns 0 on
    SIGTERM after closing the client with 1001; the signal handlers are removed."""
    async with tcp_server(echo) as port:
        args = bridge_args("--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}")
        running = asyncio.create_task(run_command(args))
        line = ""
        for _ in range(200):
            line += capsys.readouterr().err
            if line.endswith("\n"):
                break
            await asyncio.sleep(0.05)
        match = re.fullmatch(rf"listening on (ws://127\.0\.0\.1:\d+) -> tcp://127\.0\.0\.1:{port}\n",
                             line)
        assert match is not None, line
        async with connect(match.group(1)) as client:
            await client.send(b"ping")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == b"ping"
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(running, TIMEOUT) == 0
            with pytest.raises(WsConnectionClosed) as closed:
                await asyncio.wait_for(client.recv(), TIMEOUT)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
        loop = asyncio.get_running_loop()
        assert loop.remove_signal_handler(signal.SIGTERM) is False  # none left installed
        assert loop.remove_signal_handler(signal.SIGINT) is False


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_a_ctrl_c_before_the_signal_handlers_exits_130(
    loop: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real SIGINT that arrives while the command starts (here: as it makes its
    bridge, before its own handlers exist) ends ``python -m wsframed.bridge`` with the
    shell's status for Ctrl-C, 130, and no traceback."""
    import wsframed.bridge.command as command

    made = command.serve_bridge

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)
        return made(*args, **kwargs)

    monkeypatch.setattr(command, "serve_bridge", interrupted)
    status = command._main(
        ["--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", "tcp://127.0.0.1:9"]
    )
    assert (status, capsys.readouterr().err) == (130, "")


async def test_pump_leaves_no_task_running_when_it_returns() -> None:
    """With an idle timeout, after both directions ended: the pump's return leaves
    nothing of it running (its idle watcher included)."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        before = asyncio.all_tasks()
        running = asyncio.create_task(pump(WsStream(ws_server), *tcp_ours, idle_timeout=60))
        tcp_peer[1].write_eof()
        with pytest.raises(WsConnectionClosed):
            await asyncio.wait_for(ws_client.recv(), TIMEOUT)
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.close_code, result.reason) == (1000, "target closed")
        await asyncio.sleep(0)
        left = [task for task in asyncio.all_tasks() - before - {running} if not task.done()]
        assert left == []


async def test_a_websocket_peer_that_never_answers_the_close_is_dropped() -> None:
    """The target ends; the WebSocket peer reads nothing more, so never answers the
    close 1000: after ``close_timeout`` the pump drops it, closes the target and
    returns the reason it had ("target closed")."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        running = asyncio.create_task(pump(WsStream(ws_server), *tcp_ours, close_timeout=0.5))
        await ws_client.send(b"abc")
        assert await asyncio.wait_for(tcp_peer[0].readexactly(3), TIMEOUT) == b"abc"
        ws_client.transport.pause_reading()
        tcp_peer[1].write_eof()
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (3, 0)
        assert (result.close_code, result.reason) == (1000, "target closed")
        assert await asyncio.wait_for(tcp_peer[0].read(), TIMEOUT) == b""
        assert ws_server.transport.is_closing()
        ws_client.transport.abort()  # it would wait for its own close timeout


async def test_bytes_the_peer_sent_before_the_target_ended_still_reach_the_target() -> None:
    """The target half-closes (it still reads) while 4 MiB from the WebSocket peer are
    on their way: the pump closes the WebSocket with 1000 but delivers every byte the
    peer sent before its close to the target first."""
    size = 4 * 1024 * 1024
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        running = asyncio.create_task(pump(WsStream(ws_server), *tcp_ours))
        for _ in range(8):  # messages of 512 KiB: websockets' limit is 1 MiB
            await ws_client.send(b"z" * (size // 8))
        tcp_peer[1].write_eof()
        received = await asyncio.wait_for(tcp_peer[0].read(), TIMEOUT)
        assert len(received) == size
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (size, 0)
        assert (result.close_code, result.reason) == (1000, "target closed")


async def test_with_half_close_a_close_without_the_marker_is_a_websocket_close() -> None:
    """Half-close spoken, but the peer closes with 1000 without its end-of-bytes
    marker: the WebSocket closed (not half-closed); TCP gets the bytes and its end."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        stream = WsStream(ws_server, text="ignore")
        running = asyncio.create_task(pump(stream, *tcp_ours, half_close=True))
        await ws_client.send(b"data")
        await ws_client.close(1000)
        assert await asyncio.wait_for(tcp_peer[0].read(), TIMEOUT) == b"data"
        tcp_peer[1].write_eof()
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (4, 0)
        assert (result.close_code, result.reason) == (1000, "websocket closed")


@pytest.mark.parametrize("ending", ["idle", "target reset"])
async def test_the_code_this_side_sent_is_the_result_s_when_the_peer_never_answers(
    ending: str,
) -> None:
    """The pump starts the close (1001 on idle, 1011 when the target fails) and the
    peer reads nothing more: the result's code is the one sent, not 1006."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        ws_client.transport.pause_reading()
        idle = 0.3 if ending == "idle" else None
        running = asyncio.create_task(
            pump(WsStream(ws_server), *tcp_ours, idle_timeout=idle, close_timeout=0.5)
        )
        if ending == "target reset":
            sock = tcp_peer[1].get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            tcp_peer[1].transport.abort()
        result = await asyncio.wait_for(running, TIMEOUT)
        expected = (
            (1001, "idle timeout") if ending == "idle"
            else (1011, "target failed: connection reset by peer")
        )
        assert (result.close_code, result.reason) == expected
        ws_client.transport.abort()  # it would wait for its own close timeout


async def test_refusals_a_loop_turn_apart_are_counted_into_one_line_a_second_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ten refusals, each a loop turn after the last (as connections arrive): the
    first is logged by name, the nine others once, as a count, when the second has
    passed, not one line per turn."""
    from wsframed.bridge.admission import Admission

    admission = Admission(1, logging.getLogger("test.mutation.admission"))
    with caplog.at_level(logging.WARNING, logger="test.mutation.admission"):
        for number in range(10):
            admission.refused(f"192.0.2.1:{number}")
            await asyncio.sleep(0)
        await wait_for(lambda: len(caplog.records) >= 2, TIMEOUT)
        await asyncio.sleep(0.05)
    assert [record.getMessage() for record in caplog.records] == [
        "refused peer=192.0.2.1:0: max-connections (1) reached",
        "refused 9 more connections: max-connections (1) reached",
    ]


async def test_closing_the_admission_logs_the_refusals_not_yet_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bridge closing within the second after refusals logs their count at once."""
    from wsframed.bridge.admission import Admission

    admission = Admission(1, logging.getLogger("test.mutation.admission"))
    with caplog.at_level(logging.WARNING, logger="test.mutation.admission"):
        for number in range(3):
            admission.refused(f"192.0.2.1:{number}")
        admission.close()
    assert [record.getMessage() for record in caplog.records] == [
        "refused peer=192.0.2.1:0: max-connections (1) reached",
        "refused 2 more connections: max-connections (1) reached",
    ]


def test_peer_addresses_in_log_lines_bracket_ipv6_hosts() -> None:
    """How a refused or failed peer is named in the bridge's log lines: ``HOST:PORT``,
    ``[HOST]:PORT`` for an IPv6 host (its own colons would hide the port), and
    anything that is not a socket address as its ``str``."""
    from wsframed.bridge.admission import format_address

    assert format_address(("127.0.0.1", 6080)) == "127.0.0.1:6080"
    assert format_address(("::1", 6080, 0, 0)) == "[::1]:6080"
    assert format_address(("fe80::1%lo", 443, 0, 1)) == "[fe80::1%lo]:443"
    assert format_address("/run/bridge.sock") == "/run/bridge.sock"
    assert format_address(("lonely",)) == "('lonely',)"
    assert format_address(None) == "None"


async def test_chunk_size_1_sends_each_byte_of_the_target_as_its_own_message() -> None:
    """``chunk_size`` bounds each read: at 1 (the smallest allowed) every byte from
    the target crosses as a message of its own."""
    async with ws_pair() as (ws_client, ws_server), tcp_pair() as (tcp_peer, tcp_ours):
        running = asyncio.create_task(pump(WsStream(ws_server), *tcp_ours, chunk_size=1))
        await ws_client.send(b"abc")
        assert await asyncio.wait_for(tcp_peer[0].readexactly(3), TIMEOUT) == b"abc"
        tcp_peer[1].write(b"xy")
        tcp_peer[1].write_eof()
        assert [await asyncio.wait_for(ws_client.recv(), TIMEOUT) for _ in range(2)] == [
            b"x", b"y"
        ]
        result = await asyncio.wait_for(running, TIMEOUT)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (3, 2)
        assert (result.close_code, result.reason) == (1000, "target closed")


# Why a target could not be reached, in the bridge's connection log line ------------


async def unreachable_reason(
    listen: str, to: str, caplog: pytest.LogCaptureFixture, **options: Any
) -> str:
    """Run one client through a bridge whose target fails; the reason it logs."""
    from wsframed.bridge import serve_bridge

    caplog.set_level(logging.INFO, logger="wsframed.bridge")
    async with serve_bridge(listen, to, **options) as bridge:
        if listen.startswith("ws://"):
            async with connect(bridge.url, compression=None, open_timeout=TIMEOUT) as client:
                with pytest.raises(WsConnectionClosed):
                    await asyncio.wait_for(client.recv(), TIMEOUT)
            assert (client.close_code, client.close_reason) == (1011, "target unreachable")
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
            with contextlib.suppress(ConnectionResetError):  # aborted
                assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            writer.close()
        await wait_for(lambda: any(r.name == "wsframed.bridge" for r in caplog.records),
                       TIMEOUT)
    [record] = [r for r in caplog.records if r.name == "wsframed.bridge"]
    assert isinstance(record.args, tuple)
    reason = record.args[-1]
    assert isinstance(reason, str)
    return reason


async def test_an_unresolvable_target_is_named_in_the_resolver_s_words(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A host name that does not resolve: the resolver's own message, first letter
    lowered (the system's wording, whatever it is here)."""
    with pytest.raises(socket.gaierror) as failed:
        socket.getaddrinfo("nonexistent.invalid", 9)
    words = failed.value.strerror
    assert words
    reason = await unreachable_reason("ws://127.0.0.1:0", "tcp://nonexistent.invalid:9", caplog)
    assert reason == f"target unreachable: {words[0].lower()}{words[1:]}"


@contextlib.asynccontextmanager
async def silent_or_bad_ws_target(accept: str | None) -> AsyncIterator[str]:
    """A ws:// target that reads the handshake request and then never answers
    (``accept`` None) or answers 101 with ``accept`` as its Sec-WebSocket-Accept."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if accept is not None:
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + accept.encode() + b"\r\n\r\n"
            )
        await reader.read()  # until the bridge gives up
        writer.close()

    async with tcp_server(answer) as port:
        yield f"ws://127.0.0.1:{port}"


async def test_a_target_that_never_answers_its_handshake_timed_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with silent_or_bad_ws_target(None) as target:
        reason = await unreachable_reason("tcp://127.0.0.1:0", target, caplog,
                                          open_timeout=0.5)
    assert reason == "target unreachable: timed out"


@pytest.mark.parametrize("length", [200, 201, 400])
async def test_a_failure_description_is_cut_to_200_characters(
    length: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A target's bad handshake answer is described by the error's type and message,
    in at most 200 characters: 200 kept whole, longer cut to 197 and "..."."""
    prefix = "InvalidHeaderValue: invalid Sec-WebSocket-Accept header: "
    accept = "A" * (length - len(prefix))
    async with silent_or_bad_ws_target(accept) as target:
        reason = await unreachable_reason("tcp://127.0.0.1:0", target, caplog)
    described = prefix + accept
    assert len(described) == length
    expected = described if length <= 200 else described[:197] + "..."
    assert reason == f"target unreachable: {expected}"
