"""RpcPeer's write path failing, or cancelled, before its reader notices anything,
ordered by gates instead of left to loopback's timing.

The peer runs over ``Gated`` (tests/test_mutation_pump_races.py): an anyio byte
stream over a real loopback TCP connection whose ``send`` and ``receive`` wait at
gates the test opens. The peer's reader is held at its receive gate, so the write
path meets the broken connection first: the far end resets for real (``SO_LINGER``
0) while a send is held, then the send is released and fails for real. Each test
runs on asyncio and on trio. Written for the write-path mutants of
wsframed/rpc/core.py (``_write_loop``, ``_flush``, ``_send_lone``) that loopback
could not order (docs/contributing.md, Testing).

Where the test must wait until the peer has acted, it waits until every task is
blocked (``blocked()``): no sleep orders anything. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import msgpack  # type: ignore[import-untyped]
import pytest

from wsframed import ClosedStreamError, ConnectionClosed, Framed, WsStream
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer

from .loop_families import families, run, ws_pair
from .test_bridge_families import tcp_pair
from .test_mutation_pump_races import Gated, blocked, reset, waiting

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="TCP_INFO: Linux only"),
]

WAIT = 20  # seconds: the bound on every wait (the machine is shared)
BIG = 32 * 1024 * 1024  # far more than loopback's socket buffers hold

# A call that flushes itself, after a notification fed in the same turn: on trio the
# call's slot (trio.Semaphore.acquire) is a schedule point and trio picks the next
# task at random, so the writer task may take the flush first; asyncio runs the call
# on without a turn. Those tests run on asyncio only.
own_flush = pytest.mark.parametrize("family", ["asyncio"])


async def broken(far: anyio.abc.SocketStream, ours: Gated) -> None:
    """The far end resets the connection, and our socket has reported it once.

    The first write after a reset is where the kernel reports it; asyncio's transport
    takes that write and reports the failure only at the next one, trio raises at
    once. One byte written here, past the gates, takes that first report on both
    families, so the peer's next write fails at once on both.
    """
    await reset(far, ours)
    with contextlib.suppress(anyio.BrokenResourceError):
        await ours.inner.send(b"\x00")
    await blocked()  # asyncio: the transport's connection_lost() has run


class Calls:
    """Calls and notifications started in a task group; what each returned or raised."""

    def __init__(self, rpc: RpcPeer, group: anyio.abc.TaskGroup) -> None:
        self.rpc, self.group = rpc, group
        self.outcomes: dict[str, Any] = {}
        self.scopes: dict[str, anyio.CancelScope] = {}

    def call(self, name: str, *params: Any) -> None:
        self.group.start_soon(self.calling, name, *params)

    async def calling(self, name: str, *params: Any) -> None:
        with anyio.CancelScope() as scope:
            self.scopes[name] = scope
            try:
                self.outcomes[name] = await self.rpc.call(name, *params)
            except Exception as exc:
                self.outcomes[name] = exc
        if scope.cancelled_caught:
            self.outcomes[name] = "cancelled"

    def task(self, name: str, *params: Any, notification: str = "") -> asyncio.Task[Any]:
        """A call as its own asyncio task (``Task.cancel()`` cancels it once), after a
        notification in the same turn if one is named."""

        async def calling() -> Any:
            if notification:
                await self.rpc.notify(notification)
            return await self.rpc.call(name, *params)

        return asyncio.ensure_future(calling())

    def notify_then_call(self, notification: str, name: str, *params: Any) -> None:
        """A notification, then a call in the same turn of the loop (one task)."""

        async def both() -> None:
            self.outcomes[notification] = await self.rpc.notify(notification)
            await self.calling(name, *params)

        self.group.start_soon(both)


@contextlib.asynccontextmanager
async def gated_peer(
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[tuple[RpcPeer, Gated, anyio.abc.SocketStream, Calls, dict[str, Any]]]:
    """An RpcPeer over a Gated loopback connection whose reader is held (it has read
    one request of the far end, whose handler ``block`` waits: ``handled`` says how it
    ended), and the far end's stream."""
    handled: dict[str, Any] = {}
    async with tcp_pair("anyio") as (far, (raw,)):
        ours = Gated(raw)
        ours.hold_receives()
        rpc = RpcPeer(Framed(ours, MsgpackCodec()))

        @rpc.method
        async def block() -> None:
            handled["started"] = True
            try:
                await anyio.sleep_forever()
            except BaseException as exc:
                handled["ended"] = type(exc).__name__
                raise

        with caplog.at_level(logging.WARNING, logger="wsframed"), anyio.fail_after(WAIT):
            async with rpc, anyio.create_task_group() as group:
                await waiting(ours.receiving)
                await far.send(msgpack.packb([0, 7, "block", []]))
                ours.release_receives()
                ours.hold_receives()  # the reader's next receive waits at this gate
                await waiting(ours.receiving)
                await blocked()  # the handler's task has started
                assert handled == {"started": True}
                yield rpc, ours, far, Calls(rpc, group), handled
                group.cancel_scope.cancel()


