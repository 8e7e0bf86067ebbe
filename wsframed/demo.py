"""``wsframed demo``: a server and a client in one process, showing each layer.

Each section starts a [`wsframed.serve`][wsframed.serve] server on 127.0.0.1 (a free port),
connects with [`wsframed.connect`][wsframed.connect] and prints a short transcript: lines echoed,
msgpack request/response, msgpack-RPC, CBOR, the split halves in two tasks, oversized
frames refused on both sides, and the close handshake with its codes.

The sections are written once for both loop families: under trio (``wsframed demo
--loop trio``) the server is [`wsframed.trio.serve`][wsframed.trio.serve] in a nursery
and the client [`wsframed.trio.connect`][wsframed.trio.connect]; tasks, events and the
time bound are the loop shell's ([`wsframed.loops`][wsframed.loops]).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from .codecs.base import Codec
from .errors import (
    ConnectionClosed,
    FrameTooLarge,
)
from .framed import Framed
from .loops import current_shell, gather, in_trio

__all__ = ["run_demo"]


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Transcript:
    """Prints the demo's transcript: numbered headings and indented lines."""

    def __init__(self) -> None:
        self.section = 0

    def heading(self, title: str) -> None:
        self.section += 1
        _out(f"\n== {self.section}. {title}")

    def __call__(self, line: str) -> None:
        _out(f"   {line}")


@contextlib.asynccontextmanager
async def _demo_server(handler: Callable[[Framed[Any]], Awaitable[None]], codec: Codec[Any]
                       ) -> AsyncIterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port) and yield its ``ws://`` URL."""
    if in_trio():
        import trio

        from .trio import serve as trio_serve

        async with trio.open_nursery() as nursery:
            start = functools.partial(trio_serve, handler, "127.0.0.1", 0, codec)
            server = await nursery.start(start)
            try:
                yield f"ws://127.0.0.1:{server.listeners[0].socket.getsockname()[1]}"
            finally:
                nursery.cancel_scope.cancel()  # stop serving
        return
    from .server import serve

    async with serve(handler, "127.0.0.1", 0, codec=codec) as server:
        yield f"ws://127.0.0.1:{server.port}"


def _connect(url: str, codec: Codec[Any]) -> AbstractAsyncContextManager[Framed[Any]]:
    """The running loop's client: ``async with`` it for a ``Framed``."""
    if in_trio():
        from .trio import connect as trio_connect

        return trio_connect(url, codec)
    from .client import connect as asyncio_connect

    return asyncio_connect(url, codec)


async def _echo(framed: Framed[Any]) -> None:
    async for item in framed:
        await framed.send(item)


async def _demo_lines(say: _Transcript) -> None:
    from .codecs import LinesCodec

    say.heading("Lines, echoed (LinesCodec)")
    async with _demo_server(_echo, LinesCodec()) as url, _connect(url, LinesCodec()) as framed:
        say(f"server on {url}; client connected")
        for line in ("hello", "wsframed", "übermäßig 🎉"):
            say(f"client -> server  {line!r}")
            await framed.send(line)
            say(f"server -> client  {await framed.recv()!r}")


_METHODS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b,
    "upper": lambda text: text.upper(),
}


async def _request_response_server(framed: Framed[Any]) -> None:
    async for request in framed:
        method = _METHODS.get(request.get("method"))
        if method is None:
            reply = {"id": request.get("id"), "error": f"no method {request.get('method')!r}"}
        else:
            reply = {"id": request["id"], "result": method(*request.get("params", []))}
        await framed.send(reply)


async def _demo_msgpack(say: _Transcript) -> None:
    from .codecs import MsgpackCodec

    say.heading("msgpack request/response (MsgpackCodec)")
    async with _demo_server(_request_response_server, MsgpackCodec()) as url, _connect(
        url, MsgpackCodec()
    ) as framed:
        requests = [
            {"id": 1, "method": "add", "params": [1, 2]},
            {"id": 2, "method": "upper", "params": ["wsframed"]},
            {"id": 3, "method": "divide", "params": [1, 0]},
        ]
        for request in requests:
            say(f"client -> server  {request!r}")
            await framed.send(request)
            say(f"server -> client  {await framed.recv()!r}")


async def _demo_rpc(say: _Transcript) -> None:
    from .codecs import MsgpackCodec
    from .rpc import RemoteError, RpcPeer

    say.heading("msgpack-RPC (wsframed.rpc.RpcPeer)")

    async def rpc_server(framed: Framed[Any]) -> None:
        peer = RpcPeer(framed, handlers={"add": lambda a, b: a + b})
        peer.register("divide", lambda a, b: a / b)

        @peer.method
        async def greet() -> str:
            return f"hello, {await peer.call('name', timeout=5)}"

        await peer.serve()

    async with (
        _demo_server(rpc_server, MsgpackCodec()) as url,
        _connect(url, MsgpackCodec()) as framed,
        RpcPeer(framed, request_timeout=5) as peer,
    ):
        peer.register("name", lambda: "the demo client")
        say("client -> server  [0, 0, 'add', [1, 2]]   (request: type, msgid, method, params)")
        result = await peer.call("add", 1, 2)
        say(f"server -> client  [1, 0, None, {result!r}]   (response: type, msgid, error, result)")
        results = await gather(*(functools.partial(peer.call, "add", i, i) for i in range(5)))
        say(f"5 calls in flight at once, answered by msgid: {results}")
        say(f"greet(): the server calls the client back -> {await peer.call('greet')!r}")
        try:
            await peer.call("divide", 1, 0)
        except RemoteError as exc:
            say(f"divide(1, 0) -> RemoteError: {exc}")


