"""RpcPeer's log is bounded per connection, whatever the peer sends (issue 14, item 5).

A hostile peer over a real WebSocket connection to a ``serve()`` handler running an
RpcPeer: the log holds the first ``LOG_FIRST`` records of each kind, then one summary
per kind with the count, written when the connection ends.

Run as a script to measure log bytes per MiB of hostile input::

    PYTHONPATH=$PWD python -m tests.test_rpc_logs
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

import wsframed
from wsframed import Framed
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import LOG_FIRST, RemoteError, RpcPeer

from .conftest import framed_pair

pytestmark = pytest.mark.timeout(60)

KiB = 1024
MiB = 1024 * KiB


def fail() -> None:
    raise ValueError("refused by the handler")


def rpc_handler(done: asyncio.Event) -> Callable[[Framed[Any]], Any]:
    async def handler(framed: Framed[Any]) -> None:
        try:
            await RpcPeer(framed, handlers={"fail": fail}).serve()
        finally:
            done.set()

    return handler


async def send_hostile(port: int, chunks: list[bytes], answers: int = 0) -> list[Any]:
    """Send ``chunks`` as binary messages, read ``answers`` responses, close with 1000."""
    unpacker = msgpack.Unpacker()
    replies: list[Any] = []
    async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
        for chunk in chunks:
            await ws.send(chunk)
        while len(replies) < answers:
            message = await ws.recv()
            assert isinstance(message, bytes)
            unpacker.feed(message)
            replies.extend(unpacker)
    return replies


def rpc_records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, bool]]:
    return [
        (r.levelno, r.getMessage(), r.exc_info is not None)
        for r in caplog.records
        if r.name.startswith("wsframed")
    ]


async def test_a_hostile_peer_gets_the_first_records_of_each_kind_then_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wsframed")
    done = asyncio.Event()
    unknown = msgpack.packb([2, "nope", []])
    failing = b"".join(msgpack.packb([0, i, "fail", []]) for i in range(30))
    async with wsframed.serve(rpc_handler(done), "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        async with asyncio.timeout(30):
            replies = await send_hostile(
                server.port,
                [b"\x01" * (64 * KiB), unknown * 1000, failing],  # 65,536 + 1,000 + 30
                answers=30,
            )
            await done.wait()
    assert replies == [[1, i, "ValueError: refused by the handler", None] for i in range(30)]
    records = rpc_records(caplog)
    bad_byte = (
        "malformed msgpack-RPC message from the peer (not an array starting with a type code)"
    )
    assert records[:LOG_FIRST] == [(logging.WARNING, f"{bad_byte}: 1", False)] * LOG_FIRST
    assert (
        records[LOG_FIRST : 2 * LOG_FIRST]
        == [(logging.WARNING, "notification of unknown method 'nope' ignored", False)] * LOG_FIRST
    )
    handler_errors = records[2 * LOG_FIRST : 3 * LOG_FIRST]
    assert (
        handler_errors
        == [(logging.INFO, "handler of 'fail' raised ValueError: refused by the handler", True)]
        * LOG_FIRST
    )  # the handler's own exception keeps its traceback
    assert records[3 * LOG_FIRST :] == [
        (
            logging.WARNING,
            "65536 malformed messages from the peer on this connection; "
            "65526 of them were not logged",
            False,
        ),
        (
            logging.WARNING,
            "1000 notifications of unknown methods on this connection; "
            "990 of them were not logged",
            False,
        ),
        (
            logging.INFO,
            "30 handler exceptions on this connection; 20 of them were not logged",
            False,
        ),
    ]


async def test_a_quiet_connection_writes_no_summary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wsframed")
    done = asyncio.Event()
    async with wsframed.serve(rpc_handler(done), "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        async with asyncio.timeout(30):
            await send_hostile(server.port, [b"\x01" * LOG_FIRST])  # exactly LOG_FIRST
            await done.wait()
    records = [r for r in rpc_records(caplog) if r[0] >= logging.INFO]
    assert len(records) == LOG_FIRST
    assert not [r for r in records if "were not logged" in r[1]]


# Measurement (not a test) ------------------------------------------------------------


def _capture() -> io.StringIO:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("wsframed")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
    return buffer


async def _longest_stall(stop: asyncio.Event) -> float:
    """The longest time the event loop went without giving this task a turn."""
    longest = 0.0
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    return longest


async def _measure_rpc(name: str, payload: bytes) -> None:
    buffer = _capture()
    done = asyncio.Event()
    stop = asyncio.Event()
    stall = asyncio.create_task(_longest_stall(stop))
    async with wsframed.serve(rpc_handler(done), "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        async with connect(f"ws://127.0.0.1:{server.port}", compression=None) as ws:

            async def drain() -> None:  # read the responses, as a client would
                async for _ in ws:
                    pass

            reading = asyncio.create_task(drain())
            for start in range(0, len(payload), 64 * KiB):
                await ws.send(payload[start : start + 64 * KiB])
        await reading
        await done.wait()
    stop.set()
    longest = await stall
    size = len(buffer.getvalue().encode())
    lines = buffer.getvalue().count("\n")
    print(
        f"{name:32} {size / (len(payload) / MiB):>10,.0f} log bytes per MiB "
        f"({lines:,} lines); longest loop stall {longest * 1000:,.0f} ms"
    )


async def _measure_text_messages(connections: int = 200) -> None:
    buffer = _capture()

    async with wsframed.serve(_recv_one, "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        for _ in range(connections):
            async with connect(f"ws://127.0.0.1:{server.port}") as ws:
                await ws.send("hello")
                with contextlib.suppress(WsConnectionClosed):
                    await ws.recv()
        await asyncio.sleep(0.2)
    text = buffer.getvalue()
    print(
        f"serve(), {connections} connections each sending one text message: "
        f"{len(text.encode()):,} log bytes ({text.count(chr(10)):,} lines)"
    )


async def _recv_one(framed: Framed[Any]) -> None:
    await framed.recv()  # lets the ProtocolError of a text message escape


async def _measure() -> None:
    await _measure_rpc("malformed (1 MiB of \\x01)", b"\x01" * MiB)
    note = msgpack.packb([2, "nope", []])
    await _measure_rpc("unknown notifications", note * (MiB // len(note)))
    request = msgpack.packb([0, 1, "fail", []])
    await _measure_rpc("requests to a failing handler", request * (MiB // len(request)))
    await _measure_text_messages()


if __name__ == "__main__":
    asyncio.run(_measure())


# Values from the peer are shown in brief, whatever their depth or size ----------------


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


async def test_deep_or_huge_values_are_answered_and_logged_in_brief(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """repr() of a 1,020-deep array raises RecursionError: it must not kill the reader."""
    caplog.set_level(logging.DEBUG, logger="wsframed")
    deep = nested(1020)
    async with framed_pair("ws", MsgpackCodec()) as (raw, b), RpcPeer(b) as server:
        server.register("echo", lambda x: x)
        async with asyncio.timeout(10):
            await raw.send_all(
                [
                    [0, 5, "echo", {"x": deep}],  # params not an array
                    [2, deep, []],  # a method that is not a string
                    [1, 2**63, None, None],  # a response nobody waits for
                    [0, 6, "echo", ["alive"]],
                ]
            )
            assert await raw.recv() == [
                1,
                5,
                "InvalidRequest: params must be an array, not {'x': [[[...]]]}",
                None,
            ]
            assert await raw.recv() == [1, 6, None, "alive"]
    assert rpc_records(caplog) == [
        (
            logging.WARNING,
            "malformed msgpack-RPC message from the peer (params must be an array, not "
            "{'x': [[[...]]]}): [0, 5, 'echo', {'x': [[...]]}]",
            False,
        ),
        (
            logging.WARNING,
            "malformed msgpack-RPC message from the peer (the method must be a string, not "
            "[[[[...]]]]): [2, [[[...]]], []]",
            False,
        ),
        (
            logging.DEBUG,
            "dropped the response to msgid 9223372036854775808: no call waits for it",
            False,
        ),
    ]


async def test_a_deeply_nested_error_from_the_peer_is_still_a_remote_error() -> None:
    async with (
        framed_pair("ws", MsgpackCodec()) as (a, raw),
        RpcPeer(a) as client,
        asyncio.timeout(10),
    ):
        call = asyncio.create_task(client.call("m"))
        assert await raw.recv() == [0, 0, "m", []]
        await raw.send([1, 0, nested(1020), None])
        with pytest.raises(RemoteError) as failed:
            await call
        assert str(failed.value) == "'m' failed on the peer: [[[[...]]]]"
