"""A/B RpcPeer's round trips of two checkouts, interleaved in one run; trio beside asyncio.

Both peers run in one process over a websockets loopback pair, and each job runs in a
fresh subprocess, alternating between the two trees round by round so both see the same
machine load; the best round of each counts (CPU time: on a shared machine the wall
time mostly measures the other processes)::

    git archive BASE | tar -x -C /tmp/base
    python benchmarks/rpc_ab.py /tmp/base . --rounds 5      # asyncio, B/A
    python benchmarks/rpc_ab.py . . --rounds 5              # A/A: the noise
    python benchmarks/rpc_ab.py --families . --rounds 5     # one tree, trio/asyncio

Jobs: sequential calls answered by a sync handler and by an async one (each call waits
for its response before the next), calls pipelined 100 at a time, and notifications.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

JOBS = {
    "5,000 sequential calls, sync handler": "sequential('echo', 5000)",
    "5,000 sequential calls, async handler": "sequential('aecho', 5000)",
    "50,000 calls, 100 in flight, async handler": "pipelined(50000, 100)",
    "100,000 notifications": "notifications(100000)",
}

CHILD = """
import functools, time, sys
FAMILY = {family!r}
from wsframed import Framed, WsStream
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer

if FAMILY == "trio":
    import trio
    from contextlib import asynccontextmanager
    from websockets.trio.client import connect
    from websockets.trio.server import serve

    @asynccontextmanager
    async def ws_pair():
        accepted, arrived, release = [], trio.Event(), trio.Event()

        async def handler(connection):
            accepted.append(connection)
            arrived.set()
            await release.wait()

        async with trio.open_nursery() as nursery:
            start = functools.partial(serve, handler, 0, host="127.0.0.1", compression=None)
            server = await nursery.start(start)
            port = server.listeners[0].socket.getsockname()[1]
            async with connect(f"ws://127.0.0.1:{{port}}", compression=None) as client:
                await arrived.wait()
                try:
                    yield client, accepted[0]
                finally:
                    release.set()
            nursery.cancel_scope.cancel()

    async def gather_run(n, body):
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(body)
    run = trio.run
else:
    import asyncio
    from wsframed.bench.workloads import ws_pair

    async def gather_run(n, body):
        await asyncio.gather(*(body() for _ in range(n)))
    def run(main):
        asyncio.run(main())


async def with_peers(job):
    async with ws_pair() as (c, s):
        a = Framed(WsStream(c), MsgpackCodec())
        b = Framed(WsStream(s), MsgpackCodec())
        async with RpcPeer(a) as client, RpcPeer(b) as server:
            server.register("echo", lambda x: x)

            async def aecho(x):
                return x

            server.register("aecho", aecho)
            done = []
            server.register("note", done.append)
            started = time.process_time()
            await job(client, done)
            return time.process_time() - started


def sequential(method, n):
    async def job(client, done):
        for i in range(n):
            assert await client.call(method, i) == i
    return job


def pipelined(n, in_flight):
    async def job(client, done):
        left = iter(range(n))

        async def worker():
            for i in left:
                assert await client.call("aecho", i) == i

        await gather_run(in_flight, worker)
    return job


def notifications(n):
    async def job(client, done):
        for i in range(n):
            await client.notify("note", i)
        await client.call("echo", 0)  # after every notification was handled
        assert len(done) == n
    return job


async def main():
    print(await with_peers({call}))

run(main)
"""


def _time(tree: str, call: str, family: str = "asyncio") -> float:
    env = {
        "MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
        **os.environ,
        "PYTHONPATH": os.path.abspath(tree),
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(call=call, family=family)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode:
        raise SystemExit(f"{tree} ({family}) failed on {call}:\n{out.stderr}")
    return float(out.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", help="A B (A/B, asyncio) or one tree (--families)")
    parser.add_argument("--families", action="store_true", help="asyncio and trio on one tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", metavar="TEXT", help="only the jobs whose name has TEXT")
    args = parser.parse_args()
    jobs = {name: call for name, call in JOBS.items() if (args.only or "") in name}
    if args.families:
        (tree,) = args.trees
        sides = [(tree, "asyncio"), (tree, "trio")]
        header = "| job | asyncio CPU s | trio CPU s | trio/asyncio |"
    else:
        a, b = args.trees
        sides = [(a, "asyncio"), (b, "asyncio")]
        header = "| job | A CPU s | B CPU s | B/A |"
    best: dict[tuple[str, int], float] = {}
    for round_number in range(args.rounds):
        for name, call in jobs.items():
            order = [0, 1] if round_number % 2 == 0 else [1, 0]
            for side in order:
                tree, family = sides[side]
                seconds = _time(tree, call, family)
                best[(name, side)] = min(best.get((name, side), seconds), seconds)
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    print(header)
    print("|---|---:|---:|---:|")
    for name in jobs:
        first, second = best[(name, 0)], best[(name, 1)]
        print(f"| {name} | {first:.4f} | {second:.4f} | {second / first:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
