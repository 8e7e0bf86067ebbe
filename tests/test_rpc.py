"""wsframed.rpc: RpcPeer over real loopback sockets (websockets and asyncio TCP)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest

from wsframed import ClosedStreamError, ConnectionClosed, Framed, WsStream
from wsframed.codecs import CborCodec, MsgpackCodec
from wsframed.rpc import LOG_FIRST, RemoteError, RpcPeer

from .conftest import framed_pair, tcp_pair, wait_for, ws_pair

pytestmark = pytest.mark.timeout(30)

TRANSPORTS = ["ws", "tcp", "memory"]  # memory: wsframed.testing, no socket
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@asynccontextmanager
async def rpc_pair(
    transport: str = "ws", codec: Any = None, **server_options: Any
) -> AsyncIterator[tuple[RpcPeer, RpcPeer]]:
    """Yield two running RpcPeers (client, server) connected over ``transport``."""
    async with (
        framed_pair(transport, codec or MsgpackCodec()) as (client, server),
        RpcPeer(client) as client_peer,
        RpcPeer(server, **server_options) as server_peer,
    ):
        yield client_peer, server_peer


def add_math(peer: RpcPeer) -> None:
    @peer.method
    def add(a: int, b: int) -> int:
        return a + b

    @peer.method("echo")
    async def echo_async(value: Any) -> Any:
        return value

    def fail(message: str) -> None:
        raise ValueError(message)

    peer.register("fail", fail)


# Calls -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sync_and_async_handlers_answer_calls(transport: str) -> None:
    async with rpc_pair(transport) as (client, server), asyncio.timeout(10):
        add_math(server)
        assert await client.call("add", 2, 3) == 5
        assert await client.call("echo", {"k": [1, "x", b"b"]}) == {"k": [1, "x", b"b"]}
        assert await client.call("echo", None) is None
        assert client.in_flight == 0


async def test_handlers_mapping_and_decorator_forms() -> None:
    async with framed_pair("memory", MsgpackCodec()) as (a, b):
        server = RpcPeer(b, handlers={"neg": lambda x: -x})

        @server.method()
        def twice(x: int) -> int:
            return 2 * x

        decorated = server.method("thrice")(lambda x: 3 * x)
        assert decorated(1) == 3  # the function is returned unchanged
        async with RpcPeer(a) as client, server, asyncio.timeout(10):
            assert [
                await client.call("neg", 4),
                await client.call("twice", 4),
                await client.call("thrice", 4),
            ] == [-4, 8, 12]
        with pytest.raises(TypeError):
            server.register("bad", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_concurrency"):
        RpcPeer(a, max_concurrency=0)


async def test_call_starts_the_loop_and_json_lines_carry_rpc_too() -> None:
    from wsframed.codecs import JsonLinesCodec

    async with framed_pair("memory", JsonLinesCodec()) as (a, b), RpcPeer(b) as server:
        add_math(server)
        client = RpcPeer(a)  # neither entered nor served: call() starts the loop
        async with asyncio.timeout(10):
            assert await client.call("add", 1, 2) == 3
            with pytest.raises(RemoteError, match="nope"):
                await client.call("fail", "nope")
            await client.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_10k_pipelined_calls_with_200_in_flight_all_answered(transport: str) -> None:
    async with rpc_pair(transport, max_concurrency=256) as (client, server):
        rng = random.Random(7)

        @server.method
        async def work(i: int, text: str) -> list[Any]:
            for _ in range(i % 3):  # finish out of order
                await asyncio.sleep(0)
            return [i * 2, text.upper()]

        @server.method
        def quick(i: int) -> int:
            return -i

        peak = 0
        queue = list(range(10_000))
        rng.shuffle(queue)

        async def worker() -> None:
            nonlocal peak
            while queue:
                i = queue.pop()
                peak = max(peak, client.in_flight + 1)
                if i % 2:
                    assert await client.call("work", i, f"v{i}") == [i * 2, f"V{i}"]
                else:
                    assert await client.call("quick", i) == -i

        async with asyncio.timeout(20):
            await asyncio.gather(*(worker() for _ in range(200)))
        assert not queue
        assert peak == 200
        assert client.in_flight == 0


async def test_responses_are_matched_out_of_order() -> None:
    async with rpc_pair() as (client, server), asyncio.timeout(10):
        gates = {name: asyncio.Event() for name in "abc"}

        @server.method
        async def wait(name: str) -> str:
            await gates[name].wait()
            return name

        calls = {name: asyncio.create_task(client.call("wait", name)) for name in "abc"}
        done = []
        for name in "cab":
            await asyncio.sleep(0.01)
            gates[name].set()
            done.append(await calls[name])
        assert done == ["c", "a", "b"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_calls_in_both_directions_at_once(transport: str) -> None:
    async with rpc_pair(transport) as (client, server), asyncio.timeout(15):
        client.register("side", lambda i: f"client {i}")
        server.register("side", lambda i: f"server {i}")

        @server.method
        async def ask_client(i: int) -> str:
            # A nested call back into the caller while its call is in flight.
            return "via server: " + await server.call("side", i)

        async def calls(peer: RpcPeer, method: str, expect: str) -> None:
            results = await asyncio.gather(*(peer.call(method, i) for i in range(500)))
            assert results == [expect.format(i) for i in range(500)]

        await asyncio.gather(
            calls(client, "side", "server {}"),
            calls(server, "side", "client {}"),
            calls(client, "ask_client", "via server: client {}"),
        )


async def test_msgid_wraps_around_and_skips_ids_in_flight() -> None:
    async with framed_pair("memory", MsgpackCodec()) as (a, raw), RpcPeer(a) as client:
        seen: list[int] = []

        async def answer(count: int, hold_first: bool) -> list[Any]:
            held = []
            for _ in range(count):
                request = await raw.recv()
                seen.append(request[1])
                if hold_first and not held:
                    held.append(request)
                else:
                    await raw.send([1, request[1], None, request[1]])
            return held

        async with asyncio.timeout(10):
            client._next_msgid = 0xFFFF_FFFE
            first = asyncio.create_task(client.call("held"))
            answering = asyncio.create_task(answer(3, hold_first=True))
            await wait_for(lambda: client.in_flight == 1)
            assert await client.call("x") == 0xFFFF_FFFF
            assert await client.call("x") == 0
            held = await answering
            client._next_msgid = 0xFFFF_FFFE  # as if the ids had wrapped all the way round
            answering = asyncio.create_task(answer(1, hold_first=False))
            assert await client.call("x") == 0xFFFF_FFFF  # 0xFFFFFFFE is still in flight
            await answering
            await raw.send([1, held[0][1], None, "late but fine"])
            assert await first == "late but fine"
        assert seen == [0xFFFF_FFFE, 0xFFFF_FFFF, 0, 0xFFFF_FFFF]


# Notifications ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_notifications_are_delivered_in_order(transport: str) -> None:
    async with rpc_pair(transport) as (client, server), asyncio.timeout(10):
        got_sync: list[int] = []
        got_async: list[int] = []
        server.register("note", got_sync.append)

        @server.method
        async def anote(i: int) -> None:
            got_async.append(i)  # handlers start in arrival order
            await asyncio.sleep(0)

        for i in range(1000):
            await client.notify("note", i)
            await client.notify("anote", i)
        server.register("sync_point", lambda: len(got_sync))
        assert await client.call("sync_point") == 1000
        assert got_sync == list(range(1000))
        assert got_async == list(range(1000))


# Errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_handler_exception_becomes_remote_error(transport: str) -> None:
    async with rpc_pair(transport) as (client, server), asyncio.timeout(10):
        add_math(server)

        @server.method
        async def custom() -> None:
            raise RemoteError([7, "custom failure"])  # sent unchanged

        with pytest.raises(RemoteError) as info:
            await client.call("fail", "bad value 42")
        error = info.value
        assert "bad value 42" in str(error)
        assert "'fail'" in str(error)
        assert error.error == "ValueError: bad value 42"
        assert error.type_name == "ValueError"
        assert error.method == "fail"
        with pytest.raises(RemoteError) as info:
            await client.call("custom")
        assert info.value.error == [7, "custom failure"]
        assert info.value.message == "custom failure"
        with pytest.raises(RemoteError, match="TypeError"):
            await client.call("add", 1)  # wrong number of params
        assert await client.call("add", 1, 1) == 2  # the loop goes on


async def test_unknown_method_gets_an_error_response() -> None:
    async with rpc_pair() as (client, _server), asyncio.timeout(10):
        with pytest.raises(RemoteError) as info:
            await client.call("no_such_method", 1)
        assert info.value.type_name == "NoMethodError"
        assert "no_such_method" in str(info.value)


async def test_unencodable_result_becomes_an_error_response() -> None:
    async with rpc_pair() as (client, server), asyncio.timeout(10):
        server.register("weird", lambda: object())
        with pytest.raises(RemoteError, match="cannot encode the result"):
            await client.call("weird")
        with pytest.raises(TypeError):
            await client.call("echo", object())  # nothing sent, the peer stays usable
        server.register("echo", lambda x: x)
        assert await client.call("echo", 5) == 5


async def test_timeout_raises_forgets_the_call_and_drops_the_late_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="wsframed.rpc")
    async with rpc_pair() as (client, server), asyncio.timeout(10):
        answered = asyncio.Event()

        @server.method
        async def slow(delay: float) -> str:
            await asyncio.sleep(delay)
            answered.set()
            return "late"

        with pytest.raises(TimeoutError, match=r"no response to 'slow' \(msgid \d+\) within"):
            await client.call("slow", 0.2, timeout=0.05)
        assert client.in_flight == 0
        await answered.wait()
        server.register("ok", lambda: "ok")
        assert await client.call("ok") == "ok"  # the late response was dropped on the way
        assert any("dropped the response" in r.getMessage() for r in caplog.records)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    async with (
        framed_pair("memory", MsgpackCodec()) as (a, b),
        RpcPeer(a, request_timeout=0.05) as client,
        RpcPeer(b) as server,
    ):
        server.register("slow", asyncio.sleep)
        with pytest.raises(TimeoutError):
            await client.call("slow", 1)
        assert await client.call("slow", 0, timeout=5) is None  # per-call override


async def test_malformed_messages_are_logged_answered_and_survived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="wsframed.rpc")
    async with framed_pair("memory", MsgpackCodec()) as (raw, b), RpcPeer(b) as server:
        server.register("echo", lambda x: x)
        server.register("note", lambda *args: None)
        malformed: list[Any] = [
            "not an array",
            {"map": 1},
            [],
            [True, 1, "echo", [1]],  # a bool is not a type code
            [0],
            [0, "id", "echo", [1]],  # no usable msgid: logged only
            [0, 2**32, "echo", [1]],
            [9, 3, "echo", [1]],  # unknown type code: never answered
            [1, "zz", None, None],
            [2, "note"],
            [2, 5, []],
        ]
        answered: list[Any] = [
            [0, 10, "echo"],  # wrong length, usable msgid
            [0, 11, 123, [1]],  # method not a string
            [0, 12, "echo", {"x": 1}],  # params not an array
            [0, 13, "echo", "x"],
        ]
        async with asyncio.timeout(10):
            await raw.send_all([*malformed, *answered, [0, 14, "echo", ["alive"]]])
            replies = [await raw.recv() for _ in range(len(answered) + 1)]
        assert [reply[1] for reply in replies] == [10, 11, 12, 13, 14]
        for reply in replies[:-1]:
            assert reply[0] == 1
            assert reply[3] is None
            assert reply[2].startswith("InvalidRequest: ")
        assert replies[-1] == [1, 14, None, "alive"]
        warnings = [r for r in caplog.records if r.name == "wsframed.rpc"]
        assert len(warnings) == LOG_FIRST  # 15 malformed: the first 10 logged, then counted
        assert all("malformed msgpack-RPC message" in r.getMessage() for r in warnings)
        assert f"{malformed[0]!r}" in warnings[0].getMessage()
        caplog.clear()
    # ... and counted once, when the connection ends
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "wsframed.rpc"] == [
        (
            logging.WARNING,
            "15 malformed messages from the peer on this connection; 5 of them were not logged",
        )
    ]


async def test_undecodable_bytes_fail_pending_calls_with_connection_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with framed_pair("tcp", MsgpackCodec()) as (a, raw), RpcPeer(a) as client:
        call = asyncio.create_task(client.call("anything"))
        async with asyncio.timeout(10):
            await raw.recv()
            raw._io.write(b"\xc1")  # a byte msgpack never uses
            await raw.flush()
            with pytest.raises(ConnectionClosed, match="DecodeError"):
                await call
            with pytest.raises(ConnectionClosed):
                await client.call("again")
    assert any("connection failed" in r.getMessage() for r in caplog.records)


# Losing the connection -------------------------------------------------------------


async def test_transport_abort_fails_pending_calls_with_connection_closed() -> None:
    async with ws_pair() as (client_ws, server_ws):
        client = RpcPeer(Framed(WsStream(client_ws), MsgpackCodec()))
        server = RpcPeer(Framed(WsStream(server_ws), MsgpackCodec()))
        started = asyncio.Event()

        @server.method
        async def hang() -> None:
            started.set()
            await asyncio.sleep(60)

        async with client, server, asyncio.timeout(10):
            calls = [asyncio.create_task(client.call("hang")) for _ in range(20)]
            await started.wait()
            server_ws.transport.abort()
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, ConnectionClosed) for r in results), results
            assert results[0].code == 1006
            with pytest.raises(ConnectionClosed):
                await client.call("hang")
            assert client.in_flight == 0


async def test_tcp_reset_fails_pending_calls_with_connection_closed() -> None:
    async with tcp_pair() as (client_streams, server_streams):
        client = RpcPeer(Framed.from_streams(*client_streams, MsgpackCodec()))
        async with client, asyncio.timeout(10):
            calls = [asyncio.create_task(client.call("x", i)) for i in range(5)]
            await Framed.from_streams(*server_streams, MsgpackCodec()).recv()
            server_streams[1].transport.abort()
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, ConnectionClosed) for r in results), results


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_clean_close_by_the_peer_fails_pending_calls(transport: str) -> None:
    async with rpc_pair(transport) as (client, server), asyncio.timeout(10):
        started = asyncio.Event()
        cancelled = asyncio.Event()

        @server.method
        async def hang() -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            finally:
                cancelled.set()

        call = asyncio.create_task(client.call("hang"))
        await started.wait()
        await server.aclose()
        assert cancelled.is_set()  # aclose() cancels running handlers
        with pytest.raises(ConnectionClosed, match="the peer ended the connection") as info:
            await call
        assert info.value.code in (1000, 1005)
        with pytest.raises(ClosedStreamError):
            await server.call("anything")


async def test_serve_returns_when_the_peer_goes_and_its_calls_fail() -> None:
    async with framed_pair("memory", MsgpackCodec()) as (a, b):
        server = RpcPeer(b)
        client = RpcPeer(a)
        client.register("block", lambda: asyncio.sleep(60))
        serving = asyncio.create_task(server.serve())
        async with asyncio.timeout(10):
            await client.__aenter__()
            server_call = asyncio.create_task(server.call("block"))
            await asyncio.sleep(0.05)
            await client.aclose()
            await client.aclose()  # idempotent
            await serving  # returned normally
            with pytest.raises(ConnectionClosed):
                await server_call


async def test_aclose_fails_own_pending_calls_with_closed_stream_error() -> None:
    async with rpc_pair() as (client, server), asyncio.timeout(10):
        server.register("block", lambda: asyncio.sleep(60))
        call = asyncio.create_task(client.call("block"))
        await asyncio.sleep(0.05)
        await client.aclose()
        with pytest.raises(ClosedStreamError):
            await call
        with pytest.raises(ClosedStreamError):
            await client.notify("x")


# Concurrency and backpressure ------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_max_concurrency_bounds_running_handlers(transport: str) -> None:
    async with rpc_pair(transport, max_concurrency=4) as (client, server):
        running = peak = 0

        @server.method
        async def work(i: int) -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.002)
            running -= 1
            return i

        server.register("sync", lambda i: i)  # sync handlers count too, while they run
        async with asyncio.timeout(15):
            results = await asyncio.gather(
                *(client.call("work" if i % 4 else "sync", i) for i in range(300))
            )
        assert results == list(range(300))
        assert peak == 4


async def test_reader_stops_reading_at_the_limit_so_the_sender_blocks() -> None:
    async with rpc_pair("tcp", max_concurrency=1) as (client, server):
        gate = asyncio.Event()
        received = 0

        @server.method
        async def block() -> None:
            await gate.wait()

        @server.method
        def sink(data: bytes) -> None:
            nonlocal received
            received += 1

        chunk = b"x" * 65_000
        sent = 0

        async def flood() -> None:
            nonlocal sent
            for _ in range(500):  # 32 MB: far more than the socket buffers hold
                await client.notify("sink", chunk)
                sent += 1

        async with asyncio.timeout(20):
            blocked = asyncio.create_task(client.call("block"))
            flooding = asyncio.create_task(flood())
            await asyncio.sleep(0.5)
            assert not flooding.done()  # held up by backpressure
            assert received == 0
            assert sent < 500
            assert len(asyncio.all_tasks()) < 20  # no task per queued request
            gate.set()
            await blocked
            await flooding
            server.register("count", lambda: received)
            assert await client.call("count") == 500


async def test_queue_full_while_waiting_on_the_peer_refuses_instead_of_blocking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with rpc_pair("ws", max_concurrency=1) as (client, server), asyncio.timeout(10):
        gate = asyncio.Event()
        in_gate = asyncio.Event()

        @client.method
        async def wait_gate() -> str:
            in_gate.set()
            await gate.wait()
            return "opened"

        @server.method
        async def hold() -> str:
            return await server.call("wait_gate")  # the server now waits on the client

        server.register("quick", lambda i: i)
        holding = asyncio.create_task(client.call("hold"))
        await in_gate.wait()
        quick = asyncio.gather(
            *(client.call("quick", i) for i in range(30)), return_exceptions=True
        )
        await wait_for(lambda: len(server._backlog) == 16)
        gate.set()
        assert await holding == "opened"
        results = await quick
        assert results[:16] == list(range(16))  # queued (16 x max_concurrency), then run
        for refused in results[16:]:
            assert isinstance(refused, RemoteError)
            assert refused.type_name == "BusyError"
        assert sum("refused request" in r.getMessage() for r in caplog.records) == LOG_FIRST
    summary = "14 requests refused with BusyError on this connection; 4 of them were not logged"
    assert [r.getMessage() for r in caplog.records].count(summary) == 1


# Interoperability ------------------------------------------------------------------


async def test_wire_conformance_against_plain_msgpack_rpc_peers_over_tcp() -> None:
    # A plain msgpack-RPC server: raw msgpack over asyncio streams, no wsframed.
    async with tcp_pair() as ((reader, writer), (srv_reader, srv_writer)):
        client = RpcPeer(Framed.from_streams(reader, writer, MsgpackCodec()))

        async def plain_server() -> list[Any]:
            unpacker = msgpack.Unpacker()
            requests: list[Any] = []
            while len(requests) < 4:
                unpacker.feed(await srv_reader.read(4096))
                requests.extend(unpacker)
            errors = {
                "text": "plain string error",
                "neovim": [0, "neovim style"],
                "map": {"type": "Oops", "message": "in a map"},
            }
            for msgid, method, params in reversed([r[1:] for r in requests]):  # reverse order
                if method in errors:
                    srv_writer.write(msgpack.packb([1, msgid, errors[method], None]))
                else:
                    srv_writer.write(msgpack.packb([1, msgid, None, sum(params)]))
            await srv_writer.drain()
            return requests

        async with client, asyncio.timeout(10):
            server_task = asyncio.create_task(plain_server())
            results = await asyncio.gather(
                client.call("sum", 1, 2, 3),
                client.call("text"),
                client.call("neovim"),
                client.call("map"),
                return_exceptions=True,
            )
            requests = await server_task
        assert requests == [
            [0, 0, "sum", [1, 2, 3]],
            [0, 1, "text", []],
            [0, 2, "neovim", []],
            [0, 3, "map", []],
        ]
        assert results[0] == 6
        assert [type(r) for r in results[1:]] == [RemoteError] * 3
        messages = [r.message for r in results[1:]]
        assert messages == ["plain string error", "neovim style", "in a map"]
        assert results[3].type_name == "Oops"
        assert "plain string error" in str(results[1])

    # A plain msgpack-RPC client calling an RpcPeer server, which calls it back.
    async with tcp_pair() as ((reader, writer), (srv_reader, srv_writer)):
        server = RpcPeer(Framed.from_streams(srv_reader, srv_writer, MsgpackCodec()))
        notes: list[Any] = []
        server.register("add", lambda a, b: a + b)
        server.register("note", notes.append)

        @server.method
        async def ask_back() -> str:
            return "client says " + await server.call("whoami")

        async with server, asyncio.timeout(10):
            unpacker = msgpack.Unpacker()

            async def next_message() -> Any:
                while True:
                    for message in unpacker:
                        return message
                    unpacker.feed(await reader.read(4096))

            writer.write(msgpack.packb([2, "note", ["first"]]))
            writer.write(msgpack.packb([0, 100, "add", [2, 3]]))
            writer.write(msgpack.packb([0, 101, b"add", [4, 5]]))  # a raw-bytes method name
            writer.write(msgpack.packb([0, 102, "missing", []]))
            writer.write(msgpack.packb([0, 103, "ask_back", []]))
            await writer.drain()
            assert await next_message() == [1, 100, None, 5]
            assert await next_message() == [1, 101, None, 9]
            missing = "NoMethodError: no method named 'missing'"
            assert await next_message() == [1, 102, missing, None]
            callback = await next_message()
            assert callback[0] == 0
            assert callback[2:] == ["whoami", []]
            writer.write(msgpack.packb([1, callback[1], None, "raw"]))
            await writer.drain()
            assert await next_message() == [1, 103, None, "client says raw"]
            assert notes == ["first"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cbor_codec_carries_rpc_too(transport: str) -> None:
    async with rpc_pair(transport, CborCodec()) as (client, server), asyncio.timeout(10):
        add_math(server)
        notes: list[Any] = []
        server.register("note", notes.append)
        assert await client.call("add", 20, 22) == 42
        value = {"a": [1.5, None, b"\x00"]}
        assert await client.call("echo", value) == value
        with pytest.raises(RemoteError, match="boom"):
            await client.call("fail", "boom")
        await client.notify("note", "n")
        results = await asyncio.gather(*(client.call("add", i, i) for i in range(200)))
        assert results == [2 * i for i in range(200)]
        assert notes == ["n"]


# Examples and docs ------------------------------------------------------------------


def _run_example(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


EXPECTED_CLIENT_OUTPUT = [
    "add(1, 2) = 3",
    "5 calls in flight: [0, 2, 4, 6, 8]",
    "greet() = hello, rpc_client.py",
    "error: 'divide' failed on the peer: ZeroDivisionError: division by zero",
]


def _check_client_output(stdout: str) -> None:
    lines = stdout.splitlines()
    for line in EXPECTED_CLIENT_OUTPUT:
        assert line in lines, stdout
    assert any(re.fullmatch(r"timeout: no response to 'slow_echo' .* 0\.1 s", x) for x in lines)


@pytest.mark.parametrize("script", ["rpc_client.py", "rpc_server.py"])
def test_examples_run_self_contained(script: str) -> None:
    result = _run_example(str(EXAMPLES / script))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    _check_client_output(result.stdout)
    assert "server log: client done" in result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_example_server_and_client_in_two_processes() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "rpc_server.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        port = re.search(r"ws://127\.0\.0\.1:(\d+)", banner)
        assert port, banner
        client = _run_example(str(EXAMPLES / "rpc_client.py"), "--port", port[1])
        assert client.returncode == 0, client.stderr
        _check_client_output(client.stdout)
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=10)
        assert server.returncode == 0, err
        assert err == ""
        assert "server log: client done" in out
        assert out.rstrip().endswith("stopped")
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def test_benchmark_runs_and_prints_its_table() -> None:
    script = ROOT / "benchmarks" / "bench_rpc.py"
    result = _run_example(str(script), "--quick", "--in-process", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "| RpcPeer.call, sequential" in result.stdout
    assert "| RpcPeer.call, pipelined" in result.stdout
    assert f"websockets {__import__('websockets').__version__}" in result.stdout


def test_docs_include_the_tested_client_example() -> None:
    docs = (ROOT / "docs" / "rpc.md").read_text()
    for path, section in (("rpc_client.py", "example"), ("rpc_server.py", "server")):
        assert f'--8<-- "examples/{path}:{section}"' in docs
        source = (EXAMPLES / path).read_text()
        assert f"# --8<-- [start:{section}]" in source
        assert f"# --8<-- [end:{section}]" in source


async def test_docs_tcp_example_calls_a_plain_msgpack_rpc_server() -> None:
    docs = (ROOT / "docs" / "rpc.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", docs, re.S)
    (source,) = [block for block in blocks if "async def call_tcp_server" in block]
    namespace: dict[str, Any] = {}
    exec(compile(source, "docs/rpc.md", "exec"), namespace)

    async def plain_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker()
        while data := await reader.read(4096):
            unpacker.feed(data)
            for _, msgid, _method, params in unpacker:
                writer.write(msgpack.packb([1, msgid, None, sum(params)]))
        writer.close()

    server = await asyncio.start_server(plain_server, "127.0.0.1", 0)
    async with server, asyncio.timeout(10):
        port = server.sockets[0].getsockname()[1]
        assert await namespace["call_tcp_server"]("127.0.0.1", port) == 6


async def test_handlers_cancelled_before_they_start_leave_no_unawaited_coroutine() -> None:
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with framed_pair("tcp", MsgpackCodec()) as (raw, b):
            server = RpcPeer(b)
            started = 0

            @server.method
            async def work(i: int) -> int:
                nonlocal started
                started += 1
                if started == 1:
                    await server.aclose()  # the other 49 tasks are made but not started
                return i

            # Requests then end of stream in one read: the handler tasks are made in one
            # dispatch pass; the first to run closes the peer, which cancels the other
            # 49 before they ever run (their coroutines must be closed, not leaked).
            await raw.send_all([[0, i, "work", [i]] for i in range(50)])
            await raw.send_eof()
            reader = b.stream[0]  # the server side's asyncio StreamReader
            await wait_for(lambda: reader._eof)  # every byte and the end are buffered
            async with asyncio.timeout(10):
                await server.serve()
            gc.collect()
    assert started == 1
    assert not [w for w in caught if "never awaited" in str(w.message)]
