"""WsStream's events come in the order the frames arrived (issue 14, item 4).

A text message's event is emitted as the message arrives, not when a reader reaches
it, so a peer that sends text and closes right behind it still gets its TextMessage
(and, with ``text="reject"``, the Error) reported before ``Closed``; the Error of an
abnormal close is reported before ``Closed`` too. Nothing is emitted after ``Closed``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wsframed import ConnectionClosed, ProtocolError, WsStream
from wsframed.events import Closed, CloseFrame, Error, Event, Ping, TextMessage

from .backend_pairs import BACKENDS, backend_pair
from .conftest import ws_pair


async def all_events(subscription: Any) -> list[Event]:
    return await asyncio.wait_for(_collect(subscription), 10)


async def _collect(subscription: Any) -> list[Event]:
    return [event async for event in subscription]


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("policy", ["ignore", "bytes", "reject"])
async def test_text_then_close_reports_the_text_before_closed(kind: str, policy: Any) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn, text=policy)
        events = stream.events()
        await peer.send(b"before")
        await peer.send("hello")
        await peer.close()  # right behind the text message; nobody reads meanwhile
        got = await all_events(events)  # ends with Closed, before any read
        if policy == "reject":
            assert len(got) == 4
            assert got[0] == TextMessage(5)
            error = got[1]
            assert isinstance(error, Error)
            assert isinstance(error.exc, ProtocolError)
            assert "text message of 5 bytes" in str(error.exc)
            assert got[2:] == [CloseFrame(1000, ""), Closed(1000, "")]
            assert await stream.read(100) == b"before"
            with pytest.raises(ProtocolError) as info:
                await stream.read(100)
            assert info.value is error.exc  # the reader gets the exception announced
        else:
            assert got == [TextMessage(5), CloseFrame(1000, ""), Closed(1000, "")]
            expected = b"beforehello" if policy == "bytes" else b"before"
            assert await stream.read(-1) == expected


async def test_events_follow_the_wire_order_of_pings_and_text() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, text="ignore")
        events = stream.events()
        await server.ping(b"1")
        await server.send("é" * 3)  # 6 UTF-8 bytes
        await server.ping(b"2")
        await server.send(["frag", "ment", "ed"])  # one text message in three frames
        await server.ping(b"3")
        await server.close(1001, "bye")
        assert await all_events(events) == [
            Ping(b"1"),
            TextMessage(6),
            Ping(b"2"),
            TextMessage(10),
            Ping(b"3"),
            CloseFrame(1001, "bye"),
            Closed(1001, "bye"),
        ]
        assert await stream.read() == b""


async def test_an_abnormal_close_reports_its_error_before_closed() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        events = stream.events()
        await server.send(b"unread")
        await server.close(1011, "broken")
        got = await all_events(events)
        assert got[0] == CloseFrame(1011, "broken")
        error = got[1]
        assert isinstance(error, Error)
        assert isinstance(error.exc, ConnectionClosed)
        assert (error.exc.code, error.exc.reason) == (1011, "broken")
        assert got[2:] == [Closed(1011, "broken")]
        assert await stream.read(100) == b"unread"  # the bytes before the error first
        with pytest.raises(ConnectionClosed) as info:
            await stream.read()
        assert info.value is error.exc


async def test_a_text_message_queued_before_the_stream_existed_is_reported_when_read() -> None:
    async with ws_pair() as (client, server):
        await server.send(b"a")
        await server.send("xyz")
        await server.send(b"b")
        await asyncio.wait_for(await server.ping(), 5)  # all three are queued
        stream = WsStream(client, text="ignore")
        events = stream.events()
        assert await stream.readexactly(2) == b"ab"
        await server.close()
        assert await stream.read() == b""
        assert await all_events(events) == [
            TextMessage(3),
            CloseFrame(1000, ""),
            Closed(1000, ""),
        ]


async def test_a_text_message_queued_before_the_stream_existed_is_reported_before_closed() -> None:
    async with ws_pair() as (client, server):
        await server.send("xyz")
        await server.send(b"b")
        await server.send("four")
        await asyncio.wait_for(await server.ping(), 5)  # all three are queued
        stream = WsStream(client, text="reject")
        events = stream.events()
        await server.close()  # nobody reads
        got = await all_events(events)
        assert got[0] == TextMessage(3)
        error = got[1]
        assert isinstance(error, Error)
        assert got[2:] == [TextMessage(4), CloseFrame(1000, ""), Closed(1000, "")]
        with pytest.raises(ProtocolError) as info:
            await stream.read(100)
        assert info.value is error.exc
