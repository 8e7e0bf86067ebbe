"""async for framed in wsframed.connect(...): reconnecting, on real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Generator

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response

import wsframed
from wsframed import ConnectionClosed, EndOfStream, Framed
from wsframed.codecs import LinesCodec

pytestmark = pytest.mark.timeout(30)


def quick() -> Generator[float]:
    """Reconnect delays for tests: websockets' default starts at up to 5 s."""
    return (0.01 for _ in itertools.count())


async def test_each_turn_of_the_loop_is_a_new_connection() -> None:
    count = itertools.count(1)

    async def greet_and_leave(framed: Framed[str]) -> None:
        await framed.send(f"connection {next(count)}")  # then the handler returns: 1000

    received: list[str] = []
    seen: list[Framed[str]] = []
    async with wsframed.serve(greet_and_leave, "127.0.0.1", 0, LinesCodec()) as server:
        async with asyncio.timeout(10):
            async for framed in wsframed.connect(
                f"ws://127.0.0.1:{server.port}", LinesCodec(), reconnect_delays=quick
            ):
                # The connection of the turn before was closed when the loop went round.
                assert [(f.close_code, f.close_reason) for f in seen] == [(1000, "")] * len(seen)
                seen.append(framed)
                try:
                    received.extend([line async for line in framed])
                except ConnectionClosed:
                    continue
                if len(received) == 3:
                    await framed.aclose()
                    break
    assert received == ["connection 1", "connection 2", "connection 3"]
    assert len({id(framed) for framed in seen}) == 3


async def test_a_passing_failure_is_retried() -> None:
    attempts = itertools.count(1)

    def busy_twice(connection: ServerConnection, request: Request) -> Response | None:
        if next(attempts) <= 2:
            return connection.respond(503, "busy\n")
        return None

    async def hello(framed: Framed[str]) -> None:
        await framed.send("in")

    async with wsframed.serve(
        hello, "127.0.0.1", 0, LinesCodec(), process_request=busy_twice
    ) as server:
        async with asyncio.timeout(10):
            async for framed in wsframed.connect(
                f"ws://127.0.0.1:{server.port}", LinesCodec(), reconnect_delays=quick
            ):
                assert await framed.recv() == "in"
                with pytest.raises(EndOfStream):
                    await framed.recv()
                await framed.aclose()
                break
    assert next(attempts) == 4  # two refusals, then the connection


async def test_a_lasting_failure_is_raised_from_the_loop() -> None:
    async def never(framed: Framed[str]) -> None:
        raise AssertionError("not reached")

    turns = 0

    async def loop(url: str) -> None:
        nonlocal turns
        async with asyncio.timeout(10):
            async for _ in wsframed.connect(url, LinesCodec(), reconnect_delays=quick):
                turns += 1

    async with wsframed.serve({"/here": never}, "127.0.0.1", 0, LinesCodec()) as server:
        with pytest.raises(InvalidStatus) as refused:
            await loop(f"ws://127.0.0.1:{server.port}/elsewhere")
    assert refused.value.response.status_code == 404
    assert turns == 0


async def test_bad_stream_options_raise_and_close_the_connection() -> None:
    ended: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(framed: Framed[str]) -> None:
        with pytest.raises(EndOfStream):
            await framed.recv()
        ended.set_result(framed.close_code)

    async with wsframed.serve(handler, "127.0.0.1", 0, LinesCodec()) as server:
        with pytest.raises(ValueError, match="text must be one of"):
            async for _ in wsframed.connect(
                f"ws://127.0.0.1:{server.port}",
                LinesCodec(),
                text="bogus",  # type: ignore[arg-type]
            ):
                pass
        assert await asyncio.wait_for(ended, 5) == 1000
