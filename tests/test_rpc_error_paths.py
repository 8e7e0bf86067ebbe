"""RpcPeer on its error, close and limit paths: the caller's exact errors, the defaults
that bound a peer, and what the other side sees.

Real RpcPeers over loopback (tests/conftest.py ``framed_pair``). Written for mutants of
wsframed/rpc/ that no test killed (tools/mutation.py; docs/contributing.md, Testing).
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import pytest

from wsframed.codecs import MsgpackCodec
from wsframed.rpc import DEFAULT_MAX_PENDING, RpcPeer

from .conftest import framed_pair, ticks_while

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("name", ["max_concurrency", "max_pending"])
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (True, TypeError, "must be an int, not True"),
        (2.0, TypeError, "must be an int, not 2.0"),
        ("3", TypeError, "must be an int, not '3'"),
        (0, ValueError, "must be at least 1, not 0"),
        (-5, ValueError, "must be at least 1, not -5"),
    ],
)
async def test_bounds_must_be_positive_ints(
    name: str, value: object, error: type[Exception], message: str
) -> None:
    async with framed_pair("ws", MsgpackCodec()) as (framed, _):
        with pytest.raises(error) as refused:
            RpcPeer(framed, **{name: value})  # type: ignore[arg-type]
        assert str(refused.value) == f"{name} {message}"
        RpcPeer(framed, **{name: 1})  # the least allowed


@pytest.mark.parametrize("timeout", [0, -1.0, math.nan])
async def test_request_timeout_must_be_positive_or_none(timeout: float) -> None:
    async with framed_pair("ws", MsgpackCodec()) as (framed, _):
        with pytest.raises(ValueError, match=r"^request_timeout must be positive") as e:
            RpcPeer(framed, request_timeout=timeout)
        assert str(e.value) == f"request_timeout must be positive or None, not {timeout}"
        assert RpcPeer(framed, request_timeout=None).request_timeout is None
        assert RpcPeer(framed, request_timeout=math.inf).request_timeout == math.inf


async def test_the_defaults_bound_calls_at_1024_and_60_s() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (framed, _):
        peer = RpcPeer(framed)
        assert (peer.max_pending, peer.request_timeout) == (1024, 60.0)
        assert DEFAULT_MAX_PENDING == 1024


async def test_64_handlers_run_at_once_by_default() -> None:
    """``max_concurrency`` defaults to 64: of 70 calls to a handler that waits, 64
    start; the others start as the first ones end, and every call is answered."""
    async with framed_pair("ws", MsgpackCodec()) as (a, b):
        release = asyncio.Event()
        running = 0
        most = 0

        async def wait(i: int) -> int:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1
            return i

        async with RpcPeer(a) as client, RpcPeer(b, handlers={"wait": wait}):
            calls = [asyncio.create_task(client.call("wait", i, timeout=20)) for i in range(70)]
            async with asyncio.timeout(20):
                while running < 64:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)  # nothing else starts while the 64 wait
                assert (running, most) == (64, 64)
                release.set()
                assert await asyncio.gather(*calls) == list(range(70))
            assert most == 64


async def test_a_handler_of_an_rpc_peer_must_be_callable() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (framed, _):
        peer = RpcPeer(framed)
        with pytest.raises(TypeError) as refused:
            peer.register("x", 42)  # type: ignore[arg-type]
        assert str(refused.value) == "the handler of 'x' must be callable, not 42"
        with pytest.raises(TypeError):
            RpcPeer(framed, handlers={"y": "not a function"})  # type: ignore[dict-item]


async def test_the_method_decorator_returns_the_function_unchanged() -> None:
    """``@peer.method`` and ``@peer.method("name")`` register and give the function
    back, so it stays callable locally; the peer's calls reach it by either name."""
    async with framed_pair("ws", MsgpackCodec()) as (a, b):
        server = RpcPeer(b)

        def double(x: int) -> int:
            return 2 * x

        async def triple(x: int) -> int:
            return 3 * x

        assert server.method(double) is double
        assert server.method("thrice")(triple) is triple
        assert server.method()(double) is double
        assert double(4) == 8
        async with RpcPeer(a) as client, server:
            assert await client.call("double", 5, timeout=10) == 10
            assert await client.call("thrice", 5, timeout=10) == 15


