"""anyio over WsStream: TLS inside a WebSocket, buffered reads, the ByteStream adapter."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import trustme
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSAttribute, TLSStream

from wsframed import EndOfStream, Framed, WsStream
from wsframed.anyio import AnyioWsStream, WsAttribute, as_anyio_stream
from wsframed.codecs import MsgpackCodec

from .backend_pairs import backend_pair

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts with a certificate for "localhost" from a test CA."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


@asynccontextmanager
async def stream_pair(kind: str, **options: Any) -> AsyncIterator[tuple[WsStream, WsStream]]:
    """Yield (stream over the backend under test, stream over its websockets peer)."""
    async with backend_pair(kind, **options) as (conn, peer):
        yield WsStream(conn), WsStream(peer)


async def tls_pair(
    server: Any, client: Any, contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> tuple[TLSStream, TLSStream]:
    """Run both TLS handshakes at once; return (server side, client side)."""
    server_context, client_context = contexts
    async with asyncio.timeout(10):
        return await asyncio.gather(
            TLSStream.wrap(server, server_side=True, ssl_context=server_context),
            TLSStream.wrap(client, hostname="localhost", ssl_context=client_context),
        )


async def echo_until_end(tls: TLSStream) -> None:
    try:
        while True:
            await tls.send(await tls.receive())
    except anyio.EndOfStream:
        await tls.aclose()


@pytest.mark.parametrize("kind", ["websockets", "aiohttp-server", "starlette"])
async def test_tls_inside_a_websocket_round_trip(
    kind: str, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    async with stream_pair(kind, subprotocols=["tls"]) as (here, there):
        server, client = await tls_pair(
            as_anyio_stream(here), as_anyio_stream(there), tls_contexts
        )
        echo = asyncio.create_task(echo_until_end(server))
        payload = os.urandom(300_000)
        await client.send(payload)
        received = bytearray()
        async with asyncio.timeout(10):
            while len(received) < len(payload):
                received += await client.receive()
        assert received == payload
        # Typed attributes pass through the TLS layer from the WebSocket below.
        assert client.extra(TLSAttribute.server_side) is False
        assert server.extra(TLSAttribute.tls_version).startswith("TLS")
        assert client.extra(SocketAttribute.remote_address)[0] == "127.0.0.1"
        assert client.extra(WsAttribute.subprotocol) == "tls"
        assert client.extra(WsAttribute.ws_stream) is there
        await asyncio.wait_for(client.aclose(), 10)  # TLS close_notify, then the WS close
        await asyncio.wait_for(echo, 10)
        assert here.is_closing()
        assert there.is_closing()


async def test_tls_wraps_a_bare_wsstream_by_duck_typing(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """No adapter needed at run time: anyio only calls the ByteStream methods."""
    async with stream_pair("aiohttp-client") as (here, there):
        server, client = await tls_pair(here, there, tls_contexts)
        echo = asyncio.create_task(echo_until_end(server))
        await client.send(b"ping over TLS over a WebSocket")
        assert await asyncio.wait_for(client.receive(), 5) == b"ping over TLS over a WebSocket"
        await asyncio.wait_for(client.aclose(), 10)
        await asyncio.wait_for(echo, 10)


async def test_framed_codec_over_tls_over_a_websocket(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    async with stream_pair("starlette") as (here, there):
        server, client = await tls_pair(
            as_anyio_stream(here), as_anyio_stream(there), tls_contexts
        )
        sender, receiver = Framed(client, MsgpackCodec()), Framed(server, MsgpackCodec())
        items = [{"n": i, "blob": os.urandom(i * 100)} for i in range(50)]
        await sender.send_all(items)
        async with asyncio.timeout(10):
            assert [await receiver.recv() for _ in items] == items


@pytest.mark.parametrize("adapt", [False, True], ids=["bare", "adapter"])
async def test_buffered_receive_until_over_a_wsstream(adapt: bool) -> None:
    async with stream_pair("aiohttp-server") as (here, there):
        source: Any = as_anyio_stream(here) if adapt else here
        buffered = BufferedByteReceiveStream(source)
        for part in (b"GET / HT", b"TP/1.1\r\nHost: exa", b"mple\r\n", b"\r\nbody"):
            there.write(part)
            await there.drain()
        assert await buffered.receive_until(b"\r\n", 100) == b"GET / HTTP/1.1"
        assert await buffered.receive_until(b"\r\n", 100) == b"Host: example"
        assert await buffered.receive_until(b"\r\n", 100) == b""
        there.write(b"x" * 200)
        await there.drain()
        with pytest.raises(anyio.DelimiterNotFound):
            await buffered.receive_until(b"\r\n", 100)
        await there.aclose()
        with pytest.raises(anyio.IncompleteRead):
            await buffered.receive_until(b"\r\n", 1000)


async def test_adapter_is_a_byte_stream_with_anyio_errors() -> None:
    async with stream_pair("websockets") as (here, there):
        adapter = as_anyio_stream(here)
        assert isinstance(adapter, ByteStream)
        assert isinstance(adapter, AnyioWsStream)
        assert adapter.extra(WsAttribute.connection) is here.get_extra_info("connection")
        assert adapter.extra(SocketAttribute.local_address) == here.get_extra_info("sockname")
        with pytest.raises(ValueError, match="positive"):
            await adapter.receive(0)
        there.write(b"abc")
        await there.send_eof()
        assert await adapter.receive(2) == b"ab"
        assert await adapter.receive() == b"c"
        with pytest.raises(anyio.EndOfStream) as info:
            await adapter.receive()
        assert isinstance(info.value, EndOfStream)  # wsframed's, a subclass
        await adapter.send_eof()
        with pytest.raises(anyio.ClosedResourceError):
            await adapter.send(b"late")
        await adapter.aclose()


async def test_adapter_reports_an_abnormal_end_as_broken_resource() -> None:
    async with stream_pair("aiohttp-client") as (here, there):
        adapter = as_anyio_stream(here)
        there.write(b"last")
        await there.aclose(4001, "failed")
        assert await adapter.receive() == b"last"
        with pytest.raises(anyio.BrokenResourceError) as info:
            await adapter.receive()
        assert info.value.__cause__ is not None
        assert "4001" in str(info.value)


async def test_as_anyio_stream_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match=r"wraps a wsframed\.WsStream"):
        as_anyio_stream(object())  # type: ignore[arg-type]
