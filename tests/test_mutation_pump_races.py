"""Endings of a pumped connection pair that depend on which of the pump's two loops
meets an event first, ordered by gates instead of left to loopback's timing.

The pump's TCP side is ``Gated``: an anyio byte stream over a real loopback TCP
connection (``anyio.connect_tcp``) whose ``send`` and ``receive`` wait at a gate the
test opens. So one loop is held while the other meets the event (the target's end
of stream, its reset, a WebSocket that broke), and the held loop then meets the same
connection for real: a target reset by a real ``SO_LINGER`` 0 close, a WebSocket
dropped by a real abort. Each test runs on asyncio and on trio (``anyio.run``), over
real websockets connections. Written for the supervisor mutants of
wsframed/bridge/pumping.py that loopback could not order (docs/contributing.md,
Testing).

Where a held loop must wait until the pump has acted on the other loop's ending and
is waiting again, the test waits until every task is blocked (``blocked()``): no
sleep orders anything. Every wait is bounded.
"""

from __future__ import annotations

import gc
import logging
import socket
import struct
from typing import Any

import anyio
import anyio.abc
import pytest

from wsframed import WsStream
from wsframed.bridge import PumpResult, pump
from wsframed.bridge.pumping import TARGET_FAILED

from .loop_families import Peer, families, run, ws_pair
from .test_bridge_families import WAIT, closed_with, read_exactly, read_to_eof, tcp_pair

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="TCP_INFO: Linux only"),
]

_TCP_CLOSE = 7  # tcpi_state once a reset arrived (linux/tcp_states.h)


class Gated(anyio.abc.ByteStream):
    """A real anyio TCP stream whose ``send`` and ``receive`` wait at gates.

    A gate is open until ``hold_sends()``/``hold_receives()``/``hold_eof()`` closes
    it; a call that meets a closed gate sets ``sending``/``receiving``/``sending_eof``
    and waits for the test's
    ``release_*()``, then goes to the real stream; a held receive sets ``received``
    once the real stream answered (bytes, its end or an error).
    """

    def __init__(self, inner: anyio.abc.SocketStream) -> None:
        self.inner = inner
        self.send_gate, self.receive_gate = anyio.Event(), anyio.Event()
        self.send_gate.set()
        self.receive_gate.set()
        self.sending, self.receiving = anyio.Event(), anyio.Event()
        self.received = anyio.Event()
        self.eof_gate, self.sending_eof = anyio.Event(), anyio.Event()
        self.eof_gate.set()

    def hold_sends(self) -> None:
        self.send_gate, self.sending = anyio.Event(), anyio.Event()

    def hold_receives(self) -> None:
        self.receive_gate, self.receiving = anyio.Event(), anyio.Event()
        self.received = anyio.Event()

    def hold_eof(self) -> None:
        self.eof_gate, self.sending_eof = anyio.Event(), anyio.Event()

    def release_eof(self) -> None:
        self.eof_gate.set()

    def release_sends(self) -> None:
        self.send_gate.set()

    def release_receives(self) -> None:
        self.receive_gate.set()

    async def send(self, item: bytes) -> None:
        if not self.send_gate.is_set():
            self.sending.set()
            await self.send_gate.wait()
        await self.inner.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.receive_gate.is_set():
            return await self.inner.receive(max_bytes)
        self.receiving.set()
        await self.receive_gate.wait()
        try:
            return await self.inner.receive(max_bytes)
        finally:
            self.received.set()

    async def send_eof(self) -> None:
        if not self.eof_gate.is_set():
            self.sending_eof.set()
            await self.eof_gate.wait()
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Any:
        return self.inner.extra_attributes


async def waiting(event: anyio.Event) -> None:
    """Until ``event`` (a gate's: a loop held, a held receive answered) is set."""
    with anyio.fail_after(WAIT):
        await event.wait()


async def reset(far: anyio.abc.SocketStream, ours: Gated) -> None:
    """The target resets its connection (``SO_LINGER`` 0), and the reset arrived: the
    pump's socket is in state CLOSE (polled, bounded: the kernel's state, not a delay)."""
    far_socket = far.extra(anyio.abc.SocketAttribute.raw_socket)
    far_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await far.aclose()
    our_socket = ours.extra(anyio.abc.SocketAttribute.raw_socket)
    with anyio.fail_after(WAIT):
        while our_socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != _TCP_CLOSE:
            await anyio.sleep(0.005)


async def broken(peer: Peer, client: Any) -> None:
    """The WebSocket peer drops its TCP connection without a close frame, and the
    pump's connection saw it."""
    await peer.abort()
    with anyio.fail_after(WAIT):
        await client.wait_closed()


async def blocked() -> None:
    """Until every other task waits: the pump acted on what its loops reported.

    Twice: on asyncio, anyio's check sees tasks, not callbacks already queued (a
    task's done callbacks, which wake the pump's supervisor); the second call's first
    loop turn runs them, and a task they wake is seen. Trio's check is exact.
    """
    with anyio.fail_after(WAIT):
        await anyio.wait_all_tasks_blocked()
        await anyio.wait_all_tasks_blocked()


