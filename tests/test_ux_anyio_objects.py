"""Framed as an anyio ObjectStream: side by side with anyio's own memory object streams,
and under anyio utilities, over real servers and clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import pytest
from anyio.abc import ObjectReceiveStream, ObjectSendStream, ObjectStream, SocketAttribute
from anyio.streams.stapled import StapledObjectStream

import wsframed
from wsframed import ConnectionClosed, Framed, WsStream
from wsframed.anyio import WsAttribute, as_anyio_stream
from wsframed.anyio_framed import AnyioFramed, as_object_stream, as_object_stream_halves
from wsframed.codecs import LinesCodec

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")


async def echo_objects(stream: ObjectStream[str]) -> None:
    """anyio-generic: echo every object until the end, then close."""
    async with stream:
        async for item in stream:
            await stream.send(item)


async def transcript(stream: ObjectStream[str]) -> list[str]:
    """anyio-generic: what a client of ``echo_objects`` observes, step by step."""
    log: list[str] = []
    for item in ("one", "two"):
        await stream.send(item)
        log.append(f"got {await stream.receive()}")
    await stream.send_eof()
    try:
        await stream.send("three")
    except Exception as exc:
        log.append(f"send after send_eof: {type(exc).__name__}")
    log.append(f"rest {[item async for item in stream]}")  # anyio's own __anext__
    try:
        await stream.receive()
    except Exception as exc:
        log.append(f"receive at the end: {type(exc).__name__}")
    await stream.aclose()
    await stream.aclose()  # idempotent
    try:
        await stream.receive()
    except Exception as exc:
        log.append(f"receive after aclose: {type(exc).__name__}")
    try:
        await stream.send("four")
    except Exception as exc:
        log.append(f"send after aclose: {type(exc).__name__}")
    return log


EXPECTED = [
    "got one",
    "got two",
    "send after send_eof: ClosedResourceError",
    "rest []",
    "receive at the end: EndOfStream",
    "receive after aclose: ClosedResourceError",
    "send after aclose: ClosedResourceError",
]


async def test_anyio_memory_streams_give_the_reference_transcript() -> None:
    to_server, from_client = anyio.create_memory_object_stream[str](8)
    to_client, from_server = anyio.create_memory_object_stream[str](8)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(echo_objects, StapledObjectStream(to_client, from_client))
        with anyio.fail_after(10):
            assert await transcript(StapledObjectStream(to_server, from_server)) == EXPECTED


async def test_framed_gives_the_same_transcript_over_a_websocket() -> None:
    async def handler(framed: Framed[str]) -> None:
        await echo_objects(as_object_stream(framed))

    async with wsframed.serve(handler, "127.0.0.1", 0, LinesCodec()) as server:
        framed = await wsframed.connect(f"ws://127.0.0.1:{server.port}", LinesCodec())
        objects = as_object_stream(framed)
        assert isinstance(objects, ObjectStream)
        with anyio.fail_after(10):
            assert await transcript(objects) == EXPECTED
        assert (framed.close_code, framed.close_reason) == (1000, "")


async def test_the_halves_stapled_give_the_same_transcript() -> None:
    async def handler(framed: Framed[str]) -> None:
        send, receive = as_object_stream_halves(framed)
        await echo_objects(StapledObjectStream(send, receive))

    async with wsframed.serve(handler, "127.0.0.1", 0, LinesCodec()) as server:
        framed = await wsframed.connect(f"ws://127.0.0.1:{server.port}", LinesCodec())
        send, receive = as_object_stream_halves(framed)
        assert isinstance(send, ObjectSendStream)
        assert isinstance(receive, ObjectReceiveStream)
        with anyio.fail_after(10):
            assert await transcript(StapledObjectStream(send, receive)) == EXPECTED
        assert (framed.close_code, framed.close_reason) == (1000, "")


async def test_two_tasks_on_the_halves_as_on_a_memory_stream() -> None:
    """A producer closes its sending half; the consumer reads to the end of stream."""

    async def produce(send: ObjectSendStream[str]) -> None:
        async with send:
            for item in ("a", "b", "c"):
                await send.send(item)

    async def consume(receive: ObjectReceiveStream[str], into: list[str]) -> None:
        async with receive:
            into.extend([item async for item in receive])

    results: dict[str, list[str]] = {"memory": [], "framed": []}
    memory_send, memory_receive = anyio.create_memory_object_stream[str](8)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(produce, memory_send)
        tasks.start_soon(consume, memory_receive, results["memory"])

    async def handler(framed: Framed[str]) -> None:
        send, _ = as_object_stream_halves(framed)
        await produce(send)
        async for _ in framed:  # until the client's close reply
            pass

    async with wsframed.serve(handler, "127.0.0.1", 0, LinesCodec()) as server:
        framed = await wsframed.connect(f"ws://127.0.0.1:{server.port}", LinesCodec())
        _, receive = as_object_stream_halves(framed)
        with anyio.fail_after(10):
            await consume(receive, results["framed"])
    assert results == {"memory": ["a", "b", "c"], "framed": ["a", "b", "c"]}


async def pump(source: ObjectReceiveStream[T], sink: ObjectSendStream[T]) -> None:
    """anyio-generic: copy objects until the source ends, then close the sink."""
    async with sink:
        async for item in source:
            await sink.send(item)


@asynccontextmanager
async def served(handler: wsframed.server.Handler[str]) -> AsyncIterator[AnyioFramed[str]]:
    async with (
        wsframed.serve(handler, "127.0.0.1", 0, LinesCodec()) as server,
        wsframed.connect(f"ws://127.0.0.1:{server.port}", LinesCodec()) as framed,
    ):
        yield as_object_stream(framed)


async def test_a_pump_into_a_memory_stream_ends_at_the_peer_end() -> None:
    async def three(framed: Framed[str]) -> None:
        await framed.send_all(["a", "b", "c"])

    async with served(three) as objects:
        sink, received = anyio.create_memory_object_stream[str](8)
        with anyio.fail_after(10):
            await pump(objects, sink)
            assert [item async for item in received] == ["a", "b", "c"]


async def test_an_abnormal_close_is_a_broken_resource() -> None:
    async def leave(framed: Framed[str]) -> None:
        stream = framed.stream
        assert isinstance(stream, WsStream)
        await stream.aclose(4001, "room closed")

    async with served(leave) as objects:
        with pytest.raises(anyio.BrokenResourceError) as broken:
            await asyncio.wait_for(objects.receive(), 10)
        cause = broken.value.__cause__
        assert isinstance(cause, ConnectionClosed)
        assert (cause.code, cause.reason) == (4001, "room closed")


async def test_extra_attributes_reach_through() -> None:
    async def hold(framed: Framed[str]) -> None:
        await framed.recv()

    async with served(hold) as objects:
        assert objects.extra(SocketAttribute.remote_address) == objects.framed.remote_address
        assert objects.extra(SocketAttribute.local_address) == objects.framed.local_address
        with pytest.raises(anyio.TypedAttributeLookupError):
            objects.extra(WsAttribute.subprotocol)
        # Over an anyio byte stream, its typed attributes pass through.
        ws = objects.framed.stream
        assert isinstance(ws, WsStream)
        layered = as_object_stream(Framed(as_anyio_stream(ws), LinesCodec()))
        assert layered.extra(WsAttribute.subprotocol) is None
        assert layered.extra(WsAttribute.ws_stream) is ws
        await objects.send("done")


async def test_as_object_stream_refuses_anything_but_a_framed() -> None:
    with pytest.raises(TypeError) as refused:
        as_object_stream("framed")  # type: ignore[arg-type]
    assert str(refused.value) == "as_object_stream() wraps a wsframed.Framed, not str"
    with pytest.raises(TypeError) as halves:
        as_object_stream_halves("framed")  # type: ignore[arg-type]
    assert str(halves.value) == "as_object_stream_halves() wraps a wsframed.Framed, not str"