async def test_calls_without_a_bound_are_answered() -> None:
    """``request_timeout=None`` and ``timeout=math.inf`` mean no deadline: such calls
    (the only one in flight, and several at once) get their answers."""
    async with (
        framed_pair("ws", MsgpackCodec()) as (a, b),
        RpcPeer(a, request_timeout=None) as client,
        RpcPeer(b, handlers={"neg": lambda x: -x}),
        asyncio.timeout(10),
    ):
        assert await client.call("neg", 1) == -1
        assert await client.call("neg", 2, timeout=math.inf) == -2
        several = [client.call("neg", i, timeout=math.inf) for i in range(5)]
        assert await asyncio.gather(*several) == [0, -1, -2, -3, -4]


@pytest.mark.parametrize("ending", ["peer closes", "aclose"])
async def test_a_call_waiting_for_a_slot_fails_as_the_call_in_flight_did(ending: str) -> None:
    """``max_pending=1``: a call in flight (never answered) and a second call waiting
    for its slot. When the connection ends, both raise the same ConnectionClosed
    object; when this side is closed, the waiting one raises ClosedStreamError. Neither
    is sent, and neither waits for its timeout."""
    from wsframed import ClosedStreamError, ConnectionClosed

    async with framed_pair("ws", MsgpackCodec()) as (a, b):
        started = asyncio.Event()

        async def hang() -> None:
            started.set()
            await asyncio.Event().wait()

        client = RpcPeer(a, max_pending=1)
        server = RpcPeer(b, handlers={"hang": hang})
        async with server, asyncio.timeout(10):
            first = asyncio.create_task(client.call("hang", timeout=30))
            await started.wait()
            second = asyncio.create_task(client.call("hang", timeout=30))
            await asyncio.sleep(0.05)
            assert (client.in_flight, second.done()) == (1, False)
            if ending == "peer closes":
                await server.aclose()
                errors = await asyncio.gather(first, second, return_exceptions=True)
                assert isinstance(errors[0], ConnectionClosed)
                assert errors[1] is errors[0]
            else:
                await client.aclose()
                errors = await asyncio.gather(first, second, return_exceptions=True)
                assert [type(e) for e in errors] == [ClosedStreamError, ClosedStreamError]
                assert str(errors[1]) == "this RpcPeer was closed (aclose()); make a new one"
        await client.aclose()


async def test_a_cancelled_call_is_forgotten_and_its_late_answer_dropped() -> None:
    """Cancelling a call in flight raises CancelledError in the caller (nothing else),
    frees its slot at once, and the answer that comes later is dropped; the next
    call works."""
    async with framed_pair("ws", MsgpackCodec()) as (a, b):
        release = asyncio.Event()

        async def slow(x: int) -> int:
            await release.wait()
            return x

        async with (
            RpcPeer(a, max_pending=1) as client,
            RpcPeer(b, handlers={"slow": slow, "neg": lambda x: -x}),
            asyncio.timeout(10),
        ):
            call = asyncio.create_task(client.call("slow", 1))
            while client.in_flight == 0:
                await asyncio.sleep(0.005)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert client.in_flight == 0
            release.set()  # its answer arrives now, to nobody
            assert await client.call("neg", 5) == -5
            assert await client.call("slow", 7) == 7


async def test_serve_returns_when_the_connection_ends_and_closes_the_peer() -> None:
    """``await peer.serve()`` returns once the other side is gone, and the peer is
    closed then: a later call raises ClosedStreamError (not the connection's error),
    and serve() again raises it too, after a loop turn."""
    from wsframed import ClosedStreamError

    async with framed_pair("ws", MsgpackCodec()) as (a, b):
        server = RpcPeer(b, handlers={"neg": lambda x: -x})
        serving = asyncio.create_task(server.serve())
        async with RpcPeer(a) as client, asyncio.timeout(10):
            assert await client.call("neg", 3) == -3
        assert await asyncio.wait_for(serving, 10) is None
        closed = "this RpcPeer was closed (aclose()); make a new one"
        with pytest.raises(ClosedStreamError, match=re.escape(closed)):
            await server.call("neg", 1)
        ticks, error = await ticks_while(server.serve)
        assert (type(error), str(error)) == (ClosedStreamError, closed)
        assert ticks > 0


