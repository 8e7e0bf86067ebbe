"""serve(): what the peer sees and what is logged when a handler lets an exception escape.

One record per failed connection on ``wsframed.server``, naming the close code that
was actually sent; a traceback only for the handler's own bugs (issue 14 item 5,
issue 22 behaviour 1).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

import wsframed
from wsframed import Framed
from wsframed.codecs import LinesCodec, MsgpackCodec

pytestmark = pytest.mark.timeout(60)

PEER = r"\('127\.0\.0\.1', \d+\)"


async def close_seen(
    handler: Callable[[Framed[Any]], Awaitable[None]],
    codec: Any,
    send: bytes | str | None,
    connections: int = 1,
) -> list[tuple[int, str]]:
    """Connect ``connections`` times, send ``send``; the (code, reason) each client got."""
    done = asyncio.Semaphore(0)

    async def wrapped(framed: Framed[Any]) -> None:
        try:
            await handler(framed)
        finally:
            done.release()

    seen: list[tuple[int, str]] = []
    async with wsframed.serve(wrapped, "127.0.0.1", 0, codec=codec) as server:
        async with asyncio.timeout(30):
            for _ in range(connections):
                async with connect(f"ws://127.0.0.1:{server.port}", compression=None) as ws:
                    if send is not None:
                        await ws.send(send)
                    closed = await read_until_closed(ws)
                    assert closed.rcvd is not None
                    seen.append((closed.rcvd.code, closed.rcvd.reason))
                await done.acquire()  # the handler's record is written once it is closed
    return seen


async def read_until_closed(ws: Any) -> WsConnectionClosed:
    """Read (and drop) messages until the server closes; its close, as received."""
    try:
        while True:
            await ws.recv()
    except WsConnectionClosed as closed:
        return closed


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsframed.server"]


async def recv_one(framed: Framed[Any]) -> None:
    await framed.recv()


# Issue 22, behaviour 1: a frame over the handler's own limit is a local bug (1011) ----


async def test_a_handler_sending_a_frame_over_its_own_limit_closes_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def too_big(framed: Framed[str]) -> None:
        await framed.send("x" * 100)  # over max_frame_size=8: the handler's bug

    seen = await close_seen(too_big, LinesCodec(max_frame_size=8), None)
    assert seen == [(1011, "internal error")]  # not 1009, which would blame the peer
    [record] = server_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None  # a local bug keeps its traceback
    assert re.fullmatch(
        rf"connection handler failed \(peer {PEER}\); closed with 1011 \(internal error\)",
        record.getMessage(),
    )


async def test_a_frame_over_the_limit_from_the_peer_closes_with_1009(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = await close_seen(recv_one, LinesCodec(max_frame_size=8), b"x" * 100 + b"\n")
    assert seen == [(1009, "frame too large")]
    [record] = server_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert re.fullmatch(
        rf"closed with 1009 \(frame too large\): the peer {PEER} sent what the handler "
        r"could not take: FrameTooLarge: received frame of at least 9 bytes exceeds the "
        r"limit of 8 bytes.*",
        record.getMessage(),
    )


# Issue 14, item 5: the peer's errors cost one line, and the code logged is the one sent


async def test_a_text_message_logs_the_1003_that_was_sent_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = await close_seen(recv_one, MsgpackCodec(), "hello", connections=3)
    assert seen == [(1003, "text messages are not accepted")] * 3
    records = server_records(caplog)
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.WARNING, None)] * 3
    for record in records:
        assert re.fullmatch(
            rf"closed with 1003 \(text messages are not accepted\): the peer {PEER} sent "
            r"what the handler could not take: ProtocolError: received a text message of "
            r"5 bytes; .*",
            record.getMessage(),
        )


async def test_undecodable_bytes_close_with_1007_and_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = await close_seen(recv_one, MsgpackCodec(), b"\xc1")  # never used by msgpack
    assert seen == [(1007, "invalid frame data")]
    [record] = server_records(caplog)
    assert (record.levelno, record.exc_info) == (logging.WARNING, None)
    assert record.getMessage().startswith("closed with 1007 (invalid frame data): the peer")
    assert ": DecodeError: " in record.getMessage()


async def test_a_peer_that_leaves_is_logged_at_info_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wsframed.server")

    async def two_frames(framed: Framed[Any]) -> None:
        await framed.recv()
        await framed.recv()  # the peer closes instead: EndOfStream escapes

    done = asyncio.Event()

    async def watched(framed: Framed[Any]) -> None:
        try:
            await two_frames(framed)
        finally:
            done.set()

    async with wsframed.serve(watched, "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        async with asyncio.timeout(30):
            async with connect(f"ws://127.0.0.1:{server.port}", compression=None) as ws:
                await ws.send(msgpack.packb(1))
            await done.wait()
            await asyncio.sleep(0)  # the record follows the handler's end
    [record] = server_records(caplog)
    assert (record.levelno, record.exc_info) == (logging.INFO, None)
    assert re.fullmatch(
        rf"the peer {PEER} left before the handler finished: the peer ended the stream",
        record.getMessage(),
    )


async def test_a_handler_bug_keeps_its_traceback_and_says_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def buggy(framed: Framed[Any]) -> None:
        item = await framed.recv()
        item["missing"]  # a KeyError: the handler's own bug

    seen = await close_seen(buggy, MsgpackCodec(), msgpack.packb({"k": 1}))
    assert seen == [(1011, "internal error")]
    [record] = server_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)
    assert record.getMessage().endswith("; closed with 1011 (internal error)")
