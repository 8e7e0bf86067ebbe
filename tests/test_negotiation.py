"""Codec negotiation through the WebSocket subprotocol, on real loopback servers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import InvalidStatus

import wsframed
from wsframed import Framed
from wsframed.codecs import (
    BytesCodec,
    CborCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)
from wsframed.negotiation import CodecMismatch, subprotocol_of

WAIT = 10.0


class Netstring:
    """A codec of one's own, named for negotiation by its ``subprotocol`` attribute."""

    subprotocol = "example.com.netstring"
    max_frame_size = 100

    def encode(self, item: bytes) -> bytes:
        return b"%d:%s," % (len(item), item)

    def decoder(self) -> Any:
        return BytesCodec().decoder()


class SubclassedLines(LinesCodec[str]):
    pass


@pytest.mark.parametrize(
    ("codec", "name"),
    [
        (BytesCodec(), "wsframed.bytes"),
        (LinesCodec(), "wsframed.lines"),
        (LinesCodec(encoding=None), "wsframed.lines"),
        (LinesCodec(encoding="latin1"), "wsframed.lines.iso8859-1"),
        (JsonLinesCodec(), "wsframed.jsonl"),
        (MsgpackCodec(), "wsframed.msgpack"),
        (CborCodec(), "wsframed.cbor"),
        (LengthPrefixedCodec(), "wsframed.length"),
        (LengthPrefixedCodec(max_frame_size=10), "wsframed.length"),
        (LengthPrefixedCodec(2, "little"), "wsframed.length.2le"),
        (LengthPrefixedCodec(length_includes_header=True), "wsframed.length.4be.incl"),
        (Netstring(), "example.com.netstring"),
    ],
)
def test_each_codec_has_a_name_for_its_wire_format(codec: Any, name: str) -> None:
    assert subprotocol_of(codec) == name


def test_a_subclass_without_a_name_is_refused_naming_the_fix() -> None:
    with pytest.raises(TypeError) as raised:
        subprotocol_of(SubclassedLines())
    assert str(raised.value) == (
        "SubclassedLines has no subprotocol name to negotiate with: give the codec a "
        "'subprotocol' attribute (a name such as 'example.com.mycodec')"
    )


async def echo(framed: Framed[Any]) -> None:
    await framed.send({"codec": type(framed.codec).__name__, "subprotocol": framed.subprotocol})


def url(server: wsframed.FramedServer) -> str:
    return f"ws://127.0.0.1:{server.port}/"


async def test_the_server_picks_the_codec_the_client_offers() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, [MsgpackCodec(), JsonLinesCodec()]) as server:
        for codec in (JsonLinesCodec(), MsgpackCodec()):
            async with wsframed.connect(url(server), codec, negotiate=True) as framed:
                name = subprotocol_of(codec)
                assert framed.subprotocol == name
                assert await asyncio.wait_for(framed.recv(), WAIT) == {
                    "codec": type(codec).__name__,
                    "subprotocol": name,
                }


async def test_the_clients_order_of_preference_wins() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, [MsgpackCodec(), JsonLinesCodec()]) as server:
        offer = ["wsframed.cbor", "wsframed.jsonl", "wsframed.msgpack"]
        async with ws_connect(url(server), subprotocols=offer) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "wsframed.jsonl"
            assert await asyncio.wait_for(ws.recv(), WAIT) == (
                b'{"codec":"JsonLinesCodec","subprotocol":"wsframed.jsonl"}\n'
            )


async def test_a_mismatch_fails_the_handshake_on_both_sides(
    caplog: pytest.LogCaptureFixture,
) -> None:
    called = []

    async def handler(framed: Framed[Any]) -> None:
        called.append(framed)

    caplog.set_level(logging.INFO, "wsframed.server")
    async with wsframed.serve(handler, "127.0.0.1", 0, MsgpackCodec(), negotiate=True) as server:
        uri = url(server)
        with pytest.raises(CodecMismatch) as raised:
            await asyncio.wait_for(
                wsframed.connect(url(server), LinesCodec(), negotiate=True), WAIT
            )
    assert str(raised.value) == (
        f"the server at {uri} speaks wsframed.msgpack; this client offered wsframed.lines"
    )
    assert (raised.value.offered, raised.value.available) == (
        ("wsframed.lines",),
        ("wsframed.msgpack",),
    )
    assert isinstance(raised.value.__cause__, InvalidStatus)
    assert called == []
    records = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "wsframed.server"
    ]
    assert len(records) == 1
    level, message = records[0]
    assert level == "WARNING"
    assert message.startswith("refused a client at ('127.0.0.1', ")
    assert message.endswith(
        "): codec mismatch: the client offered wsframed.lines; this server speaks wsframed.msgpack"
    )


async def test_the_refusal_answers_400_with_the_servers_codecs() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, [MsgpackCodec(), CborCodec()]) as server:
        with pytest.raises(InvalidStatus) as raised:
            await ws_connect(url(server), subprotocols=["wsframed.lines"])  # type: ignore[list-item]
    response = raised.value.response
    assert response.status_code == 400
    assert response.headers["Wsframed-Codecs"] == "wsframed.msgpack, wsframed.cbor"
    assert response.body == (
        b"codec mismatch: the client offered wsframed.lines; "
        b"this server speaks wsframed.msgpack, wsframed.cbor\n"
    )


