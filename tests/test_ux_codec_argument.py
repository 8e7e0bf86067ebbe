"""One calling convention for the codec: connect(uri, codec), serve(handler, host, port, codec).

A codec class or any other non-codec object is refused at the call, with a TypeError
that names the fix, instead of each connection failing later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import wsframed
from wsframed import Framed, FramedServer
from wsframed.codecs import LinesCodec, MsgpackCodec


async def echo(framed: Framed[Any]) -> None:
    async for item in framed:
        await framed.send(item)


def url_of(server: FramedServer) -> str:
    return f"ws://127.0.0.1:{server.port}"


async def test_serve_takes_the_codec_positionally_as_connect_does() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, MsgpackCodec()) as server:
        framed = await wsframed.connect(url_of(server), MsgpackCodec())
        await framed.send({"n": 1})
        assert await asyncio.wait_for(framed.recv(), 5) == {"n": 1}
        await framed.aclose()


async def test_both_take_the_codec_by_keyword_too() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, codec=LinesCodec()) as server:
        framed = await wsframed.connect(url_of(server), codec=LinesCodec())
        await framed.send("kw")
        assert await asyncio.wait_for(framed.recv(), 5) == "kw"
        await framed.aclose()


CLASS_FIX = "got the codec class LinesCodec, not a codec: pass an instance: LinesCodec()"


async def test_serve_refuses_a_codec_class_at_the_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TypeError) as keyword:
        wsframed.serve(echo, "127.0.0.1", 0, codec=LinesCodec)  # type: ignore[call-overload]
    assert str(keyword.value) == f"serve() {CLASS_FIX}"
    with pytest.raises(TypeError) as positional:
        wsframed.serve(echo, "127.0.0.1", 0, LinesCodec)  # type: ignore[call-overload]
    assert str(positional.value) == f"serve() {CLASS_FIX}"
    assert [r for r in caplog.records if r.name.startswith(("wsframed", "websockets"))] == []


async def test_connect_refuses_a_codec_class_before_connecting() -> None:
    # Nothing listens on port 9 of a name that cannot resolve: were a connection
    # attempted, the error would be an OSError, not this TypeError.
    with pytest.raises(TypeError) as positional:
        wsframed.connect("ws://unresolvable.invalid:9", LinesCodec)  # type: ignore[arg-type]
    assert str(positional.value) == f"connect() {CLASS_FIX}"
    with pytest.raises(TypeError) as keyword:
        wsframed.connect("ws://unresolvable.invalid:9", codec=LinesCodec)  # type: ignore[arg-type]
    assert str(keyword.value) == f"connect() {CLASS_FIX}"


@pytest.mark.parametrize(
    ("codec", "what"),
    [
        (5, "an instance of int"),
        ("lines", "an instance of str"),
        (None, "an instance of NoneType"),
        (dict, "the class dict"),
    ],
)
async def test_a_non_codec_is_refused_at_the_call(codec: Any, what: str) -> None:
    needs = (
        "needs a codec instance (an object with encode() and decoder(), "
        f"such as LinesCodec()), not {what}"
    )
    with pytest.raises(TypeError) as connecting:
        wsframed.connect("ws://unresolvable.invalid:9", codec)
    assert str(connecting.value) == f"connect() {needs}"
    with pytest.raises(TypeError) as framing:
        Framed((asyncio.StreamReader(), None), codec)
    assert str(framing.value) == f"Framed() {needs}"
    if codec is not None:  # None is "no codec", below
        with pytest.raises(TypeError) as serving:
            wsframed.serve(echo, "127.0.0.1", 0, codec)
        assert str(serving.value) == f"serve() {needs}"


async def test_serve_without_a_codec_names_both_spellings() -> None:
    with pytest.raises(TypeError) as missing:
        wsframed.serve(echo, "127.0.0.1", 0)  # type: ignore[call-overload]
    assert str(missing.value) == (
        "serve() needs a codec: serve(handler, host, port, LinesCodec()) "
        "or serve(handler, host, port, codec=LinesCodec())"
    )


async def test_serve_with_the_handler_and_codec_swapped_names_the_handler() -> None:
    with pytest.raises(TypeError) as swapped:
        wsframed.serve(LinesCodec(), "127.0.0.1", 0, LinesCodec())  # type: ignore[call-overload]
    assert str(swapped.value) == (
        "serve() needs a handler first: an async function taking a Framed, "
        "or a mapping of paths to such functions, not a LinesCodec"
    )


async def test_framed_refuses_a_codec_class() -> None:
    with pytest.raises(TypeError) as refused:
        Framed((asyncio.StreamReader(), None), LinesCodec)  # type: ignore[arg-type]
    assert str(refused.value) == f"Framed() {CLASS_FIX}"
