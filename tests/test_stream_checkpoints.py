"""Every coroutine of WsStream gives the event loop a turn (issue 14, item 3).

A call that raises without waiting (failed stream, closed stream, end of stream)
yields once first, so a retry loop around it cannot freeze the program; a call that
returns what was already buffered yields once every ``BUDGET`` calls. A ticker task
counts the turns it gets while another task calls one method in a loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import pytest

from wsframed import ConnectionClosed, EndOfStream, WsStream
from wsframed.checkpoint import BUDGET

from .conftest import ws_pair

CALLS = 10_000


@asynccontextmanager
async def ticker() -> AsyncIterator[list[int]]:
    """Count, in ``ticks[0]``, the turns a task gets on the loop."""
    ticks = [0]

    async def tick() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(tick())
    await asyncio.sleep(0)  # started: every later tick is a turn another task gave
    ticks[0] = 0
    try:
        yield ticks
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def failed_stream() -> AsyncIterator[WsStream]:
    """A stream whose peer closed with 1011, with the error already raised once."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.close(1011, "broken")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(stream.read(), 5)
        yield stream


FAILING: dict[str, Callable[[WsStream], Awaitable[object]]] = {
    "read": lambda s: s.read(),
    "read(0)": lambda s: s.read(0),
    "readexactly": lambda s: s.readexactly(3),
    "readexactly(0)": lambda s: s.readexactly(0),
    "readuntil": lambda s: s.readuntil(b"\r\n"),
    "readline": lambda s: s.readline(),
    "receive": lambda s: s.receive(),
    "send": lambda s: s.send(b"x"),
    "ping": lambda s: s.ping(),
}


@pytest.mark.parametrize("name", list(FAILING))
async def test_a_loop_of_failing_calls_lets_other_tasks_run(name: str) -> None:
    call = FAILING[name]
    async with failed_stream() as stream:
        async with ticker() as ticks:
            for _ in range(CALLS):
                with pytest.raises(ConnectionClosed):
                    await call(stream)
        # One turn per failed call, and one per BUDGET calls from the budget.
        assert CALLS <= ticks[0] <= CALLS + CALLS // BUDGET + 1


async def test_drain_after_the_connection_failed_lets_other_tasks_run() -> None:
    async with failed_stream() as stream:
        async with ticker() as ticks:
            for _ in range(CALLS):
                stream.write(b"x")
                with pytest.raises(ConnectionClosed):
                    await stream.drain()
        assert CALLS <= ticks[0] <= CALLS + CALLS // BUDGET + 1


async def test_end_of_stream_in_a_loop_lets_other_tasks_run() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.close()
        assert await asyncio.wait_for(stream.read(), 5) == b""
        async with ticker() as ticks:
            for _ in range(CALLS):
                with pytest.raises(EndOfStream):
                    await stream.receive()
        assert CALLS <= ticks[0] <= CALLS + 2 * (CALLS // BUDGET) + 1
        async with ticker() as ticks:
            for _ in range(CALLS):
                with pytest.raises(asyncio.IncompleteReadError):
                    await stream.readexactly(1)
        assert CALLS <= ticks[0] <= CALLS + CALLS // BUDGET + 1


async def test_an_ended_event_subscription_lets_other_tasks_run() -> None:
    async with failed_stream() as stream:
        events = stream.events()
        assert [event async for event in events][-1].__class__.__name__ == "Closed"
        async with ticker() as ticks:
            for _ in range(CALLS):
                with pytest.raises(StopAsyncIteration):
                    await anext(events)
        assert CALLS <= ticks[0] <= CALLS + CALLS // BUDGET + 1


DONE_ALREADY: dict[str, Callable[[WsStream], Awaitable[object]]] = {
    "send_eof": lambda s: s.send_eof(),
    "aclose": lambda s: s.aclose(),
    "wait_closed": lambda s: s.wait_closed(),
    "drain": lambda s: s.drain(),
    "read(0)": lambda s: s.read(0),
    "__aenter__": lambda s: s.__aenter__(),
}


@pytest.mark.parametrize("name", list(DONE_ALREADY))
async def test_calls_that_complete_without_waiting_yield_once_per_budget(name: str) -> None:
    call = DONE_ALREADY[name]
    async with ws_pair() as (client, _server):
        stream = WsStream(client)
        if name not in ("drain", "read(0)", "__aenter__"):
            await asyncio.wait_for(stream.aclose(), 5)
        async with ticker() as ticks:
            for _ in range(BUDGET * 100):
                await call(stream)
        assert ticks[0] == 100


async def test_reads_served_from_the_buffer_yield_once_per_budget() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(bytes(BUDGET * 100 + 1))
        assert await asyncio.wait_for(stream.read(1), 5) == b"\0"  # the message is buffered
        for method in ("read", "readexactly"):
            async with ticker() as ticks:
                for _ in range(BUDGET * 50):
                    assert await getattr(stream, method)(1) == b"\0"
            assert ticks[0] == 50


async def test_lines_served_from_the_buffer_yield_once_per_budget() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"\n" * (BUDGET * 100 + 1))
        assert await asyncio.wait_for(stream.readline(), 5) == b"\n"
        async with ticker() as ticks:
            for _ in range(BUDGET * 50):
                assert await stream.readline() == b"\n"
            for _ in range(BUDGET * 50):
                assert await stream.readuntil(b"\n") == b"\n"
        assert ticks[0] == 100


async def test_wait_for_fires_around_a_loop_of_failing_reads() -> None:
    finished = False

    async def retry_forever(stream: WsStream) -> None:
        nonlocal finished
        for _ in range(2_000_000):  # seconds of work if no call ever yields
            with suppress(ConnectionClosed):
                await stream.read()
        finished = True

    async with failed_stream() as stream:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(retry_forever(stream), 0.5)
        assert not finished


async def test_a_cancellation_at_the_error_path_turn_loses_no_bytes() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"abc")
        await server.close()
        await asyncio.wait_for(client.wait_closed(), 5)
        assert await stream.readexactly(1) == b"a"
        # readexactly(5) meets the end at once, takes b"bc" for IncompleteReadError and
        # yields before raising it; cancelled there, it puts the bytes back.
        task = asyncio.create_task(stream.readexactly(5))
        await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await stream.read(10) == b"bc"
        assert await stream.read(10) == b""


async def test_aclose_cancelled_at_its_budget_turn_still_closes() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        for _ in range(BUDGET - 1):  # the next call spends the last unit: it yields
            assert await stream.read(0) == b""
        task = asyncio.create_task(stream.aclose())
        await asyncio.sleep(0)  # aclose() started the close, then yielded
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.wait_closed(), 5)
        assert server.close_code == 1000  # the close went out all the same


def _depth(exc: BaseException) -> int:
    depth, tb = 0, exc.__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    return depth


@pytest.mark.parametrize("name", ["read", "readexactly", "readline", "receive"])
async def test_a_stored_error_raised_again_keeps_a_traceback_of_one_call(name: str) -> None:
    # The stream raises the same error object on every read after it failed; each
    # raise must start a fresh traceback, or a retry loop grows it by a few frames per
    # call (memory that grows with every retry, and ever longer logged tracebacks).
    call = FAILING[name]
    async with failed_stream() as stream:
        depths = []
        for _ in range(50):
            with pytest.raises(ConnectionClosed) as info:
                await call(stream)
            depths.append(_depth(info.value))
        assert len(set(depths)) == 1, depths