async def test_a_second_aclose_waits_for_the_first_and_a_closed_peer_yields() -> None:
    """Two aclose() at once: the second returns only when the first is done, and that
    is once the running handler has stopped (its cleanup ran). Closing a closed peer
    again and again still lets other tasks run."""
    async with framed_pair("ws", MsgpackCodec()) as (a, b):
        started = asyncio.Event()
        cleaned: list[bool] = []

        async def busy() -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                await asyncio.sleep(0.05)  # a handler that takes a while to stop
                cleaned.append(True)

        async with RpcPeer(a) as client, RpcPeer(b, handlers={"busy": busy}) as server:
            await client.notify("busy")
            await asyncio.wait_for(started.wait(), 10)
            first = asyncio.create_task(server.aclose())
            await asyncio.sleep(0)  # the first aclose() is under way
            await asyncio.wait_for(server.aclose(), 10)
            assert (first.done(), cleaned) == (True, [True])

            async def many() -> None:
                for _ in range(200):
                    await server.aclose()

            ticks, error = await ticks_while(many)
            assert (error, ticks >= 3) == (None, True)


async def test_a_handler_may_close_its_own_peer_and_carry_on() -> None:
    """A handler that calls ``await peer.aclose()`` is not cancelled by it: the code
    after the call runs."""
    async with framed_pair("ws", MsgpackCodec()) as (a, b):
        after: list[str] = []
        server = RpcPeer(b)

        @server.method
        async def leave() -> None:
            await server.aclose()
            after.append("ran on")

        async with RpcPeer(a) as client, server:
            await client.notify("leave")
            async with asyncio.timeout(10):
                while not after:
                    await asyncio.sleep(0.01)
        assert after == ["ran on"]


async def test_leaving_async_with_closes_the_peer_and_its_connection() -> None:
    """``async with RpcPeer(...)``: on exit the peer is closed (a call raises
    ClosedStreamError) and so is its connection (the other side's serve() returns)."""
    from wsframed import ClosedStreamError

    async with framed_pair("ws", MsgpackCodec()) as (a, b):
        server = RpcPeer(b, handlers={"neg": lambda x: -x})
        serving = asyncio.create_task(server.serve())
        async with RpcPeer(a) as client:
            assert await asyncio.wait_for(client.call("neg", 2), 10) == -2
        with pytest.raises(ClosedStreamError, match=r"^this RpcPeer was closed"):
            await client.call("neg", 1)
        assert await asyncio.wait_for(serving, 10) is None


async def test_the_end_of_the_connection_stops_running_handlers() -> None:
    """The other side goes away while a handler of this side runs: the handler is
    cancelled then, not left running until this peer is closed."""
    async with framed_pair("ws", MsgpackCodec()) as (a, b):
        started = asyncio.Event()
        stopped = asyncio.Event()

        async def forever() -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                stopped.set()
                raise

        async with RpcPeer(b, handlers={"forever": forever}):
            async with RpcPeer(a) as client:
                await client.notify("forever")
                await asyncio.wait_for(started.wait(), 10)
            await asyncio.wait_for(stopped.wait(), 10)  # this peer is still open here


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        ([0, 7], [1, 7, "InvalidRequest: a request has 4 elements, not 2", None]),
        ([0, 8, "neg"], [1, 8, "InvalidRequest: a request has 4 elements, not 3", None]),
        ([0, 9, "neg", [1], "extra"],
         [1, 9, "InvalidRequest: a request has 4 elements, not 5", None]),
        ([0, 2**32 - 1, "neg", [5]], [1, 2**32 - 1, None, -5]),
        ([0, 0, "neg", [6]], [1, 0, None, -6]),
    ],
)
async def test_a_request_with_a_usable_msgid_is_always_answered(
    sent: list[Any], answer: list[Any]
) -> None:
    """A request of any length whose msgid is a uint32 (0 to 2**32 - 1) gets a
    response: its result, or an InvalidRequest error naming the length."""
    async with (
        framed_pair("ws", MsgpackCodec()) as (raw, b),
        RpcPeer(b, handlers={"neg": lambda x: -x}),
        asyncio.timeout(10),
    ):
        await raw.send(sent)
        assert await raw.recv() == answer


@pytest.mark.parametrize("sent", [[0], [0, -1, "neg", [1]], [0, 2**32, "neg", [1]]])
async def test_a_request_without_a_usable_msgid_gets_no_answer(sent: list[Any]) -> None:
    """No msgid to answer to (missing, negative, over uint32): nothing is sent back;
    the next good request is answered."""
    async with (
        framed_pair("ws", MsgpackCodec()) as (raw, b),
        RpcPeer(b, handlers={"neg": lambda x: -x}),
        asyncio.timeout(10),
    ):
        await raw.send(sent)
        await raw.send([0, 1, "neg", [2]])
        assert await raw.recv() == [1, 1, None, -2]


