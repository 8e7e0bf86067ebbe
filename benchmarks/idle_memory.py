"""Memory per idle connection: server RSS for N idle connections, per codec.

Run on demand from a checkout (nothing here runs in the test suite)::

    python benchmarks/idle_memory.py                    # 1,000 connections, every codec
    python benchmarks/idle_memory.py --connections 200 --kinds websockets,msgpack
    python benchmarks/idle_memory.py --kinds length --trace 25   # where the bytes go

For each kind a fresh server process starts on 127.0.0.1: plain websockets (a handler
that waits in ``async for message in ws``) or wsframed's ``serve()`` with that codec (a
handler that waits in ``async for frame in framed``). This process opens one
connection (so that every code path has run once and its imports are done), asks the
server for its RSS (after ``gc.collect()``), opens N more connections that send
nothing, waits until the server has N + 1 handlers running, and asks again. The
table gives the RSS growth per connection, and wsframed's excess over websockets'
own. The clients live in this process, so they do not count.

``--trace TOP`` also runs ``tracemalloc`` in the server and prints (to stderr) the
TOP source lines whose allocations grew the most between the two measurements, in
bytes and blocks per connection: what each idle connection holds, and who allocated
it. Tracing costs memory of its own, so the RSS figures of a traced run are not the
ones to report.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

KINDS = ("websockets", "msgpack", "length", "lines", "bytes", "cbor", "jsonl")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def codec_for(kind: str) -> Any:
    from wsframed import codecs

    return {
        "msgpack": codecs.MsgpackCodec,
        "length": codecs.LengthPrefixedCodec,
        "lines": codecs.LinesCodec,
        "bytes": codecs.BytesCodec,
        "cbor": codecs.CborCodec,
        "jsonl": codecs.JsonLinesCodec,
    }[kind]()


def print_top(before: tracemalloc.Snapshot, connections: int, top: int) -> None:
    """The ``top`` source lines that allocated the most since ``before``, per connection."""
    stats = tracemalloc.take_snapshot().compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    sys.stderr.write(f"tracemalloc: {total / connections:,.0f} B per connection; top lines:\n")
    for stat in stats[:top]:
        frame = stat.traceback[0]
        where = f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
        size, count = stat.size_diff / connections, stat.count_diff / connections
        sys.stderr.write(f"{size:8,.0f} B {count:6.1f} blocks  {where}\n")


async def serve_kind(kind: str, trace: int) -> None:
    """The server process: serve, then answer "rss" and "count" on stdin."""
    raise_fd_limit()
    handlers = 0
    if trace:
        tracemalloc.start()
    snapshot: tracemalloc.Snapshot | None = None

    if kind == "websockets":
        from websockets.asyncio.server import serve

        async def ws_handler(ws: Any) -> None:
            nonlocal handlers
            handlers += 1
            async for _ in ws:
                pass

        server: Any = await serve(ws_handler, "127.0.0.1", 0, compression=None)
        port = next(iter(server.sockets)).getsockname()[1]
    else:
        import wsframed

        async def handler(framed: Any) -> None:
            nonlocal handlers
            handlers += 1
            async for _ in framed:
                pass

        server = await wsframed.serve(handler, "127.0.0.1", 0, codec_for(kind))
        port = server.port
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() == "rss":
            gc.collect()
            if trace and snapshot is None:
                snapshot = tracemalloc.take_snapshot()
            elif trace and snapshot is not None:
                print_top(snapshot, handlers - 1, trace)  # the first one came before
            print(rss_kib(), flush=True)
        else:
            print(handlers, flush=True)


async def measure(kind: str, connections: int, trace: int) -> float:
    """Server RSS growth per idle connection, in KiB."""
    from websockets.asyncio.client import connect

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        kind,
        "--trace",
        str(trace),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdin is not None
    assert process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    async def ask(what: str) -> int:
        stdin.write(what.encode() + b"\n")
        await stdin.drain()
        return int(await asyncio.wait_for(stdout.readline(), 60))

    async def wait_handlers(count: int) -> None:
        async with asyncio.timeout(120):
            while await ask("count") < count:  # noqa: ASYNC110 (another process)
                await asyncio.sleep(0.1)

    clients: list[Any] = []
    try:
        port = int(await asyncio.wait_for(stdout.readline(), 60))
        url = f"ws://127.0.0.1:{port}"
        clients.append(await connect(url, compression=None))
        await wait_handlers(1)
        before = await ask("rss")
        for start in range(0, connections, 50):
            batch = range(start, min(start + 50, connections))
            clients += await asyncio.gather(*(connect(url, compression=None) for _ in batch))
        await wait_handlers(connections + 1)
        await asyncio.sleep(0.5)
        after = await ask("rss")
        return (after - before) / connections
    finally:
        for client in clients:
            client.transport.abort()
        process.kill()
        await process.wait()


async def main_async(args: argparse.Namespace) -> None:
    per_connection: dict[str, float] = {}
    for _ in range(args.repeat):
        for kind in args.kinds:
            kib = await measure(kind, args.connections, args.trace)
            per_connection[kind] = min(per_connection.get(kind, float("inf")), kib)
            sys.stderr.write(f"{kind}: {kib:.1f} KiB per connection\n")
    base = per_connection.get("websockets")
    head = f"| server ({args.connections:,} idle connections) | RSS per connection |"
    print(head + " over websockets |")
    print("|---|---|---|")
    for kind in args.kinds:
        name = "websockets alone" if kind == "websockets" else f"wsframed, {kind}"
        excess = (
            ""
            if base is None or kind == "websockets"
            else f"{per_connection[kind] - base:+.1f} KiB"
        )
        print(f"| {name} | {per_connection[kind]:.1f} KiB | {excess} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--kinds", default=",".join(KINDS), type=lambda s: s.split(","))
    parser.add_argument("--repeat", type=int, default=1, help="rounds (the smallest counts)")
    parser.add_argument(
        "--trace", type=int, default=0, metavar="TOP", help="print the TOP allocating lines"
    )
    parser.add_argument("--serve", metavar="KIND", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve_kind(args.serve, args.trace))
        return 0
    raise_fd_limit()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