async def pumping(results: list[PumpResult], ws: WsStream, ours: Gated, **options: Any) -> None:
    options = {"close_timeout": WAIT, "chunk_size": 3, **options}
    with anyio.fail_after(WAIT):
        results.append(await pump(ws, ours, **options))


def failed_write_counted(family: str) -> int:
    """The bytes of the first write into a reset socket that count as written.

    anyio on asyncio reports a failed write at the next ``send()`` (its transport
    takes the bytes, then fails), so the pump counts that chunk and fails one chunk
    later; on trio the failing ``send()`` raises.
    """
    return 3 if family == "asyncio" else 0


@families
@pytest.mark.parametrize("half_close", [False, True])
def test_a_write_failing_after_the_target_s_end_is_target_closed(
    family: str, half_close: bool
) -> None:
    """The target sends its end of stream while the WebSocket->TCP loop is held with
    bytes to write, then resets: the held write fails for real, after the end was
    seen, so the ending is "target closed" and the WebSocket closes with 1000 (with
    half-close: the marker crossed first, then the close 1000 without a reason), not
    "target failed" with 1011."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair("anyio") as (far, (raw,)):
            ours = Gated(raw)
            stream = WsStream(client, text="ignore") if half_close else WsStream(client)
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: pumping(results, stream, ours, half_close=half_close))
                await peer.send(b"abc")
                assert await read_exactly(far, 3) == b"abc"
                ours.hold_sends()
                await peer.send(b"defghi")
                await waiting(ours.sending)  # holding b"def"
                await far.send_eof()
                if half_close:
                    assert await peer.recv() == "EOF"
                else:
                    assert await closed_with(peer) == (1000, "target closed")
                await reset(far, ours)
                ours.release_sends()
                if half_close:
                    assert await closed_with(peer) == (1000, "")
            [result] = results
            assert result.ws_to_tcp == 3 + failed_write_counted(family)
            assert result.tcp_to_ws == 0
            assert (result.close_code, result.reason) == (1000, "target closed")

    run(family, body)


@families
def test_a_write_to_a_target_that_reset_is_target_failed_with_1011(family: str) -> None:
    """The target resets while the TCP->WebSocket loop is held before its read: the
    WebSocket->TCP loop's write meets the reset first (no end of stream seen), so the
    ending is "target failed" in the system's words and the WebSocket peer gets 1011
    "target connection failed"."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair("anyio") as (far, (raw,)):
            ours = Gated(raw)
            ours.hold_receives()
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: pumping(results, WsStream(client), ours))
                await waiting(ours.receiving)
                await reset(far, ours)
                await peer.send(b"abcdef")
                assert await closed_with(peer) == (1011, TARGET_FAILED)
            [result] = results
            assert result.ws_to_tcp == failed_write_counted(family)
            assert result.tcp_to_ws == 0
            assert result.close_code == 1011
            assert result.reason == "target failed: connection reset by peer"

    run(family, body)


@families
@pytest.mark.parametrize("half_close", [False, True])
def test_the_tcp_loop_meeting_a_broken_websocket_first_lets_the_other_deliver(
    family: str, half_close: bool
) -> None:
    """The WebSocket breaks (no close frame) while the WebSocket->TCP loop is held
    with bytes to write; the TCP->WebSocket loop meets the broken WebSocket first:
    sending the target's bytes, or with half-close the end-of-bytes marker (a
    connection closed without a close frame received). The pump waits for the held
    loop: every byte the peer sent before breaking reaches the target, then its end,
    and the ending is "websocket failed (1006)"."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair("anyio") as (far, (raw,)):
            ours = Gated(raw)
            ours.hold_receives()
            stream = WsStream(client, text="ignore") if half_close else WsStream(client)
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: pumping(results, stream, ours, half_close=half_close))
                await waiting(ours.receiving)
                await peer.send(b"abc")
                assert await read_exactly(far, 3) == b"abc"
                ours.hold_sends()
                await peer.send(b"defghi")
                await waiting(ours.sending)  # holding b"def"
                await broken(peer, client)
                if half_close:
                    await far.send_eof()
                else:
                    await far.send(b"xyz")
                ours.release_receives()
                await waiting(ours.received)
                await blocked()  # the TCP->WebSocket loop ended on the broken WebSocket
                ours.release_sends()
                assert await read_to_eof(far) == b"defghi"
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (9, 0)
            assert (result.close_code, result.reason) == (1006, "websocket failed (1006)")

    run(family, body)


@families
def test_the_half_close_marker_after_the_peer_s_close_frame(family: str) -> None:
    """With half-close, the WebSocket peer closes (1000) while the WebSocket->TCP loop
    is held with bytes to write; then the target's end makes the other loop send its
    marker on the closed connection. The held loop still delivers every byte, then
    the clean close half-closes TCP: "websocket closed", 1000."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair("anyio") as (far, (raw,)):
            ours = Gated(raw)
            ours.hold_receives()
            stream = WsStream(client, text="ignore")
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: pumping(results, stream, ours, half_close=True))
                await waiting(ours.receiving)
                ours.hold_sends()
                await peer.send(b"abcdef")
                await waiting(ours.sending)  # holding b"abc"
                await peer.close(1000)
                await far.send_eof()
                ours.release_receives()
                await waiting(ours.received)
                await blocked()  # the marker met the closed connection
                ours.release_sends()
                assert await read_to_eof(far) == b"abcdef"
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (6, 0)
            assert (result.close_code, result.reason) == (1000, "websocket closed")

    run(family, body)