def assert_kept(error: Any, rpc: RpcPeer) -> None:
    """``error`` is the ConnectionClosed of a write into the reset connection."""
    assert isinstance(error, ConnectionClosed)
    assert (error.code, error.reason) == (1006, "BrokenResourceError")
    assert isinstance(error.__cause__, anyio.BrokenResourceError)
    assert isinstance(error.__cause__.__cause__, (ConnectionResetError, BrokenPipeError))


async def later_calls_raise(rpc: RpcPeer, error: BaseException, ours: Gated) -> None:
    """A later call and notification raise the same object; the reader, released,
    meets the reset and changes nothing."""
    for _ in range(2):
        with pytest.raises(ConnectionClosed) as raised:
            await rpc.call("later")
        assert raised.value is error
        with pytest.raises(ConnectionClosed) as raised:
            await rpc.notify("later")
        assert raised.value is error
    ours.release_receives()
    await blocked()
    with pytest.raises(ConnectionClosed) as raised:
        await rpc.call("later")
    assert raised.value is error


def no_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """No "reader failed" traceback: a reset is the connection's end, not a bug."""
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@families
def test_the_writer_failing_first_fails_every_call_with_one_kept_error(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A call in flight; a second call's request is flushed by the writer task, whose
    send is held; the far end resets; the send is released and fails. Both calls,
    every later call and notification raise one ConnectionClosed object (1006, caused
    by anyio's BrokenResourceError), the far end's request's handler is cancelled,
    and nothing is logged as a failure of the peer."""

    async def body() -> None:
        async with gated_peer(caplog) as (rpc, ours, far, calls, handled):
            calls.call("a", 1)  # alone: sent by the call itself
            assert msgpack.unpackb(await far.receive()) == [0, 0, "a", [1]]
            ours.hold_sends()
            calls.call("b", 2)  # a call in flight: the writer task sends it
            await waiting(ours.sending)
            await broken(far, ours)
            ours.release_sends()
            await blocked()
            error = calls.outcomes["a"]
            assert_kept(error, rpc)
            assert calls.outcomes == {"a": error, "b": error}
            assert set(handled) == {"started", "ended"}
            await later_calls_raise(rpc, error, ours)
        no_warnings(caplog)

    run(family, body)


@own_flush
def test_a_call_s_own_flush_failing_first_ends_the_peer(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A notification is fed, then a call made in the same turn flushes both itself
    (the only call in flight, after a frame waiting to be sent) and is held; the far
    end resets; the send is released and fails: the call raises the kept error, the
    handler is cancelled before the reader notices, every later call raises the same
    object."""

    async def body() -> None:
        async with gated_peer(caplog) as (rpc, ours, far, calls, handled):
            ours.hold_sends()
            calls.notify_then_call("n1", "b", 2)
            await waiting(ours.sending)
            await blocked()
            assert calls.outcomes == {"n1": None}
            await broken(far, ours)
            ours.release_sends()
            await blocked()
            error = calls.outcomes["b"]
            assert_kept(error, rpc)
            assert calls.outcomes == {"n1": None, "b": error}
            assert set(handled) == {"started", "ended"}
            await later_calls_raise(rpc, error, ours)
        no_warnings(caplog)

    run(family, body)


@families
def test_a_lone_call_s_send_failing_first_ends_the_peer(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No call in flight: a call sends its request itself and is held; a second call
    waits for that send; the far end resets; the send is released and fails: both
    calls raise the kept error and the handler is cancelled before the reader notices."""

    async def body() -> None:
        async with gated_peer(caplog) as (rpc, ours, far, calls, handled):
            ours.hold_sends()
            calls.call("a", 1)
            await waiting(ours.sending)
            calls.call("b", 2)
            await blocked()
            await broken(far, ours)
            ours.release_sends()
            await blocked()
            error = calls.outcomes["a"]
            assert_kept(error, rpc)
            assert calls.outcomes == {"a": error, "b": error}
            assert set(handled) == {"started", "ended"}
            await later_calls_raise(rpc, error, ours)
        no_warnings(caplog)

    run(family, body)


@own_flush
def test_a_call_cancelled_while_its_own_flush_is_held_ends_the_peer_loudly(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A notification is fed, then a call made in the same turn flushes both itself
    and is held in the anyio stream's ``send()``; it is cancelled: it ends cancelled
    at once. How much of that send reached the peer is unknown, so nothing more is
    sent: the notification, accepted, is not lost silently; the peer ends and the
    next call raises ``ConnectionClosed`` naming the cut send."""

    async def body() -> None:
        async with gated_peer(caplog) as (_rpc, ours, _far, calls, _handled):
            ours.hold_sends()
            calls.notify_then_call("n1", "b", 2)
            await waiting(ours.sending)
            calls.scopes["b"].cancel()
            await blocked()
            assert calls.outcomes == {"n1": None, "b": "cancelled"}
            ours.release_sends()
            calls.call("c", 3)
            await blocked()
            assert_cut(calls.outcomes.pop("c"), [[2, "n1", []], [0, 0, "b", [2]]])
            assert calls.outcomes == {"n1": None, "b": "cancelled"}
        no_warnings(caplog)

    run(family, body)


def assert_cut(error: Any, messages: list[Any]) -> None:
    """``error`` is the ConnectionClosed every call raises after a cancelled send of
    ``messages`` over the anyio stream."""
    size = sum(len(msgpack.packb(message)) for message in messages)
    text = (
        f"a send of {size} bytes over this anyio stream was cancelled and may have been "
        "cut short: nothing more is sent on it"
    )
    assert isinstance(error, ConnectionClosed)
    assert (error.code, error.reason) == (1006, f"ClosedStreamError: {text}")
    assert isinstance(error.__cause__, ClosedStreamError)
    assert str(error.__cause__) == text


@own_flush
def test_a_call_s_own_flush_ends_at_its_task_s_cancel(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A notification is fed, then a call (its own asyncio task) flushes both itself
    and is held there; ``Task.cancel()`` once: the call ends cancelled at once (the
    cancellation is not swallowed), and the next call raises the cut send's error."""

    async def body() -> None:
        async with gated_peer(caplog) as (_rpc, ours, _far, calls, _handled):
            ours.hold_sends()
            task = calls.task("b", 2, notification="n1")
            await waiting(ours.sending)
            task.cancel()
            await blocked()
            assert task.cancelled()
            await next_call_cut(ours, calls, [[2, "n1", []], [0, 0, "b", [2]]])
        no_warnings(caplog)

    run(family, body)


@own_flush
def test_a_lone_call_s_send_ends_at_its_task_s_cancel(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No call in flight: a call (its own asyncio task) sends its request itself and
    is held; ``Task.cancel()`` once: it ends cancelled at once (the cancellation is
    not swallowed), and the next call raises the cut send's error."""

    async def body() -> None:
        async with gated_peer(caplog) as (_rpc, ours, _far, calls, _handled):
            ours.hold_sends()
            task = calls.task("b", 2)
            await waiting(ours.sending)
            task.cancel()
            await blocked()
            assert task.cancelled()
            await next_call_cut(ours, calls, [[0, 0, "b", [2]]])
        no_warnings(caplog)

    run(family, body)


async def next_call_cut(ours: Gated, calls: Calls, messages: list[Any]) -> None:
    """Sends released: the next call raises the error of the cancelled send of
    ``messages`` (``assert_cut``)."""
    ours.release_sends()
    calls.call("c", 3)
    await blocked()
    assert_cut(calls.outcomes.pop("c"), messages)


@own_flush
@pytest.mark.parametrize("lone", [False, True])
def test_the_rest_of_a_cancelled_send_over_a_full_websocket_is_sent_by_the_writer(
    family: str, lone: bool
) -> None:
    """Over a WsStream whose peer stops reading: a call (its own task) with 32 MiB of
    params sends its request itself (``lone``: no call in flight), or flushes it
    itself after a notification fed in the same turn, and waits for the full
    transport; it is cancelled. What the stream had not sent stays buffered and the
    writer task sends it, with no later call: the peer, reading again, gets every
    message whole and in order."""

    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            codec = MsgpackCodec(max_frame_size=2 * BIG)
            async with RpcPeer(Framed(WsStream(client), codec)) as rpc:
                peer.pause_reading()

                async def calling() -> Any:
                    if not lone:
                        await rpc.notify("n1")
                    return await rpc.call("b", b"x" * BIG)

                task = asyncio.ensure_future(calling())
                await blocked()  # the transport is full: the call's send waits
                task.cancel()
                await blocked()
                assert task.cancelled()
                peer.resume_reading()
                unpacker = msgpack.Unpacker(max_buffer_size=4 * BIG)
                expected = [[0, 0, "b", [b"x" * BIG]]]
                if not lone:
                    expected.insert(0, [2, "n1", []])
                messages: list[Any] = []
                while len(messages) < len(expected):
                    unpacker.feed(await peer.recv())
                    messages.extend(unpacker)
                assert messages == expected

    run(family, body)


@families
def test_a_call_waiting_for_a_lone_send_is_sent_when_it_ends(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No call in flight: a call sends its request itself and is held; a second call
    waits for that send. Released, the first request leaves, then the second (the end
    of the lone send wakes the call waiting for it); both are answered."""

    async def body() -> None:
        async with gated_peer(caplog) as (_rpc, ours, far, calls, handled):
            ours.hold_sends()
            calls.call("a", 1)
            await waiting(ours.sending)
            calls.call("b", 2)
            await blocked()
            ours.release_sends()
            unpacker = msgpack.Unpacker()
            messages: list[Any] = []
            while len(messages) < 2:
                unpacker.feed(await far.receive())
                messages.extend(unpacker)
            assert messages == [[0, 0, "a", [1]], [0, 1, "b", [2]]]
            ours.release_receives()
            await far.send(msgpack.packb([1, 1, None, "B"]) + msgpack.packb([1, 0, None, "A"]))
            await blocked()
            assert calls.outcomes == {"a": "A", "b": "B"}
            assert handled == {"started": True}
        no_warnings(caplog)

    run(family, body)


@families
def test_a_notify_s_own_flush_after_a_lone_send_failing_raises_the_kept_error(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No call in flight: a call sends its request itself and is held; a notification
    waits for that send, then flushes itself (a lone send leaves the next flush to its
    waiters) and is held; the far end resets; the send is released and fails: the
    notification raises the kept error (not ``None``), the call fails with the same
    object, the handler is cancelled before the reader notices."""

    async def body() -> None:
        async with gated_peer(caplog) as (rpc, ours, far, calls, handled):
            ours.hold_sends()
            calls.call("a", 1)
            await waiting(ours.sending)
            notified: list[Any] = []

            async def notifying() -> None:
                try:
                    notified.append(await rpc.notify("n"))
                except Exception as exc:
                    notified.append(exc)

            calls.group.start_soon(notifying)
            await blocked()
            ours.release_sends()
            ours.hold_sends()  # a's request leaves; the notification's flush is held
            await waiting(ours.sending)
            assert msgpack.unpackb(await far.receive()) == [0, 0, "a", [1]]
            await broken(far, ours)
            ours.release_sends()
            await blocked()
            error = calls.outcomes["a"]
            assert_kept(error, rpc)
            assert notified == [error]
            assert set(handled) == {"started", "ended"}
            await later_calls_raise(rpc, error, ours)
        no_warnings(caplog)

    run(family, body)


@families
def test_a_call_waiting_for_the_writer_s_flush_is_answered(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A call in flight; the writer's flush of a second call's request is held; a
    third call waits for that flush (its request fed). Released, the writer sends the
    second request, then the third; the end of the flush wakes the third call, and
    every call gets its answer."""

    async def body() -> None:
        async with gated_peer(caplog) as (_rpc, ours, far, calls, handled):
            calls.call("a", 1)
            assert msgpack.unpackb(await far.receive()) == [0, 0, "a", [1]]
            ours.hold_sends()
            calls.call("b", 2)  # the writer task sends it
            await waiting(ours.sending)
            calls.call("c", 3)  # a flush is under way: it waits for it
            await blocked()
            ours.release_sends()
            unpacker = msgpack.Unpacker()
            messages: list[Any] = []
            while len(messages) < 2:
                unpacker.feed(await far.receive())
                messages.extend(unpacker)
            assert messages == [[0, 1, "b", [2]], [0, 2, "c", [3]]]
            ours.release_receives()
            answers = [msgpack.packb([1, msgid, None, name]) for msgid, name in enumerate("ABC")]
            await far.send(b"".join(answers))
            await blocked()
            assert calls.outcomes == {"a": "A", "b": "B", "c": "C"}
            assert handled == {"started": True}
        no_warnings(caplog)

    run(family, body)