async def test_finished_handler_tasks_are_not_kept() -> None:
    """Every async handler runs as a task; a finished one is let go. Memory traced over
    2,000 calls after a warm-up stays flat (a kept task costs over 1 KiB: 2,000 would
    show as megabytes)."""
    import gc
    import tracemalloc

    async def echo(x: int) -> int:
        return x

    async with (
        framed_pair("ws", MsgpackCodec()) as (a, b),
        RpcPeer(a) as client,
        RpcPeer(b, handlers={"echo": echo}),
        asyncio.timeout(60),
    ):
        for i in range(500):
            await client.call("echo", i)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(2000):
                await client.call("echo", i)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert grown < 256 * 1024


async def test_a_full_queue_refuses_each_request_with_a_usable_msgid_and_drops_the_rest() -> None:
    """This side has a call in flight and ``max_concurrency=1``: one request runs, 16
    wait, and each further request is refused at once with BusyError under its own
    msgid (0 and 2**32 - 1 included, a 2-element request too); a notification or a
    request without a usable msgid is dropped without an answer. The queue still
    drains in order once the handler is released."""
    async with framed_pair("ws", MsgpackCodec()) as (raw, b):
        release = asyncio.Event()

        async def block(i: int) -> int:
            await release.wait()
            return i

        async with (
            RpcPeer(b, max_concurrency=1, handlers={"block": block}) as peer,
            asyncio.timeout(20),
        ):
            in_flight = asyncio.create_task(peer.call("wait_for_me", timeout=20))
            call = await raw.recv()
            assert call[0] == 0
            assert call[2:] == ["wait_for_me", []]
            for i in range(100, 117):
                raw.feed([0, i, "block", [i]])  # 1 runs, 16 wait
            for message in (
                [0, 2**32 - 1, "block", [0]],
                [0, 5],
                [0],
                [0, 2**32, "block", [0]],
                [0, -1, "block", [0]],
                [2, "block", [0]],
                [0, 0, "block", [0]],
            ):
                raw.feed(message)
            await raw.flush()
            busy = "BusyError: 16 requests already queued"
            assert [await raw.recv() for _ in range(3)] == [
                [1, 2**32 - 1, busy, None],
                [1, 5, busy, None],
                [1, 0, busy, None],
            ]
            release.set()
            results = [await raw.recv() for _ in range(17)]
            assert results == [[1, i, None, i] for i in range(100, 117)]
            await raw.send([1, call[1], None, "done"])
            assert await in_flight == "done"


async def test_queued_requests_start_one_per_free_slot_and_never_after_aclose() -> None:
    """``max_concurrency=2``: as handlers end, queued requests start one per free slot
    (never a third at once); when the peer is closed, none of those still queued
    starts."""
    async with framed_pair("ws", MsgpackCodec()) as (raw, b):
        gates = {i: asyncio.Event() for i in range(6)}
        started: list[int] = []
        running = 0
        most = 0

        async def gated(i: int) -> int:
            nonlocal running, most
            started.append(i)
            running += 1
            most = max(most, running)
            try:
                await gates[i].wait()
            finally:
                running -= 1
            return i

        peer = RpcPeer(b, max_concurrency=2, handlers={"gated": gated})
        async with peer, asyncio.timeout(20):
            for i in range(6):
                raw.feed([0, i, "gated", [i]])
            await raw.flush()
            while len(started) < 2:
                await asyncio.sleep(0.005)
            gates[0].set()
            assert await raw.recv() == [1, 0, None, 0]
            while len(started) < 3:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            assert (started, most) == ([0, 1, 2], 2)
            await peer.aclose()  # 1 and 2 are cancelled; 3, 4, 5 never start
            await asyncio.sleep(0.05)
            assert (started, most, running) == ([0, 1, 2], 2, 0)


async def test_an_unencodable_remote_error_is_answered_with_a_fixed_text() -> None:
    """A handler raises RemoteError with an error object the codec cannot encode (a
    set): the caller still gets an answer, the fixed text naming the codec's error."""
    from wsframed.rpc import RemoteError

    def refuse() -> None:
        raise RemoteError({1, 2})

    async with (
        framed_pair("ws", MsgpackCodec()) as (a, b),
        RpcPeer(a) as client,
        RpcPeer(b, handlers={"refuse": refuse, "ok": lambda: "fine"}),
        asyncio.timeout(10),
    ):
        with pytest.raises(RemoteError) as answered:
            await client.call("refuse")
        assert answered.value.error == "TypeError: unencodable error"
        assert await client.call("ok") == "fine"