@families
def test_a_close_this_side_starts_on_a_broken_websocket_reports_1006(family: str) -> None:
    """The peer sends bytes and a text message, then its connection breaks, while the
    WebSocket->TCP loop is held with the bytes: the loop then delivers them and meets
    the text message, and the pump closes with 1003 on a connection already gone. The
    result's code is the one the connection ended with (1006): no 1003 was sent."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair("anyio") as (far, (raw,)):
            ours = Gated(raw)
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: pumping(results, WsStream(client), ours))
                await peer.send(b"abc")
                assert await read_exactly(far, 3) == b"abc"
                ours.hold_sends()
                await peer.send(b"def")
                await waiting(ours.sending)
                await peer.send("text")
                await broken(peer, client)
                ours.release_sends()
                assert await read_to_eof(far) == b"def"
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (6, 0)
            assert (result.close_code, result.reason) == (1006, "text message rejected")

    run(family, body)


@families
@pytest.mark.parametrize("half_close", [False, True])
def test_the_other_loop_held_past_close_timeout_after_a_broken_websocket(
    family: str, half_close: bool
) -> None:
    """The TCP->WebSocket loop meets a broken WebSocket (sending the target's bytes,
    or with half-close its marker) while the other loop is held writing to the
    target (as a target that stopped reading would hold it): after ``close_timeout``
    the pump stops waiting, "close timed out", and closes the target's connection
    after the bytes it had delivered."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair("anyio") as (far, (raw,)):
            ours = Gated(raw)
            ours.hold_receives()
            stream = WsStream(client, text="ignore") if half_close else WsStream(client)
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: pumping(results, stream, ours, close_timeout=0.5,
                                                 half_close=half_close))
                await waiting(ours.receiving)
                await peer.send(b"abc")
                assert await read_exactly(far, 3) == b"abc"
                ours.hold_sends()
                await peer.send(b"def")
                await waiting(ours.sending)  # held, never released
                await broken(peer, client)
                if half_close:
                    await far.send_eof()
                else:
                    await far.send(b"xyz")
                ours.release_receives()
                assert await read_to_eof(far) == b""
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (3, 0)
            assert (result.close_code, result.reason) == (1006, "close timed out")

    run(family, body)


@families
def test_both_half_closes_crossing_while_the_pump_half_closes_tcp(family: str) -> None:
    """With half-close, the peer's marker ends the WebSocket->TCP loop and the pump
    half-closes TCP; while it does (held), the target's bytes and end cross to the
    peer and the other loop ends too: both directions finished, the WebSocket closes
    with 1000, not a timeout."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair("anyio") as (far, (raw,)):
            ours = Gated(raw)
            ours.hold_eof()
            stream = WsStream(client, text="ignore")
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: pumping(results, stream, ours, half_close=True))
                await peer.send(b"abc")
                await peer.send("EOF")
                assert await read_exactly(far, 3) == b"abc"
                await waiting(ours.sending_eof)
                await far.send(b"xyz")
                await far.send_eof()
                assert await peer.recv() == b"xyz"
                assert await peer.recv() == "EOF"
                await blocked()  # the TCP->WebSocket loop ended after its marker
                ours.release_eof()
                assert await read_to_eof(far) == b""
                assert await closed_with(peer) == (1000, "")
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (3, 3)
            assert (result.close_code, result.reason) == (1000, "both sides finished")

    run(family, body)


@families
def test_a_loop_that_failed_while_the_pump_half_closed_tcp_is_not_logged(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The peer closes cleanly; while the pump half-closes TCP (held), the target
    resets and the TCP->WebSocket loop ends with that error. The pump cancels a loop
    that has already ended, so it reads its outcome: the ending is "websocket
    closed", 1000, and on asyncio no "Task exception was never retrieved" is logged
    when the loop's task is collected."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair("anyio") as (far, (raw,)):
            ours = Gated(raw)
            ours.hold_eof()
            ours.hold_receives()
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: pumping(results, WsStream(client), ours))
                await peer.send(b"abc")
                assert await read_exactly(far, 3) == b"abc"
                await peer.close(1000)
                await waiting(ours.sending_eof)
                await reset(far, ours)
                ours.release_receives()
                await waiting(ours.received)
                await blocked()  # the TCP->WebSocket loop ended on the reset
                ours.release_eof()
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (3, 0)
            assert (result.close_code, result.reason) == (1000, "websocket closed")
        results.clear()
        gc.collect()  # the pump's tasks: asyncio logs an exception nobody retrieved

    with caplog.at_level(logging.ERROR):
        run(family, body)
    assert [record.getMessage() for record in caplog.records] == []
