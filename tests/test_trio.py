"""wsframed.trio: connect() and serve() under trio.run, over real loopback sockets.

The stream's behaviours under trio are in test_stream_families.py (the same bodies as
under asyncio); these run the trio entry points themselves, in plain ``trio.run``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from websockets.exceptions import InvalidStatus
from websockets.trio.client import connect as ws_connect

import wsframed.trio
from wsframed import ConnectionClosed, EndOfStream, Framed, WsStream
from wsframed.codecs import LinesCodec, MsgpackCodec

pytestmark = pytest.mark.timeout(60)


def _port(server: Any) -> int:
    port: int = server.listeners[0].socket.getsockname()[1]
    return port


def serving(
    handler: Any, test: Callable[[int], Awaitable[None]], codec: Any = None, **options: Any
) -> None:
    """trio.run a server with ``handler`` and ``test(port)`` against it; stop the server."""

    async def main() -> None:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    lambda task_status: wsframed.trio.serve(
                        handler,
                        "127.0.0.1",
                        0,
                        codec or MsgpackCodec(),
                        task_status=task_status,
                        **options,
                    )
                )
                await test(_port(server))
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_connect_and_serve_echo_msgpack() -> None:
    async def echo(framed: Framed[Any]) -> None:
        async for item in framed:
            await framed.send(item)

    async def test(port: int) -> None:
        async with wsframed.trio.connect(f"ws://127.0.0.1:{port}", MsgpackCodec()) as framed:
            items = [{"n": i, "data": b"x" * i} for i in range(100)]
            await framed.send_all(items)
            assert [await framed.recv() for _ in range(100)] == items
            stream = framed.stream
            assert isinstance(stream, WsStream)
        assert stream.close_code == 1000
        assert stream.is_closing()

    serving(echo, test)


def test_a_handler_that_returns_closes_with_1000_after_its_frames() -> None:
    async def handler(framed: Framed[Any]) -> None:
        for i in range(3):
            await framed.send(f"line {i}")

    async def test(port: int) -> None:
        async with wsframed.trio.connect(f"ws://127.0.0.1:{port}", LinesCodec()) as framed:
            assert [line async for line in framed] == ["line 0", "line 1", "line 2"]
            assert framed.close_code == 1000
            with pytest.raises(EndOfStream):
                await framed.recv()

    serving(handler, test, LinesCodec())


def test_a_handler_failure_closes_with_1011_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(framed: Framed[Any]) -> None:
        await framed.recv()
        raise RuntimeError("handler bug")

    def records() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "wsframed.server"]

    async def test(port: int) -> None:
        async with ws_connect(f"ws://127.0.0.1:{port}") as connection:
            stream = WsStream(connection)
            await stream.send(b"\x01")  # msgpack 1
            with pytest.raises(ConnectionClosed) as info:
                await stream.read()
            assert (info.value.code, info.value.reason) == (1011, "internal error")
        with trio.fail_after(5):
            while not records():
                await trio.sleep(0.01)

    with caplog.at_level(logging.INFO, logger="wsframed.server"):
        serving(handler, test)
    [record] = records()
    assert record.getMessage() == (
        f"connection handler failed (peer {record.args[0]}); "  # type: ignore[index]
        "closed with 1011 (internal error)"
    )
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "handler bug"


def test_routes_and_unknown_paths() -> None:
    async def one(framed: Framed[Any]) -> None:
        await framed.send("one")

    async def two(framed: Framed[Any]) -> None:
        await framed.send("two")

    async def test(port: int) -> None:
        for path in ("one", "two"):
            url = f"ws://127.0.0.1:{port}/{path}"
            async with wsframed.trio.connect(url, LinesCodec()) as framed:
                assert await framed.recv() == path
        with pytest.raises(InvalidStatus) as info:
            async with wsframed.trio.connect(f"ws://127.0.0.1:{port}/three", LinesCodec()):
                pass
        assert info.value.response.status_code == 404

    serving({"/one": one, "/two": two}, test, LinesCodec())


def test_leaving_connect_by_an_exception_closes_with_1011() -> None:
    seen: list[tuple[int | None, str | None]] = []

    async def handler(framed: Framed[Any]) -> None:
        try:
            await framed.recv()
        except ConnectionClosed as exc:
            seen.append((exc.code, exc.reason))

    async def test(port: int) -> None:
        with pytest.raises(ValueError, match="client bug"):
            async with wsframed.trio.connect(f"ws://127.0.0.1:{port}", MsgpackCodec()):
                raise ValueError("client bug")
        with trio.fail_after(5):
            while not seen:
                await trio.sleep(0.01)

    serving(handler, test)
    assert seen == [(1011, "")]


def test_a_cancel_scope_around_connect_loses_no_frame_sent_and_leaves_no_task() -> None:
    """The scope cancels the connection's own tasks too (websockets.trio runs them in
    a nursery inside the block): every frame sent arrives, then the peer sees the
    connection dropped (1006); trio.run returning proves no task was left behind."""
    results: list[Any] = []

    async def handler(framed: Framed[Any]) -> None:
        results.append(await framed.recv())
        try:
            await framed.recv()
        except ConnectionClosed as exc:
            results.append(exc.code)

    async def test(port: int) -> None:
        with trio.move_on_after(0.2) as scope:
            async with wsframed.trio.connect(f"ws://127.0.0.1:{port}", MsgpackCodec()) as f:
                await f.send("sent before the cancellation")
                await trio.sleep_forever()
        assert scope.cancelled_caught
        with trio.fail_after(5):
            while len(results) < 2:
                await trio.sleep(0.01)

    serving(handler, test)
    assert results == ["sent before the cancellation", 1006]


def test_the_handler_sees_the_request() -> None:
    """framed.request in a wsframed.trio.serve handler: the target split at the ``?``,
    every value of a repeated header, the client's address, the subprotocol chosen."""
    seen: list[Any] = []

    async def handler(framed: Framed[Any]) -> None:
        request = framed.request
        assert request is not None
        seen.append(
            (
                request.target,
                request.path,
                request.query,
                request.headers.get_all("X-Token"),
                request.remote_address,
                request.subprotocol,
            )
        )
        await framed.send("seen")

    async def test(port: int) -> None:
        target = "/room/a%20b?x=1&x=2&y="
        async with wsframed.trio.connect(
            f"ws://127.0.0.1:{port}{target}",
            LinesCodec(),
            additional_headers=[("X-Token", "t1"), ("X-Token", "t2")],
            subprotocols=["chat"],
        ) as framed:
            assert await framed.recv() == "seen"
            assert framed.request is None  # a client's Framed has none
            local = framed.stream.get_extra_info("sockname")
        assert seen == [
            (target, "/room/a%20b", "x=1&x=2&y=", ["t1", "t2"], local, "chat"),
        ]

    serving(handler, test, LinesCodec(), subprotocols=["chat"])


