"""What an idle connection holds: no buffer or queue before it is needed, no instance dict.

An idle server holds one WsStream, its backend adapter and a Framed per connection, so
whatever they allocate up front is paid per connection (benchmarks/idle_memory.py
measures the total). These tests pin the allocations that were made lazy: each
container exists once the work that needs it has started, and holds exactly that work.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections import deque
from typing import Any

from wsframed import Framed, WsStream
from wsframed.codecs import LengthPrefixedCodec
from wsframed.events import Closed, CloseFrame, TextMessage

from .conftest import wait_for, ws_pair


def deques_held(obj: object) -> list[list[Any]]:
    """The contents of every deque ``obj`` refers to directly (or in its ``__dict__``)."""
    held = gc.get_referents(obj)
    attributes = getattr(obj, "__dict__", None)
    if attributes is not None:
        held += attributes.values()
    return [list(o) for o in held if type(o) is deque]


async def test_an_idle_stream_holds_no_deque_until_bytes_are_written() -> None:
    async with ws_pair() as (client, _server):
        stream = WsStream(client)
        await asyncio.sleep(0)  # its watcher has started
        assert deques_held(stream) == []
        stream.write(b"one")
        stream.write(b"two")
        assert deques_held(stream) == [[b"one", b"two"]]
        await stream.drain()
        assert deques_held(stream) == [[]]  # kept for the next writes
        await stream.aclose()


async def test_two_drains_queue_the_second_only_when_they_contend() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        stream.write(b"x" * 10)
        await stream.drain()  # uncontended: nobody waited
        assert deques_held(stream) == [[]]
        size = 32 << 20  # more than loopback's buffers take while the server does not read
        stream.write(b"y" * size)
        first = asyncio.create_task(stream.drain())
        await wait_for(lambda: stream._draining)
        second = asyncio.create_task(stream.drain())
        await wait_for(lambda: len(deques_held(stream)) == 2)
        # The bytes the first drain() has not sent yet, and the second drain() waiting.
        assert sorted(len(held) for held in deques_held(stream)) == [1, 1]
        received = 0
        while received < 10 + size:
            received += len(await asyncio.wait_for(server.recv(), 10))
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        assert deques_held(stream) == [[], []]
        assert received == 10 + size
        await stream.aclose()


async def test_texts_queued_before_the_stream_are_held_until_reported() -> None:
    async with ws_pair() as (client, server):
        await server.send("hi")
        await server.send(b"data")
        await wait_for(lambda: len(client.recv_messages.frames.queue) == 2)
        stream = WsStream(client, text="ignore")
        assert deques_held(stream) == [[2]]
        events = stream.events()
        assert await stream.read(10) == b"data"
        assert deques_held(stream) == []
        assert await asyncio.wait_for(events.__anext__(), 5) == TextMessage(2)
        await stream.aclose()


async def test_a_stream_and_its_backend_have_no_instance_dict_and_stay_weakly_referable() -> None:
    async with ws_pair() as (client, _server):
        stream = WsStream(client)
        framed = Framed(stream, LengthPrefixedCodec())
        assert not hasattr(stream, "__dict__")
        assert not hasattr(stream._backend, "__dict__")
        assert weakref.ref(stream)() is stream
        assert weakref.ref(framed)() is framed
        await stream.aclose()


async def test_an_idle_stream_runs_no_task_and_still_reports_the_close() -> None:
    async with ws_pair() as (client, server):
        tasks = asyncio.all_tasks()
        stream = WsStream(client)
        events = stream.events()
        await asyncio.sleep(0)
        assert asyncio.all_tasks() - tasks == set()
        await server.close(1000, "bye")
        assert await asyncio.wait_for(events.__anext__(), 5) == CloseFrame(1000, "bye")
        assert await asyncio.wait_for(events.__anext__(), 5) == Closed(1000, "bye")
        assert await stream.read(10) == b""
