"""msgpack-RPC throughput: RpcPeer.call against a raw websockets echo of the same bytes.

Run on demand::

    python benchmarks/bench_rpc.py                 # about 15 s
    python benchmarks/bench_rpc.py --quick         # about 2 s
    python benchmarks/bench_rpc.py --in-process    # servers in this event loop

A server process (started by this script; ``--in-process`` runs it in this event loop
instead, where client and server share one core) hosts a raw websockets echo server and
a wsframed RpcPeer server, on 127.0.0.1 with compression off. This process is the
client and measures, in interleaved rounds over connections opened once:

- raw websockets echo, sequential: ``await ws.send(request); await ws.recv()`` where
  ``request`` is the msgpack-RPC request RpcPeer sends for the same call;
- ``RpcPeer.call``, sequential: one call at a time (target: at least 0.6x the raw echo);
- ``RpcPeer.call``, pipelined: ``--in-flight`` calls at once (target: at least 5x the
  sequential calls).

It prints a markdown table: the best and the median round of each, the ratio of the
best rounds and the median of the per-round ratios, and the versions measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import wsframed
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer

ROOT = str(Path(__file__).resolve().parents[1])

SEQUENTIAL_TARGET = 0.6
PIPELINED_TARGET = 5.0


# Server process -----------------------------------------------------------------


async def _raw_echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def _rpc_handler(framed: wsframed.Framed[Any]) -> None:
    peer = RpcPeer(framed, max_concurrency=256)
    peer.register("echo", lambda value: value)
    await peer.serve()


@contextlib.asynccontextmanager
async def _servers() -> AsyncIterator[tuple[int, int]]:
    async with (
        ws_serve(_raw_echo, "127.0.0.1", 0, compression=None) as raw,
        wsframed.serve(_rpc_handler, "127.0.0.1", 0, codec=MsgpackCodec()) as rpc,
    ):
        yield raw.sockets[0].getsockname()[1], rpc.port


async def _serve() -> None:
    async with _servers() as (raw_port, rpc_port):
        print(raw_port, rpc_port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


@contextlib.asynccontextmanager
async def _server_process() -> AsyncIterator[tuple[int, int]]:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), 30)
        raw_port, rpc_port = map(int, line.split())
        yield raw_port, rpc_port
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            await asyncio.wait_for(server.wait(), 10)
        except TimeoutError:
            server.kill()
            await server.wait()


# Client measurements ---------------------------------------------------------------


class Client:
    """The client connections, opened once and measured in interleaved rounds."""

    def __init__(self, raw_port: int, rpc_port: int, payload: bytes):
        self.raw_url = f"ws://127.0.0.1:{raw_port}"
        self.rpc_url = f"ws://127.0.0.1:{rpc_port}"
        self.payload = payload
        self.request = msgpack.packb([0, 1, "echo", [payload]])  # what RpcPeer sends
        self.stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Client:
        enter = self.stack.enter_async_context
        self.ws = await enter(ws_connect(self.raw_url, compression=None))
        framed = await enter(wsframed.connect(self.rpc_url, MsgpackCodec()))
        self.peer = await enter(RpcPeer(framed))
        for _ in range(100):  # warm up both paths
            await self.ws.send(self.request)
            await self.ws.recv()
            await self.peer.call("echo", self.payload)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stack.aclose()

    async def raw_sequential(self, count: int) -> float:
        send, recv, request = self.ws.send, self.ws.recv, self.request
        start = time.perf_counter()
        for _ in range(count):
            await send(request)
            await recv()
        return count / (time.perf_counter() - start)

    async def rpc_sequential(self, count: int) -> float:
        call, payload = self.peer.call, self.payload
        start = time.perf_counter()
        for _ in range(count):
            await call("echo", payload)
        return count / (time.perf_counter() - start)

    async def rpc_pipelined(self, count: int, in_flight: int) -> float:
        call, payload = self.peer.call, self.payload
        per_worker = count // in_flight

        async def worker() -> None:
            for _ in range(per_worker):
                await call("echo", payload)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return per_worker * in_flight / (time.perf_counter() - start)


def _row(name: str, rates: list[float], ratio: str) -> str:
    best = max(rates)
    return (
        f"| {name} | {best:,.0f} | {1e6 / best:,.1f} | {statistics.median(rates):,.0f} "
        f"| {ratio} |"
    )


def _verdict(ratio: float, median: float, target: float) -> str:
    ok = "ok" if ratio >= target else "MISSED"
    return f"{ratio:.2f}x (median of rounds {median:.2f}x; target ≥ {target}x: {ok})"


async def main(args: argparse.Namespace) -> int:
    servers = _servers() if args.in_process else _server_process()
    raw: list[float] = []
    seq: list[float] = []
    pipe: list[float] = []
    async with servers as (raw_port, rpc_port), Client(
        raw_port, rpc_port, b"x" * args.size
    ) as client:
        for _ in range(args.rounds):
            raw.append(await client.raw_sequential(args.calls))
            seq.append(await client.rpc_sequential(args.calls))
            pipe.append(await client.rpc_pipelined(args.pipelined, args.in_flight))
    seq_ratio = max(seq) / max(raw)
    pipe_ratio = max(pipe) / max(seq)
    seq_median = statistics.median(s / r for s, r in zip(seq, raw, strict=True))
    pipe_median = statistics.median(p / s for p, s in zip(pipe, seq, strict=True))
    where = "in this process (same event loop)" if args.in_process else "in its own process"
    print(f"## RpcPeer, {args.size}-byte payload, loopback, compression off\n")
    print(
        f"Python {platform.python_version()}, websockets {version('websockets')}, "
        f"msgpack {version('msgpack')}, wsframed {wsframed.__version__}; server {where}; "
        f"{args.rounds} interleaved rounds, ratios of the best rounds "
        "(and the median of per-round ratios).\n"
    )
    print("| benchmark | ops/s (best) | µs/op (best) | ops/s (median) | ratio |")
    print("|---|---:|---:|---:|---|")
    print(_row(f"raw websockets echo, sequential ({args.calls}/round)", raw, "1.00 (baseline)"))
    print(
        _row(
            f"RpcPeer.call, sequential ({args.calls}/round)",
            seq,
            "vs raw: " + _verdict(seq_ratio, seq_median, SEQUENTIAL_TARGET),
        )
    )
    print(
        _row(
            f"RpcPeer.call, pipelined ({args.pipelined}/round, {args.in_flight} in flight)",
            pipe,
            "vs sequential: " + _verdict(pipe_ratio, pipe_median, PIPELINED_TARGET),
        )
    )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    parser.add_argument("--size", type=int, default=64, help="payload bytes (default 64)")
    parser.add_argument("--in-flight", type=int, default=200, help="pipelined calls at once")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the servers in this process's event loop (client and server share a core)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.calls = 500 if args.quick else 1_000
    args.pipelined = 5_000 if args.quick else 20_000
    args.rounds = 3 if args.quick else 12
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve:
        asyncio.run(_serve())
    else:
        sys.exit(asyncio.run(main(arguments)))