def _numbered_server(codes: list[int | None]) -> Callable[[Framed[Any]], Awaitable[None]]:
    """A handler that greets connection n with "hello n"; the first one then ends
    (1000), the others wait for the client and record the close code it sent."""

    async def handler(framed: Framed[Any]) -> None:
        codes.append(None)
        number = len(codes)
        await framed.send(f"hello {number}")
        if number == 1:
            return
        try:
            await framed.recv()
        except ConnectionClosed as exc:
            codes[number - 1] = exc.code
        except EndOfStream:
            codes[number - 1] = framed.close_code

    return handler


async def _until(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        while not predicate():
            await trio.sleep(0.01)


def test_reconnecting_connects_again_and_break_closes_the_connection_in_use() -> None:
    codes: list[int | None] = []
    got: list[str] = []

    async def test(port: int) -> None:
        url = f"ws://127.0.0.1:{port}"
        async with wsframed.trio.reconnecting(url, LinesCodec()) as connections:
            async for framed in connections:
                got.append(await framed.recv())
                if len(got) == 1:
                    with pytest.raises(EndOfStream):
                        await framed.recv()  # the server ended this one: go round
                    continue
                break
        await _until(lambda: codes[-1] is not None)

    serving(_numbered_server(codes), test, LinesCodec())
    assert got == ["hello 1", "hello 2"]
    assert codes == [None, 1000]  # the first ended by the server, the second by break


def test_reconnecting_left_by_an_exception_or_a_cancellation_closes_what_it_holds() -> None:
    codes: list[int | None] = [None]  # the handler's connections are numbered from 2

    async def test(port: int) -> None:
        url = f"ws://127.0.0.1:{port}"

        async def fail() -> None:
            async with wsframed.trio.reconnecting(url, LinesCodec()) as connections:
                async for framed in connections:
                    assert await framed.recv() == "hello 2"
                    raise ValueError("client bug")

        with pytest.raises(ValueError, match="client bug") as info:
            await fail()
        assert type(info.value) is ValueError  # as raised, not in an ExceptionGroup
        await _until(lambda: codes[-1] is not None)
        # A cancel scope around the block cancels the connection's own tasks too, as
        # around connect(): the peer sees the connection dropped, and nothing is left.
        with trio.move_on_after(0.3) as scope:
            async with wsframed.trio.reconnecting(url, LinesCodec()) as connections:
                async for framed in connections:
                    assert await framed.recv() == "hello 3"
                    await trio.sleep_forever()
        assert scope.cancelled_caught
        await _until(lambda: len(codes) == 3 and codes[-1] is not None)

    serving(_numbered_server(codes), test, LinesCodec())
    assert codes == [None, 1011, 1006]


def test_reconnecting_retries_until_the_server_listens() -> None:
    import itertools
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    codes: list[int | None] = []

    async def main() -> None:
        got: list[str] = []

        async def client() -> None:
            url = f"ws://127.0.0.1:{port}"
            async with wsframed.trio.reconnecting(
                url, LinesCodec(), reconnect_delays=lambda: itertools.repeat(0.05)
            ) as connections:
                async for framed in connections:
                    got.append(await framed.recv())
                    break

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client)
                await trio.sleep(0.3)  # refused meanwhile, and retried
                assert got == []
                await nursery.start(
                    lambda task_status: wsframed.trio.serve(
                        _numbered_server(codes),
                        "127.0.0.1",
                        port,
                        LinesCodec(),
                        task_status=task_status,
                    )
                )
                await _until(lambda: got == ["hello 1"])
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_bare_async_for_over_connect_says_what_to_use() -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match=r"wsframed\.trio\.reconnecting\(uri, codec\)"):
            async for _ in wsframed.trio.connect("ws://127.0.0.1:9", LinesCodec()):  # type: ignore[attr-defined]
                pass

    trio.run(main)
