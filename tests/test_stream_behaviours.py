"""WsStream behaviours the code and docs promise, each seen from the peer or the caller.

Each test here fails when the line that provides its behaviour is changed back
(issue 22): the bytearray copy in write(), readline()'s last unterminated line,
readuntil()'s separator past the limit, and the 1011 of ``async with`` left by an
exception.
"""

from __future__ import annotations

import asyncio

import pytest

from wsframed import WsStream

from .conftest import ws_pair


async def test_write_copies_a_bytearray_the_caller_reuses() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        buffer = bytearray(b"first")
        stream.write(buffer)
        buffer[:] = b"XXXXX"  # the caller reuses its buffer before drain()
        stream.write(buffer)
        buffer[:] = b"YYYYY"
        await stream.drain()
        assert await asyncio.wait_for(server.recv(), 5) == b"firstXXXXX"
        big = bytearray(b"a" * 100_000)  # one message of its own, sliced, not joined
        stream.write(big)
        big[:] = b"b" * 100_000
        await stream.drain()
        received = bytearray()
        while len(received) < 100_000:
            received += await asyncio.wait_for(server.recv(), 5)
        assert received == b"a" * 100_000


async def test_readline_at_the_end_returns_the_last_unterminated_line() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"one\ntw")
        await server.send(b"o")
        await server.close()
        assert await stream.readline() == b"one\n"
        assert await stream.readline() == b"two"
        assert await stream.readline() == b""
        assert [line async for line in WsStream(client)] == []


async def test_iterating_lines_gives_the_last_unterminated_line() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"a\nb\nlast")
        await server.close()
        assert [line async for line in stream] == [b"a\n", b"b\n", b"last"]


async def test_readuntil_separator_past_the_limit_raises_and_keeps_the_bytes() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, limit=4)
        await server.send(b"abcdef\nrest")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await stream.readuntil(b"\n")
        assert info.value.consumed == 6  # where the separator was found
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await stream.readline()
        assert info.value.consumed == 6
        assert await stream.read(100) == b"abcdef\nrest"  # every byte is still there


async def test_readuntil_separator_exactly_at_the_limit_is_accepted() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, limit=4)
        await server.send(b"abcd\n")
        assert await stream.readuntil(b"\n") == b"abcd\n"


async def _fail_inside(stream: WsStream) -> None:
    async with stream:
        stream.write(b"partial")
        raise ZeroDivisionError


async def test_async_with_left_by_an_exception_closes_with_1011() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        with pytest.raises(ZeroDivisionError):
            await _fail_inside(stream)
        assert await asyncio.wait_for(server.recv(), 5) == b"partial"
        await asyncio.wait_for(server.wait_closed(), 5)
        assert server.close_code == 1011  # the peer can tell failure from success
        assert stream.close_code == 1011  # the peer's reply echoes it


async def test_async_with_left_normally_closes_with_1000() -> None:
    async with ws_pair() as (client, server):
        async with WsStream(client):
            pass
        await asyncio.wait_for(server.wait_closed(), 5)
        assert server.close_code == 1000
