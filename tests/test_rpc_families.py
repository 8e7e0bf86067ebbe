"""RpcPeer's behaviours under both loop families: asyncio and trio (issue 18).

Every test runs twice with the same body, under ``anyio.run`` on asyncio over
websockets.asyncio and on trio over websockets.trio (``tests/loop_families.py``):
calls both ways, notifications, errors, timeouts, the backlog bounds, slots,
cancellation by a cancel scope, the end of the connection and ``aclose()`` with calls
pending, and every handler task ended when ``async with peer:`` is left. One test
runs under ``trio.run`` itself. The asyncio-only tests (plain msgpack-RPC peers over
asyncio TCP, wsframed.testing's memory pair, StreamReader internals) stay in
test_rpc.py, test_rpc_bounds.py and test_rpc_error_paths.py.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from wsframed import ClosedStreamError, ConnectionClosed, EndOfStream, Framed, WsStream
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RemoteError, RpcPeer

from .loop_families import Peer, families, framed_pair, poll, run, ticks_while, ws_pair

pytestmark = pytest.mark.timeout(90)

WAIT = 30  # seconds: the bound on every test body (the machine is shared)
CLOSED = "this RpcPeer was closed (aclose()); make a new one"


class PeakDeque(deque[Any]):
    """A deque that remembers the longest it has been."""

    peak = 0

    def append(self, item: Any) -> None:
        super().append(item)
        self.peak = max(self.peak, len(self))


async def recv_n(raw: Framed[Any], n: int) -> list[Any]:
    with anyio.fail_after(WAIT):
        return [await raw.recv() for _ in range(n)]


@asynccontextmanager
async def raw_pair(
    family: str, codec: Any = None
) -> AsyncIterator[tuple[Framed[Any], Framed[Any], Peer]]:
    """(client Framed, server Framed without a peer, the server's raw connection)."""
    codec = codec or MsgpackCodec()
    async with ws_pair(family) as (client, peer):
        yield Framed(WsStream(client), codec), Framed(WsStream(peer.connection), codec), peer


# Calls and notifications -------------------------------------------------------------


@families
def test_calls_both_ways_with_sync_and_async_handlers(family: str) -> None:
    """Each side calls the other, 50 calls each way at once, and a handler calls back
    into its caller while it runs: every result exact."""

    async def body() -> None:
        async with framed_pair(family) as (a, b):
            client, server = RpcPeer(a), RpcPeer(b)

            @client.method
            def double(x: int) -> int:
                return 2 * x

            @server.method
            def add(x: int, y: int) -> int:
                return x + y

            @server.method("relay")
            async def relay(x: int) -> int:
                await anyio.lowlevel.checkpoint()
                return await server.call("double", x) + 1

            results: dict[str, list[Any]] = {"add": [], "relay": [], "double": []}

            async def calls(peer: RpcPeer, method: str, *extra: int) -> None:
                for i in range(50):
                    results[method].append(await peer.call(method, i, *extra))

            with anyio.fail_after(WAIT):
                async with client, server, anyio.create_task_group() as group:
                    group.start_soon(calls, client, "add", 1000)
                    group.start_soon(calls, client, "relay")
                    group.start_soon(calls, server, "double")
            assert results == {
                "add": [i + 1000 for i in range(50)],
                "relay": [2 * i + 1 for i in range(50)],
                "double": [2 * i for i in range(50)],
            }

    run(family, body)


@families
def test_notifications_arrive_in_order_and_each_runs_its_handler(family: str) -> None:
    async def body() -> None:
        async with framed_pair(family) as (a, b):
            seen: list[int] = []
            awaited: list[int] = []

            async def slow_note(i: int) -> None:
                await anyio.lowlevel.checkpoint()
                awaited.append(i)

            server = RpcPeer(b, handlers={"note": seen.append, "slow_note": slow_note})
            server.register("count", lambda: (len(seen), len(awaited)))
            async with RpcPeer(a) as client, server:
                with anyio.fail_after(WAIT):
                    for i in range(1000):
                        await client.notify("note", i)
                    for i in range(100):
                        await client.notify("slow_note", i)
                    await client.notify("nobody", 1)  # ignored: logged, never answered
                    await poll(lambda: len(awaited) == 100)
                    assert await client.call("count") == [1000, 100]
            assert seen == list(range(1000))
            assert sorted(awaited) == list(range(100))

    run(family, body)


@families
def test_errors_reach_the_caller_with_the_remote_text(family: str) -> None:
    async def body() -> None:
        async with raw_pair(family) as (a, raw, _), RpcPeer(a) as client:
            # Against a raw peer: what is sent, and what each answer raises.
            async def answer(error: Any, result: Any = None) -> Any:
                async with anyio.create_task_group() as group:
                    outcome: list[Any] = []

                    async def call() -> None:
                        try:
                            outcome.append(await client.call("m", 1))
                        except RemoteError as exc:
                            outcome.append(exc)

                    group.start_soon(call)
                    request = await raw.recv()
                    await raw.send([1, request[1], error, result])
                return outcome[0]

            with anyio.fail_after(WAIT):
                error = await answer("ZeroDivisionError: division by zero")
                assert isinstance(error, RemoteError)
                assert str(error) == "'m' failed on the peer: ZeroDivisionError: division by zero"
                assert error.type_name == "ZeroDivisionError"
                error = await answer([7, "no such thing"])
                assert (error.error, error.message) == ([7, "no such thing"], "no such thing")
                assert await answer(None, {"ok": True}) == {"ok": True}
                # Params the codec cannot encode: TypeError, nothing sent.
                with pytest.raises(TypeError):
                    await client.call("m", object())
                assert client.in_flight == 0
                await client.notify("after", 1)
                assert await raw.recv() == [2, "after", [1]]

        # Between two RpcPeers: a handler's exception, a RemoteError it raises, and
        # an unknown method.
        async with framed_pair(family) as (a, b):
            server = RpcPeer(b)
            server.register("fail", lambda: 1 / 0)

            @server.method
            async def refuse(code: int) -> None:
                raise RemoteError([code, "refused"])

            async with RpcPeer(a) as client, server:
                with anyio.fail_after(WAIT):
                    with pytest.raises(RemoteError) as info:
                        await client.call("fail")
                    assert str(info.value) == (
                        "'fail' failed on the peer: ZeroDivisionError: division by zero"
                    )
                    with pytest.raises(RemoteError) as info:
                        await client.call("refuse", 42)
                    assert info.value.error == [42, "refused"]
                    with pytest.raises(RemoteError) as info:
                        await client.call("missing")
                    assert info.value.error == "NoMethodError: no method named 'missing'"

    run(family, body)


# Time bounds -------------------------------------------------------------------------


@families
def test_a_call_times_out_and_its_late_answer_is_dropped(family: str) -> None:
    async def body() -> None:
        async with framed_pair(family) as (a, b):
            release = anyio.Event()
            answered: list[int] = []

            async def slow(x: int) -> int:
                await release.wait()
                answered.append(x)
                return x

            server = RpcPeer(b, handlers={"slow": slow, "neg": lambda x: -x})
            async with RpcPeer(a) as client, server:
                with anyio.fail_after(WAIT):
                    with pytest.raises(TimeoutError) as info:
                        await client.call("slow", 1, timeout=0.1)
                    assert str(info.value) == "no response to 'slow' (msgid 0) within 0.1 s"
                    assert client.in_flight == 0
                    release.set()  # the answer comes now, to nobody
                    await poll(lambda: answered == [1])
                    assert await client.call("neg", 5) == -5
                    assert await client.call("slow", 7) == 7

        # request_timeout: the default bound of a call the peer never answers.
        async with raw_pair(family) as (a, raw, _), RpcPeer(a, request_timeout=0.2) as client:
            with anyio.fail_after(WAIT):
                with pytest.raises(TimeoutError) as info:
                    await client.call("ping", 1)
                assert str(info.value) == "no response to 'ping' (msgid 0) within 0.2 s"
                assert await raw.recv() == [0, 0, "ping", [1]]  # sent, never answered
                assert client.in_flight == 0

    run(family, body)


@families
def test_max_pending_calls_are_sent_the_rest_wait_for_a_slot(family: str) -> None:
    async def body() -> None:
        async with raw_pair(family) as (a, raw, _):
            results: dict[int, int] = {}

            async with RpcPeer(a, max_pending=3, request_timeout=math.inf) as client:

                async def call(i: int) -> None:
                    results[i] = await client.call("twice", i)

                with anyio.fail_after(WAIT):
                    async with anyio.create_task_group() as group:
                        for i in range(3):
                            group.start_soon(call, i)
                            await poll(lambda i=i: client.in_flight == i + 1)
                        for i in range(3, 6):  # each waits for a slot, in this order
                            group.start_soon(call, i)
                            await anyio.sleep(0.01)  # it has run up to its wait
                        assert await recv_n(raw, 3) == [[0, i, "twice", [i]] for i in range(3)]
                        with anyio.move_on_after(0.3):
                            await raw.recv()
                            pytest.fail("a fourth call was sent")
                        assert client.in_flight == 3
                        await raw.send([1, 1, None, 2])  # one answered: one more goes
                        assert await raw.recv() == [0, 3, "twice", [3]]
                        for answered, sent in [(0, 4), (2, 5)]:
                            await raw.send([1, answered, None, 2 * answered])
                            assert await raw.recv() == [0, sent, "twice", [sent]]
                        for answered in (3, 4, 5):
                            await raw.send([1, answered, None, 2 * answered])
                    assert results == {i: 2 * i for i in range(6)}

        # A call waiting for a slot times out unsent.
        async with raw_pair(family) as (a, raw, _), RpcPeer(a, max_pending=1) as client:
            held: list[Any] = []
            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as group:

                    async def hold() -> None:
                        held.append(await client.call("hold", timeout=30))

                    group.start_soon(hold)
                    assert await raw.recv() == [0, 0, "hold", []]
                    with pytest.raises(TimeoutError) as info:
                        await client.call("late", timeout=0.2)
                    assert str(info.value) == (
                        "no free slot for a call to 'late' within 0.2 s: "
                        "1 calls in flight (max_pending=1)"
                    )
                    await raw.send([1, 0, None, "held"])
                assert held == ["held"]
                await client.notify("marker")
                assert await raw.recv() == [2, "marker", []]  # "late" was never sent

    run(family, body)


# The backlog -------------------------------------------------------------------------


@families
def test_the_backlog_stops_at_max_concurrency_within_one_message(family: str) -> None:
    """2,000 requests in one message, 4 handlers blocked: exactly 4 more are queued,
    the reader stops reading, and every request is answered once the handlers go on."""

    async def body() -> None:
        async with raw_pair(family) as (b, raw, _):
            server = RpcPeer(b, max_concurrency=4)
            server._backlog = backlog = PeakDeque()
            gate = anyio.Event()

            @server.method
            async def block(i: int) -> int:
                await gate.wait()
                return i

            async with server:
                with anyio.fail_after(WAIT):
                    await raw.send_all([[0, i, "block", [i]] for i in range(2000)])
                    await poll(lambda: len(backlog) == 4)
                    await anyio.sleep(0.2)  # room for the reader to go on, were it to
                    assert (backlog.peak, server._running) == (4, 4)
                    gate.set()
                    replies = await recv_n(raw, 2000)
            assert sorted(r[1] for r in replies) == list(range(2000))
            assert all(r == [1, r[1], None, r[1]] for r in replies)
            assert backlog.peak == 4

    run(family, body)


@families
def test_with_a_call_in_flight_the_backlog_stops_at_16x_then_refuses(family: str) -> None:
    async def body() -> None:
        async with raw_pair(family) as (b, raw, _):
            server = RpcPeer(b, max_concurrency=4)
            server._backlog = backlog = PeakDeque()
            gate = anyio.Event()
            held: list[Any] = []

            @server.method
            async def block(i: int) -> int:
                await gate.wait()
                return i

            async with server, anyio.create_task_group() as group:
                with anyio.fail_after(WAIT):

                    async def hold() -> None:
                        held.append(await server.call("hold"))

                    group.start_soon(hold)  # the raw side answers it last
                    assert await raw.recv() == [0, 0, "hold", []]
                    await raw.send_all([[0, i, "block", [i]] for i in range(2000)])
                    refused = await recv_n(raw, 2000 - 4 - 64)
                    assert backlog.peak == 64
                    assert [r[1] for r in refused] == list(range(68, 2000))
                    assert {r[2] for r in refused} == {"BusyError: 64 requests already queued"}
                    gate.set()
                    answered = await recv_n(raw, 68)
                    assert sorted(r[3] for r in answered) == list(range(68))
                    await raw.send([1, 0, None, "held"])
            assert held == ["held"]
            assert backlog.peak == 64

    run(family, body)


# Cancellation ------------------------------------------------------------------------


@families
def test_a_call_cancelled_by_a_cancel_scope_is_forgotten_and_its_slot_freed(
    family: str,
) -> None:
    """Cancelled while waiting for its answer: the caller sees only the cancellation,
    the slot is free at once (max_pending=1), the late answer is dropped, and the
    peer goes on."""

    async def body() -> None:
        async with framed_pair(family) as (a, b):
            release = anyio.Event()
            returned: list[int] = []

            async def slow(x: int) -> int:
                await release.wait()
                return x

            server = RpcPeer(b, handlers={"slow": slow, "neg": lambda x: -x})
            async with RpcPeer(a, max_pending=1) as client, server:
                with anyio.fail_after(WAIT):
                    with anyio.CancelScope() as scope:
                        async with anyio.create_task_group() as group:

                            async def cancel_once_sent() -> None:
                                await poll(lambda: client.in_flight == 1)
                                scope.cancel()

                            group.start_soon(cancel_once_sent)
                            returned.append(await client.call("slow", 1))
                    assert (scope.cancelled_caught, returned, client.in_flight) == (True, [], 0)
                    release.set()  # its answer arrives now, to nobody
                    assert await client.call("neg", 5) == -5
                    assert await client.call("slow", 7) == 7

    run(family, body)


@families
def test_a_call_cancelled_while_the_transport_is_backed_up_loses_nothing(family: str) -> None:
    """The peer stops reading; notifications fill the transport; a call that waits
    for the flush is cancelled by a scope. Once the peer reads again it receives every
    notification, the cancelled request and the next call's, in order, once each;
    the next call gets its answer."""

    async def body() -> None:
        async with raw_pair(family) as (a, raw, peer):
            blob = bytes(512 * 1024)
            async with RpcPeer(a) as client:
                with anyio.fail_after(WAIT):
                    peer.pause_reading()
                    for i in range(40):  # 20 MiB: more than loopback's buffers hold
                        await client.notify("blob", i, blob)
                    await poll(lambda: client._flushing)
                    with anyio.move_on_after(0.3) as scope:
                        await client.call("cancelled", 1)
                    assert scope.cancelled_caught
                    assert client.in_flight == 0
                    peer.resume_reading()
                    async with anyio.create_task_group() as group:
                        result: list[Any] = []

                        async def next_call() -> None:
                            result.append(await client.call("next", 2))

                        group.start_soon(next_call)
                        received = await recv_n(raw, 42)
                        assert received[:40] == [[2, "blob", [i, blob]] for i in range(40)]
                        assert received[40:] == [[0, 0, "cancelled", [1]], [0, 1, "next", [2]]]
                        await raw.send([1, 0, None, "late"])  # dropped: nobody waits
                        await raw.send([1, 1, None, "answer"])
                    assert result == ["answer"]
                    with anyio.move_on_after(0.2):
                        extra = await raw.recv()
                        pytest.fail(f"sent twice: {extra!r}")

    run(family, body)


# The end -----------------------------------------------------------------------------


@families
def test_the_end_of_the_connection_fails_every_pending_call_with_one_error(
    family: str,
) -> None:
    async def body() -> None:
        async with raw_pair(family) as (a, raw, _):
            errors: list[BaseException] = []
            async with RpcPeer(a) as client:
                with anyio.fail_after(WAIT):
                    async with anyio.create_task_group() as group:

                        async def call(i: int) -> None:
                            try:
                                await client.call("never", i)
                            except ConnectionClosed as exc:
                                errors.append(exc)

                        for i in range(5):
                            group.start_soon(call, i)
                        assert len(await recv_n(raw, 5)) == 5
                        await raw.stream.aclose(4000, "bye")
                    assert len(errors) == 5
                    assert all(error is errors[0] for error in errors)
                    assert errors[0].code == 4000
                    with pytest.raises(ConnectionClosed) as later:
                        await client.call("after")
                    assert later.value is errors[0]

    run(family, body)


@families
def test_aclose_with_calls_pending_fails_them_and_every_later_use(family: str) -> None:
    async def body() -> None:
        async with raw_pair(family) as (a, raw, _):
            errors: list[BaseException] = []
            client = RpcPeer(a)
            async with client:
                with anyio.fail_after(WAIT):
                    async with anyio.create_task_group() as group:

                        async def call(i: int) -> None:
                            try:
                                await client.call("never", i)
                            except ClosedStreamError as exc:
                                errors.append(exc)

                        for i in range(3):
                            group.start_soon(call, i)
                        await recv_n(raw, 3)
                        await client.aclose()
                    assert [str(e) for e in errors] == ["the RpcPeer was closed"] * 3
                    with pytest.raises(ClosedStreamError) as later:
                        await client.call("after")
                    assert str(later.value) == CLOSED

                    async def retry() -> None:  # a retry loop lets the loop run
                        for _ in range(100):
                            with pytest.raises(ClosedStreamError) as again:
                                await client.call("again")
                        raise again.value

                    # (trio orders each batch of ready tasks at random: count over 100)
                    ticks, error = await ticks_while(retry)
                    assert (type(error), str(error)) == (ClosedStreamError, CLOSED)
                    assert ticks >= 25
                    with pytest.raises(EndOfStream):
                        await raw.recv()  # the peer closed its Framed too

    run(family, body)


@families
def test_leaving_async_with_ends_every_handler_task(family: str) -> None:
    """Handlers still running when the block is left are cancelled, and the block
    ends only when each has finished, a slow cleanup included; a handler that closes
    its own peer is not cancelled by that and carries on."""

    async def body() -> None:
        async with framed_pair(family) as (a, b):
            started: list[int] = []
            ended: list[int] = []

            async def hang(i: int) -> None:
                started.append(i)
                try:
                    await anyio.sleep_forever()
                finally:
                    with anyio.CancelScope(shield=True):
                        await anyio.sleep(0.05 * i)  # a cleanup that takes a while
                    ended.append(i)

            server = RpcPeer(b, handlers={"hang": hang})
            async with RpcPeer(a) as client:
                with anyio.fail_after(WAIT):
                    nurseries = _child_nurseries(family)
                    async with server:
                        if family == "trio":  # the peer's own nursery, inside the block
                            assert _child_nurseries(family) == nurseries + 1
                        for i in range(5):
                            await client.notify("hang", i)
                        await poll(lambda: len(started) == 5)
                        assert ended == []
                    assert sorted(ended) == [0, 1, 2, 3, 4]
                    assert _child_nurseries(family) == nurseries
                    assert server._tasks == set()
                    with pytest.raises(ConnectionClosed):
                        await client.call("hang", 9)  # the block closed the connection

        async with framed_pair(family) as (a, b):
            after: list[str] = []
            server = RpcPeer(b)

            @server.method
            async def stop() -> None:
                await server.aclose()
                after.append("carried on")
                await anyio.lowlevel.checkpoint()
                after.append("after a checkpoint")

            async with RpcPeer(a) as client, server:
                with anyio.fail_after(WAIT):
                    await client.notify("stop")
                    await poll(lambda: len(after) == 2)
            assert after == ["carried on", "after a checkpoint"]

    run(family, body)


def _child_nurseries(family: str) -> int:
    """How many nurseries the running trio task has open (0 on asyncio)."""
    if family != "trio":
        return 0
    import trio

    return len(trio.lowlevel.current_task().child_nurseries)


@families
def test_serve_started_in_a_task_group_and_cancelled_closes_the_peer(family: str) -> None:
    async def body() -> None:
        async with framed_pair(family) as (a, b):
            server = RpcPeer(b, handlers={"neg": lambda x: -x})
            client = RpcPeer(a, handlers={"pos": lambda x: x})
            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as group:
                    await group.start(server.serve)
                    await group.start(client.serve)  # started: call() may be used now
                    assert await client.call("neg", 3) == -3
                    assert await server.call("pos", 4) == 4
                    group.cancel_scope.cancel()
                with pytest.raises(ClosedStreamError):
                    await client.call("neg", 1)
                with pytest.raises(ClosedStreamError):
                    await server.call("pos", 1)

        # serve() returns when the connection ends, and the peer is closed then.
        async with framed_pair(family) as (a, b):
            server = RpcPeer(b, handlers={"neg": lambda x: -x})
            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as group:
                    group.start_soon(server.serve)
                    async with RpcPeer(a) as client:
                        assert await client.call("neg", 3) == -3
                with pytest.raises(ClosedStreamError):
                    await server.call("neg", 1)

    run(family, body)


def test_under_trio_a_peer_runs_inside_its_block() -> None:
    """Under trio.run itself: outside ``async with`` (or serve()) a call says where
    the peer runs, and nothing was started; inside, it works."""
    import trio

    async def main() -> None:
        async with framed_pair("trio") as (a, b):
            client, server = RpcPeer(a), RpcPeer(b, handlers={"neg": lambda x: -x})
            with pytest.raises(RuntimeError) as info:
                await client.call("neg", 1)
            assert str(info.value) == (
                "under trio, RpcPeer runs inside its `async with` block (or its serve()): "
                "its tasks need the nursery that block opens"
            )
            with trio.fail_after(WAIT):
                async with client, server:
                    assert await client.call("neg", 2) == -2

    trio.run(main)


@families
def test_over_an_anyio_tcp_stream(family: str) -> None:
    """RpcPeer over anyio byte streams (no WebSocket): the family is the running
    loop's, whatever the transport."""
    from anyio.abc import SocketAttribute, SocketStream

    async def body() -> None:
        ended: list[str] = []

        async def handle(stream: SocketStream) -> None:
            async with RpcPeer(Framed(stream, MsgpackCodec())) as peer:

                @peer.method
                async def neg(x: int) -> int:
                    return -x + await peer.call("offset")

                await peer.serve()
            ended.append("server")

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as group:
                listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
                port = listener.extra(SocketAttribute.local_port)
                group.start_soon(listener.serve, handle)
                stream = await anyio.connect_tcp("127.0.0.1", port)
                framed = Framed(stream, MsgpackCodec())
                async with RpcPeer(framed, handlers={"offset": lambda: 100}) as client:
                    assert [await client.call("neg", i) for i in range(3)] == [100, 99, 98]
                await poll(lambda: ended == ["server"])
                group.cancel_scope.cancel()

    run(family, body)
