"""broadcast(): encode once, never wait for a slow client, report what was skipped."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect as ws_connect

import wsframed
from wsframed import ConnectionClosed, Framed, FrameTooLarge, broadcast
from wsframed.codecs import LengthPrefixedCodec, LinesCodec
from wsframed.testing import framed_pair

WAIT = 10.0


async def turns(n: int = 20) -> None:
    """Let every background flush that can run, run."""
    for _ in range(n):
        await asyncio.sleep(0)


class CountingCodec(LinesCodec[str]):
    """LinesCodec counting its encode() calls."""

    subprotocol = "test.counting"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def encode(self, item: str) -> bytes:
        self.calls += 1
        return super().encode(item)


async def test_a_stalled_client_misses_frames_and_the_others_get_all() -> None:
    pairs = [framed_pair(LinesCodec(), max_queue=1) for _ in range(3)]
    (stalled_client, stalled), *fast = pairs
    servers = [stalled] + [server for _, server in fast]
    results = []
    for i in range(6):
        results.append(broadcast(servers, f"line {i}", max_backlog=20))
        for client, _ in fast:  # the fast clients read as frames come
            assert await asyncio.wait_for(client.recv(), WAIT) == f"line {i}"
        await turns()
    # "line N\n" is 7 bytes. The stalled client's queue holds one message: line 0 is
    # flushed into it, lines 1 and 2 wait in the backlog (14 bytes), line 3 would make
    # 21 bytes > 20: skipped from then on.
    assert [(r.sent, r.slow, r.closed) for r in results] == [
        (3, [], []),
        (3, [], []),
        (3, [], []),
        (2, [stalled], []),
        (2, [stalled], []),
        (2, [stalled], []),
    ]
    got = [await asyncio.wait_for(stalled_client.recv(), WAIT) for _ in range(3)]
    assert got == ["line 0", "line 1", "line 2"]
    await turns()
    assert broadcast(servers, "after", max_backlog=20).slow == []
    assert await asyncio.wait_for(stalled_client.recv(), WAIT) == "after"
    for client, server in pairs:
        await asyncio.wait_for(asyncio.gather(client.aclose(), server.aclose()), WAIT)


async def test_on_slow_close_closes_the_stalled_client_with_1008() -> None:
    stalled_client, stalled = framed_pair(LinesCodec(), max_queue=1)
    results = []
    for i in range(5):
        results.append(broadcast([stalled], f"line {i}", max_backlog=20, on_slow="close"))
        await turns()
    assert [(r.sent, len(r.slow), len(r.closed)) for r in results] == [
        (1, 0, 0),
        (1, 0, 0),
        (1, 0, 0),
        (0, 1, 0),  # closed here...
        (0, 0, 1),  # ...so skipped as closed after
    ]
    got = [await asyncio.wait_for(stalled_client.recv(), WAIT) for _ in range(3)]
    assert got == ["line 0", "line 1", "line 2"]  # what was in its backlog still arrives
    with pytest.raises(ConnectionClosed) as raised:
        await asyncio.wait_for(stalled_client.recv(), WAIT)
    assert (raised.value.code, raised.value.reason) == (
        1008,
        "too slow: 14 bytes not sent (limit 20)",
    )


async def test_closed_connections_are_skipped_and_listed() -> None:
    gone_client, gone = framed_pair(LinesCodec())
    _shut_client, shut = framed_pair(LinesCodec())
    live_client, live = framed_pair(LinesCodec())
    await asyncio.wait_for(shut.aclose(), WAIT)
    await asyncio.wait_for(gone_client.aclose(), WAIT)  # the peer left
    first = broadcast([gone, shut, live], "one")
    assert (first.sent, first.closed) == (2, [shut])  # gone's flush has not failed yet
    await turns()
    second = broadcast([gone, shut, live], "two")
    assert (second.sent, second.closed) == (1, [gone, shut])
    assert [await asyncio.wait_for(live_client.recv(), WAIT) for _ in range(2)] == ["one", "two"]
    await asyncio.wait_for(asyncio.gather(live.aclose(), live_client.aclose()), WAIT)


async def test_the_item_is_encoded_once_per_codec() -> None:
    shared, other = CountingCodec(), CountingCodec()
    pairs = [framed_pair(shared) for _ in range(4)] + [framed_pair(other)]
    result = broadcast([server for _, server in pairs], "hi")
    assert (result.sent, shared.calls, other.calls) == (5, 1, 1)
    for client, server in pairs:
        assert await asyncio.wait_for(client.recv(), WAIT) == "hi"
        await asyncio.wait_for(asyncio.gather(client.aclose(), server.aclose()), WAIT)


async def test_an_item_that_does_not_encode_is_written_to_nobody() -> None:
    small, large = LinesCodec(max_frame_size=4), LinesCodec()
    (c1, s1), (c2, s2) = framed_pair(large), framed_pair(small)
    with pytest.raises(FrameTooLarge):
        broadcast([s1, s2], "too long")
    assert (s1.stream.write_buffer_size, s2.stream.write_buffer_size) == (0, 0)
    await asyncio.wait_for(asyncio.gather(*(f.aclose() for f in (c1, s1, c2, s2))), WAIT)


def test_wrong_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_backlog must be a positive"):
        broadcast([], "x", max_backlog=0)
    with pytest.raises(ValueError, match="on_slow must be"):
        broadcast([], "x", on_slow="drop")  # type: ignore[arg-type]


async def test_a_stalled_socket_client_on_a_real_server() -> None:
    """Over loopback TCP: the stalled client is reported slow; the readers get every frame."""
    codec = LengthPrefixedCodec()
    connected: list[Framed[bytes]] = []
    enough = asyncio.Event()

    async def handler(framed: Framed[bytes]) -> None:
        connected.append(framed)
        await framed.stream.wait_closed()

    payload = b"x" * 65536
    async with wsframed.serve(handler, "127.0.0.1", 0, codec) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        # A raw client that reads nothing (its queue holds 1 message, then TCP fills up).
        stalled = await ws_connect(url, max_queue=1, compression=None)
        readers = [await wsframed.connect(url, codec) for _ in range(2)]
        counts = [0, 0]

        async def read(i: int) -> None:
            async for frame in readers[i]:
                assert frame == payload
                counts[i] += 1

        tasks = [asyncio.create_task(read(i)) for i in range(2)]
        async with asyncio.timeout(5):
            while len(connected) < 3:
                await asyncio.sleep(0.01)
        sent = 0
        async with asyncio.timeout(60):
            while not enough.is_set():
                result = broadcast(connected, payload, max_backlog=1024 * 1024)
                sent += 1
                assert result.closed == []
                if result.slow:
                    assert len(result.slow) == 1
                    assert result.sent == 2
                    enough.set()
                await asyncio.sleep(0.002)
            while counts != [sent, sent]:
                await asyncio.sleep(0.01)
        assert counts == [sent, sent]
        for framed in readers:
            await asyncio.wait_for(framed.aclose(), WAIT)
        for task in tasks:
            await asyncio.wait_for(task, WAIT)
        stalled.transport.abort()


async def test_the_ticker_example(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.broadcast_ticker import main

    await asyncio.wait_for(main(), 30)
    assert capsys.readouterr().out.splitlines() == [
        "tick 0: sent to 3, slow 0",
        "tick 1: sent to 3, slow 0",
        "tick 2: sent to 3, slow 0",
        "tick 3: sent to 3, slow 0",
        "tick 4: sent to 2, slow 1",
        "tick 5: sent to 2, slow 1",
        "reader 0 got all 6 ticks",
        "reader 1 got all 6 ticks",
        "the stalled client got ticks [0, 1, 2, 3]",
    ]
