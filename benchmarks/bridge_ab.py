"""A/B the TCP/WebSocket bridge of two checkouts (or its two loops), interleaved in one run.

One job: a WebSocket client sends ``--mib`` MiB through a ``ws://`` -> ``tcp://``
bridge to a TCP echo target and reads it all back, 1 MiB at a time (one window in
flight: two websockets.trio ends that both send and read bulk at once can deadlock,
each one's reader waiting on its own send lock), everything in one process on
127.0.0.1 (client, bridge, target), so the CPU time of the process is the cost of the
whole path. Each round runs each side in a fresh subprocess, alternating, so both see
the same machine load; the best round of each counts::

    git archive BASE | tar -x -C /tmp/base
    python benchmarks/bridge_ab.py /tmp/base . --rounds 5      # asyncio, before/after
    python benchmarks/bridge_ab.py --families . --rounds 5     # asyncio against trio

Prints the best CPU seconds of each side, MiB/s (both directions counted once) and
the ratio B/A (below 1: B is cheaper).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ASYNCIO_CHILD = """
import asyncio, time
from websockets.asyncio.client import connect
from wsframed import WsStream
from wsframed.bridge import serve_bridge

SIZE = {size}

async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()

async def main():
    target = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = target.sockets[0].getsockname()[1]
    async with serve_bridge("ws://127.0.0.1:0", f"tcp://127.0.0.1:{{port}}") as bridge:
        stream = WsStream(await connect(bridge.url, compression=None))
        window = b"x" * (1 << 20)
        started = time.process_time()
        for _ in range(SIZE // len(window)):
            stream.write(window)
            await stream.drain()
            await stream.readexactly(len(window))
        print(time.process_time() - started)
        await stream.aclose()
    target.close()

asyncio.run(main())
"""

TRIO_CHILD = """
import functools, time, trio
from websockets.trio.client import connect
import wsframed.trio
from wsframed import WsStream

SIZE = {size}

async def echo(stream):
    async for data in stream:
        await stream.send_all(data)

async def main():
    async with trio.open_nursery() as nursery:
        [target] = await nursery.start(functools.partial(trio.serve_tcp, echo, 0,
                                                         host="127.0.0.1"))
        port = target.socket.getsockname()[1]
        bridge = await nursery.start(wsframed.trio.serve_bridge, "ws://127.0.0.1:0",
                                     f"tcp://127.0.0.1:{{port}}")
        async with connect(bridge.url, compression=None) as connection:
            stream = WsStream(connection)
            window = b"x" * (1 << 20)
            started = time.process_time()
            for _ in range(SIZE // len(window)):
                stream.write(window)
                await stream.drain()
                await stream.readexactly(len(window))
            print(time.process_time() - started)
            await stream.aclose()
        bridge.close()
        await bridge.wait_closed()
        nursery.cancel_scope.cancel()

trio.run(main)
"""


def run_child(tree: str, family: str, size: int) -> float:
    tree = os.path.abspath(tree)
    source = (TRIO_CHILD if family == "trio" else ASYNCIO_CHILD).format(size=size)
    # The tree under test, not another copy on the path (python -c puts the current
    # directory first: run from a checkout, both sides would measure that checkout).
    source = (
        "import os, wsframed\n"
        f"assert os.path.dirname(os.path.dirname(wsframed.__file__)) == {tree!r}\n"
        + source
    )
    env = {**os.environ, "PYTHONPATH": tree, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run(
        [sys.executable, "-c", source], env=env, capture_output=True, text=True, cwd=tree,
        timeout=120, check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", help="A and B checkouts (one with --families)")
    parser.add_argument("--families", action="store_true",
                        help="compare asyncio (A) and trio (B) in one tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    if args.families:
        sides = [(args.trees[0], "asyncio"), (args.trees[0], "trio")]
    else:
        if len(args.trees) != 2:
            parser.error("give two trees (A and B), or one with --families")
        sides = [(tree, "asyncio") for tree in args.trees]
    best = [float("inf"), float("inf")]
    for _ in range(args.rounds):
        for index, (tree, family) in enumerate(sides):
            best[index] = min(best[index], run_child(tree, family, size))
    for (tree, family), seconds in zip(sides, best, strict=True):
        print(f"{family:8} {tree:30} {seconds:7.3f} CPU s  {args.mib / seconds:7.0f} MiB/s")
    print(f"B/A: {best[1] / best[0]:.3f}")


if __name__ == "__main__":
    main()
