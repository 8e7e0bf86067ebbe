"""One WebSocket message per item: wsframed's backends against the naive library loops.

Run on demand::

    python benchmarks/one_message_per_item.py            # about 20 s
    python benchmarks/one_message_per_item.py --quick    # about 5 s
    python benchmarks/one_message_per_item.py --loop uvloop
    python benchmarks/one_message_per_item.py --against HEAD~1   # A/B in one process

Client and server run in this process, on 127.0.0.1, compression off; every figure is
from the same run, in interleaved rounds (best round reported, ratios of the best).
Throughput is items per CPU-second of this process (``time.process_time()``, kernel
time included): both ends run here, so CPU time is what each path costs, and it holds
still on a machine shared with other work, where wall-clock rates swing by 2x.

Throughput: ``--items`` msgpack items of 36 bytes, each sent as its own message.

- naive websockets: ``await ws.send(packb(item))`` per item, the server ``async for``
  over its connection and ``unpackb``: the baseline of the ratios;
- naive aiohttp and naive picows (a picows listener unpacking each frame): what the
  libraries themselves cost per message;
- ``Framed.send()`` per item over wsframed's websockets backend and its picows backend
  (``wsframed.connect``/``wsframed.serve``), the server ``async for`` over its Framed.

Latency: ``--calls`` sequential round trips, one at a time, p50 and p90 in µs: a raw
websockets echo (``send``; ``recv``) of the bytes an RpcPeer request is, and
``RpcPeer.call`` over both backends.

``--against REV`` also imports the ``wsframed`` package of git revision ``REV`` (as
``benchmarks/hotpath.py`` does) and adds its ``Framed.send()`` and ``RpcPeer.call``
rows, measured in the same interleaved rounds: the A/B of a change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack  # type: ignore[import-untyped]
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import wsframed
from wsframed.rpc import RpcPeer

ITEM = {"id": 12345, "name": "sensor-7", "value": 3.25}  # 36 bytes of msgpack

Counter = Callable[[int], Awaitable[float]]


class _Done:
    """Counts the items the server received; wakes the client at the target."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.event = asyncio.Event()

    def expect(self, target: int) -> None:
        self.count, self.target = 0, target
        self.event.clear()

    def add(self) -> None:
        self.count += 1
        if self.count >= self.target:
            self.event.set()


@contextlib.asynccontextmanager
async def naive_websockets() -> AsyncIterator[Counter]:
    done = _Done()
    unpackb = msgpack.unpackb

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            unpackb(message)
            done.add()

    async with (
        ws_serve(handler, "127.0.0.1", 0, compression=None) as server,
        ws_connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", compression=None) as ws,
    ):

        async def run(n: int) -> float:
            done.expect(n)
            packb, send = msgpack.packb, ws.send
            start = time.process_time()
            for _ in range(n):
                await send(packb(ITEM))
            await done.event.wait()
            return n / (time.process_time() - start)

        yield run