async def test_a_long_offer_is_quoted_in_part(caplog: pytest.LogCaptureFixture) -> None:
    offer = [f"wsframed.x{i}" for i in range(100)] + ["wsframed." + "y" * 200]
    caplog.set_level(logging.INFO, "wsframed.server")
    async with wsframed.serve(echo, "127.0.0.1", 0, MsgpackCodec(), negotiate=True) as server:
        with pytest.raises(InvalidStatus):
            await ws_connect(url(server), subprotocols=offer)  # type: ignore[arg-type]
    (record,) = [r for r in caplog.records if r.name == "wsframed.server"]
    quoted = ", ".join(offer[:8])
    assert record.getMessage().endswith(
        f"codec mismatch: the client offered {quoted}, ... (93 more); "
        "this server speaks wsframed.msgpack"
    )


async def test_a_client_that_does_not_negotiate_gets_the_first_codec() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, [JsonLinesCodec(), MsgpackCodec()]) as server:
        async with wsframed.connect(url(server), JsonLinesCodec()) as framed:
            assert framed.subprotocol is None
            assert await asyncio.wait_for(framed.recv(), WAIT) == {
                "codec": "JsonLinesCodec",
                "subprotocol": None,
            }
        # Other subprotocols than wsframed's: a plain peer too.
        async with ws_connect(url(server), subprotocols=["chat"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol is None
            assert await asyncio.wait_for(ws.recv(), WAIT) == (
                b'{"codec":"JsonLinesCodec","subprotocol":null}\n'
            )


async def test_a_negotiating_client_works_with_a_plain_server() -> None:
    async def plain(connection: Any) -> None:
        await connection.send(b"hello\n")

    async with ws_serve(plain, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        uri = f"ws://127.0.0.1:{port}/"
        async with wsframed.connect(uri, LinesCodec(), negotiate=True) as framed:
            assert framed.subprotocol is None
            assert await asyncio.wait_for(framed.recv(), WAIT) == "hello"


async def test_the_reconnecting_loop_raises_a_mismatch_at_once() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, [MsgpackCodec()]) as server:
        uri = url(server)

        async def first_connection() -> None:
            async for _framed in wsframed.connect(uri, CborCodec(), negotiate=True):
                pytest.fail("connected despite the mismatch")

        with pytest.raises(CodecMismatch) as raised:
            await asyncio.wait_for(first_connection(), WAIT)
    assert str(raised.value) == (
        f"the server at {uri} speaks wsframed.msgpack; this client offered wsframed.cbor"
    )


async def test_a_server_selecting_another_codec_is_a_mismatch() -> None:
    def select(connection: Any, offered: Any) -> str:
        return "wsframed.cbor"

    async def plain(connection: Any) -> None:
        await connection.wait_closed()

    async with ws_serve(
        plain, "127.0.0.1", 0, subprotocols=["wsframed.cbor"], select_subprotocol=select
    ) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(CodecMismatch) as raised:
            await wsframed.connect(f"ws://127.0.0.1:{port}/", LinesCodec(), negotiate=True)
    assert str(raised.value) == (
        f"the server at ws://127.0.0.1:{port}/ refused or changed the codec "
        "(unsupported subprotocol: wsframed.cbor); this client offered wsframed.lines"
    )


def test_the_callers_mistakes_are_refused_at_the_call() -> None:
    with pytest.raises(TypeError, match="drop subprotocols="):
        wsframed.serve(echo, "127.0.0.1", 0, [MsgpackCodec()], subprotocols=["x"])
    with pytest.raises(TypeError, match="drop select_subprotocol="):
        wsframed.serve(echo, "127.0.0.1", 0, MsgpackCodec(), negotiate=True, select_subprotocol=id)
    with pytest.raises(TypeError, match="drop subprotocols="):
        wsframed.connect("ws://x/", MsgpackCodec(), negotiate=True, subprotocols=["x"])
    with pytest.raises(ValueError, match="empty list of codecs"):
        wsframed.serve(echo, "127.0.0.1", 0, [])
    with pytest.raises(ValueError, match=r"two codecs named 'wsframed\.lines'"):
        wsframed.serve(echo, "127.0.0.1", 0, [LinesCodec(), LinesCodec(max_frame_size=5)])
    with pytest.raises(TypeError, match="codec"):
        wsframed.serve(echo, "127.0.0.1", 0, [MsgpackCodec(), MsgpackCodec])
    with pytest.raises(TypeError, match="subprotocol"):
        wsframed.connect("ws://x/", SubclassedLines(), negotiate=True)


async def test_the_negotiation_example(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.codec_negotiation import main

    await asyncio.wait_for(main(), 30)
    assert capsys.readouterr().out.splitlines() == [
        "{'you speak': 'wsframed.jsonl'}",
        "{'you speak': 'wsframed.msgpack'}",
        "refused: the server at URL speaks wsframed.msgpack, wsframed.jsonl; "
        "this client offered wsframed.cbor",
    ]