async def _demo_cbor(say: _Transcript) -> None:
    import datetime

    from .codecs import CborCodec

    say.heading("CBOR items, echoed (CborCodec)")
    async with _demo_server(_echo, CborCodec()) as url, _connect(url, CborCodec()) as framed:
        items: list[Any] = [
            {"sensor": "t1", "celsius": 21.5, "raw": b"\x00\x01\xff"},
            2**70,  # a bignum (tag 2): larger than any msgpack integer
            datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),  # tag 0
        ]
        for item in items:
            say(f"client -> server  {item!r}")
            await framed.send(item)
            say(f"server -> client  {await framed.recv()!r}")


async def _square_server(framed: Framed[Any]) -> None:
    async for number in framed:
        await framed.send(number * number)


async def _demo_split(say: _Transcript) -> None:
    from .codecs import MsgpackCodec

    say.heading("Split halves: one task sends, another receives")
    numbers = range(1, 6)
    async with _demo_server(_square_server, MsgpackCodec()) as url, _connect(
        url, MsgpackCodec()
    ) as framed:
        sink, stream = framed.split()
        all_replies = current_shell("the demo").create_waiter()

        async def sender() -> None:
            for number in numbers:
                say(f"sender task    client -> server  {number}")
                await sink.send(number)
            # A WebSocket close is not a half-close: replies still in flight would be
            # lost, so close once the last reply is in.
            await all_replies
            say("sender task    sink.close(): close frame sent")
            await sink.close()

        async def receiver() -> None:
            count = 0
            async for square in stream:
                say(f"receiver task  server -> client  {square}")
                count += 1
                if count == len(numbers):
                    all_replies.set_result(None)
            say(f"receiver task  end of stream after {count} replies")

        await gather(sender, receiver)


async def _limited_lines_server(framed: Framed[Any]) -> None:
    async for line in framed:
        if line == "send me a long line":
            framed.feed("y" * 100)
            framed.feed("after the long line")
            await framed.flush()
        else:
            await framed.send(line)


async def _refusing_server(framed: Framed[Any]) -> None:
    try:
        async for item in framed:
            await framed.send(item)
    except FrameTooLarge:
        await framed.stream.aclose(1009, "frame too large")


async def _demo_oversized(say: _Transcript) -> None:
    from .codecs import LinesCodec, MsgpackCodec

    say.heading("Oversized frames refused")
    small = LinesCodec(max_frame_size=64, on_overflow="discard")
    async with _demo_server(_limited_lines_server, LinesCodec()) as url, _connect(
        url, small
    ) as framed:
        say("client codec: LinesCodec(max_frame_size=64, on_overflow='discard')")
        try:
            await framed.send("x" * 100)
        except FrameTooLarge as exc:
            say(f"client refused to send a 100-character line: {exc}; nothing was sent")
        say("client -> server  'still usable'")
        await framed.send("still usable")
        say(f"server -> client  {await framed.recv()!r}")
        say("client -> server  'send me a long line'")
        await framed.send("send me a long line")
        try:
            await framed.recv()
        except FrameTooLarge as exc:
            say(f"client refused the server's line: {exc}")
        reply = await framed.recv()
        say(f"server -> client  {reply!r}  (LinesCodec resynchronised at the next newline)")

    async with _demo_server(_refusing_server, MsgpackCodec(max_frame_size=64)) as url, _connect(
        url, MsgpackCodec()
    ) as framed:
        say("server codec: MsgpackCodec(max_frame_size=64); msgpack cannot resynchronise")
        say("client -> server  'z' * 100")
        await framed.send("z" * 100)
        try:
            await framed.recv()
        except ConnectionClosed as exc:
            say(f"server refused it and closed: code {exc.code} ({exc.reason})")


async def _demo_close(say: _Transcript) -> None:
    from .codecs import LinesCodec

    say.heading("Close handshake")
    shell = current_shell("the demo")
    server_saw = shell.create_future()

    async def reporting_echo(framed: Framed[Any]) -> None:
        stream = framed.stream
        events = stream.events()
        await _echo(framed)
        await stream.wait_closed()
        server_saw.set_result([event async for event in events])

    async with _demo_server(reporting_echo, LinesCodec()) as url, _connect(
        url, LinesCodec()
    ) as framed:
        stream = framed.stream
        events = stream.events()
        say("client -> server  'goodbye'")
        await framed.send("goodbye")
        say(f"server -> client  {await framed.recv()!r}")
        say("client: await framed.aclose()  (sends close 1000, waits for the reply)")
        await framed.aclose()
        async for event in events:
            say(f"client event     {event}")
        for event in await shell.wait_until(server_saw, shell.time() + 5):
            say(f"server event     {event}")
        say(f"client close_code={stream.close_code}, close_reason={stream.close_reason!r}")


# The demo's sections, in order.
_DEMO_SECTIONS: list[Callable[[_Transcript], Awaitable[None]]] = [
    _demo_lines,
    _demo_msgpack,
    _demo_rpc,
    _demo_cbor,
    _demo_split,
    _demo_oversized,
    _demo_close,
]


async def run_demo(timeout: float = 30.0) -> int:
    """Run every section of the demo; return the exit status (1 on a time-out)."""
    say = _Transcript()
    _out("wsframed demo: a server and a client in this process, on 127.0.0.1")
    shell = current_shell("the demo")
    try:
        async with shell.timeout_at(shell.time() + timeout):
            for section in _DEMO_SECTIONS:
                await section(say)
    except TimeoutError:
        _log(f"wsframed demo: error: did not finish within {timeout} s")
        return 1
    loop = " --loop trio" if in_trio() else ""
    _out("\nDone. Try it by hand:")
    _out(f"   wsframed serve --codec lines --echo --port 8765{loop}")
    _out(f"   wsframed connect ws://127.0.0.1:8765 --codec lines{loop}")
    return 0