@contextlib.asynccontextmanager
async def naive_aiohttp() -> AsyncIterator[Counter]:
    import aiohttp
    from aiohttp import web

    done = _Done()
    unpackb = msgpack.unpackb

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            unpackb(message.data)
            done.add()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://127.0.0.1:{runner.addresses[0][1]}/") as ws,
        ):

            async def run(n: int) -> float:
                done.expect(n)
                packb, send = msgpack.packb, ws.send_bytes
                start = time.process_time()
                for _ in range(n):
                    await send(packb(ITEM))
                await done.event.wait()
                return n / (time.process_time() - start)

            yield run
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def naive_picows() -> AsyncIterator[Counter]:
    from picows import WSListener, WSMsgType, ws_connect, ws_create_server

    done = _Done()
    unpackb = msgpack.unpackb

    class Server(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type is WSMsgType.BINARY:
                unpackb(frame.get_payload_as_bytes())
                done.add()

    class Client(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.writable = asyncio.Event()
            self.writable.set()

        def pause_writing(self) -> None:
            self.writable.clear()

        def resume_writing(self) -> None:
            self.writable.set()

    server = await ws_create_server(lambda _: Server(), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        transport, client = await ws_connect(Client, f"ws://127.0.0.1:{port}/")

        async def run(n: int) -> float:
            done.expect(n)
            packb, send, binary = msgpack.packb, transport.send, WSMsgType.BINARY
            start = time.process_time()
            for _ in range(n):
                send(binary, packb(ITEM))
                if not client.writable.is_set():  # the same backpressure as the others
                    await client.writable.wait()
            await done.event.wait()
            return n / (time.process_time() - start)

        yield run
        transport.disconnect()
        await transport.wait_disconnected()
    finally:
        server.close()


def framed_per_item(
    backend: str, package: ModuleType = wsframed
) -> Callable[[], contextlib.AbstractAsyncContextManager[Counter]]:
    @contextlib.asynccontextmanager
    async def setup() -> AsyncIterator[Counter]:
        done = _Done()
        codec = package.codecs.MsgpackCodec

        async def handler(framed: wsframed.Framed[Any]) -> None:
            async for _item in framed:
                done.add()

        async with (
            package.serve(handler, "127.0.0.1", 0, codec(), backend=backend) as server,
            package.connect(f"ws://127.0.0.1:{server.port}/", codec(), backend=backend) as framed,
        ):

            async def run(n: int) -> float:
                done.expect(n)
                send = framed.send
                start = time.process_time()
                for _ in range(n):
                    await send(ITEM)
                await done.event.wait()
                return n / (time.process_time() - start)

            yield run

    return setup


# Latency ------------------------------------------------------------------------------

Timer = Callable[[int], Awaitable[list[float]]]


def _rpc_handler(package: ModuleType) -> Callable[[Any], Awaitable[None]]:
    async def handler(framed: wsframed.Framed[Any]) -> None:
        peer = importlib.import_module(f"{package.__name__}.rpc").RpcPeer(framed)
        peer.register("echo", lambda value: value)
        await peer.serve()

    return handler


@contextlib.asynccontextmanager
async def raw_echo() -> AsyncIterator[Timer]:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    request = msgpack.packb([0, 1, "echo", [ITEM]])  # what RpcPeer sends
    async with (
        ws_serve(echo, "127.0.0.1", 0, compression=None) as server,
        ws_connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", compression=None) as ws,
    ):

        async def run(n: int) -> list[float]:
            times = []
            clock, send, recv = time.perf_counter, ws.send, ws.recv
            for _ in range(n):
                start = clock()
                await send(request)
                await recv()
                times.append(clock() - start)
            return times

        yield run


def rpc_calls(
    backend: str, package: ModuleType = wsframed
) -> Callable[[], contextlib.AbstractAsyncContextManager[Timer]]:
    @contextlib.asynccontextmanager
    async def setup() -> AsyncIterator[Timer]:
        codec = package.codecs.MsgpackCodec
        peer_class: type[RpcPeer] = importlib.import_module(f"{package.__name__}.rpc").RpcPeer
        async with (
            package.serve(_rpc_handler(package), "127.0.0.1", 0, codec(), backend=backend) as s,
            package.connect(f"ws://127.0.0.1:{s.port}/", codec(), backend=backend) as f,
            peer_class(f) as peer,
        ):

            async def run(n: int) -> list[float]:
                times = []
                clock, call = time.perf_counter, peer.call
                for _ in range(n):
                    start = clock()
                    await call("echo", ITEM)
                    times.append(clock() - start)
                return times

            yield run

    return setup


THROUGHPUT: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Counter]]] = {
    "naive websockets loop": naive_websockets,
    "naive aiohttp loop": naive_aiohttp,
    "naive picows listener": naive_picows,
    "Framed.send() per item, websockets backend": framed_per_item("websockets"),
    "Framed.send() per item, picows backend": framed_per_item("picows"),
}
LATENCY: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Timer]]] = {
    "raw websockets echo": raw_echo,
    "RpcPeer.call, websockets backend": rpc_calls("websockets"),
    "RpcPeer.call, picows backend": rpc_calls("picows"),
}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def add_revision(rev: str, into: Path) -> None:
    """Add the rows of wsframed at git revision ``rev`` (see ``--against``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hotpath import load_revision

    package = load_revision(rev, into)
    for backend in ("websockets", "picows"):
        THROUGHPUT[f"Framed.send() per item, {backend} backend ({rev})"] = framed_per_item(
            backend, package
        )
        LATENCY[f"RpcPeer.call, {backend} backend ({rev})"] = rpc_calls(backend, package)


async def main(args: argparse.Namespace) -> None:
    rates: dict[str, list[float]] = {name: [] for name in THROUGHPUT}
    times: dict[str, list[float]] = {name: [] for name in LATENCY}
    async with contextlib.AsyncExitStack() as stack:
        enter = stack.enter_async_context
        counters = {name: await enter(make()) for name, make in THROUGHPUT.items()}
        timers = {name: await enter(make()) for name, make in LATENCY.items()}
        for run in counters.values():  # warm up
            await run(1_000)
        for run_timer in timers.values():
            await run_timer(100)
        for _ in range(args.rounds):
            for name, run in counters.items():
                rates[name].append(await run(args.items))
            for name, run_timer in timers.items():
                times[name].extend(await run_timer(args.calls))

    loop = type(asyncio.get_running_loop())
    print(f"## One message per item, {len(msgpack.packb(ITEM))}-byte msgpack items\n")
    print(
        f"Python {platform.python_version()}, {loop.__module__}.{loop.__qualname__}, "
        f"websockets {version('websockets')}, picows {version('picows')}, "
        f"aiohttp {version('aiohttp')}, msgpack {version('msgpack')}; client and server in "
        f"one process; {args.rounds} interleaved rounds of {args.items:,} items.\n"
    )
    base = max(rates["naive websockets loop"])
    print("| path | items/CPU-s (best) | items/CPU-s (median) | vs naive websockets |")
    print("|---|---:|---:|---:|")
    for name, values in rates.items():
        best = max(values)
        print(f"| {name} | {best:,.0f} | {statistics.median(values):,.0f} | {best / base:.2f}x |")
    print(f"\n## Sequential round trips ({args.rounds} x {args.calls:,} calls)\n")
    raw_p50 = _quantile(times["raw websockets echo"], 0.5)
    print("| path | p50 µs | p90 µs | p50 vs raw echo |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        p50 = _quantile(values, 0.5)
        print(
            f"| {name} | {p50 * 1e6:,.1f} | {_quantile(values, 0.9) * 1e6:,.1f} "
            f"| {p50 / raw_p50:.2f}x |"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer items and rounds")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV")
    args = parser.parse_args(argv)
    args.items = 20_000 if args.quick else 50_000
    args.calls = 500 if args.quick else 2_000
    args.rounds = 3 if args.quick else 5
    return args


if __name__ == "__main__":
    arguments = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if arguments.against:
            add_revision(arguments.against, Path(tmp))
        if arguments.loop == "uvloop":
            import uvloop

            uvloop.run(main(arguments))
        else:
            asyncio.run(main(arguments))
