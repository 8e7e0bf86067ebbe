"""A/B RpcPeer's round trips of two checkouts, interleaved in one run; trio beside asyncio.

Both peers run in one process over a websockets loopback pair, and each job runs in a
fresh subprocess, alternating between the two trees round by round so both see the same
machine load; the best round of each counts (CPU time: on a shared machine the wall
time mostly measures the other processes)::

    git archive BASE | tar -x -C /tmp/base
    python benchmarks/rpc_ab.py /tmp/base . --rounds 5      # asyncio, B/A
    python benchmarks/rpc_ab.py . . --rounds 5              # A/A: the noise
    python benchmarks/rpc_ab.py --families . --rounds 5     # one tree, trio/asyncio
    python benchmarks/rpc_ab.py /tmp/base . --rounds 15 --repeat 3 --only "calls, sync"

Jobs: sequential calls answered by a sync handler and by an async one (each call waits
for its response before the next), calls pipelined 100 at a time, and notifications.

Beside the ratio of the best rounds, the table gives the median of the rounds' own
ratios (each round's B against the A run next to it): on a machine shared with other
work the best of a few rounds can land on one lucky process, the median cannot.
``--repeat N`` runs each job N times in a row in each process, on the same peers, and
keeps the best: a pause forced by another process then spoils one run, not the round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from typing import Any

JOBS = {
    "5,000 sequential calls, sync handler": "sequential('echo', 5000)",
    "5,000 sequential calls, async handler": "sequential('aecho', 5000)",
    "50,000 calls, 100 in flight, async handler": "pipelined(50000, 100)",
    "100,000 notifications": "notifications(100000)",
}

CHILD = """
import functools, os, time, sys
from contextlib import asynccontextmanager
FAMILY = {family!r}
import wsframed
from wsframed import Framed, WsStream

# The tree under test, not another copy on the path (python -c puts the current
# directory first: run from a checkout, both sides would measure that checkout).
assert os.path.dirname(os.path.dirname(wsframed.__file__)) == {tree!r}, wsframed.__file__
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer

if FAMILY == "trio":
    import trio
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


@asynccontextmanager
async def peers():
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
            yield client, done


async def measure(job, client, done):
    best = float("inf")
    for _ in range({repeat}):
        done.clear()
        started = time.process_time()
        await job(client, done)
        best = min(best, time.process_time() - started)
    return best


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


JOBS = [{calls}]


async def main():
    async with peers() as (client, done):
        if {persistent}:  # the job to run next, by its index, until stdin closes
            for line in iter(sys.stdin.readline, ""):
                print(await measure(JOBS[int(line)], client, done), flush=True)
        else:
            print(await measure(JOBS[0], client, done))

run(main)
"""


def _child(tree: str, family: str, calls: list[str], repeat: int, persistent: bool) -> Any:
    """The arguments of ``subprocess.run``/``Popen`` for a child running ``calls``."""
    tree = os.path.abspath(tree)
    source = CHILD.format(
        calls=", ".join(calls), family=family, repeat=repeat, persistent=persistent, tree=tree
    )
    env = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024), **os.environ, "PYTHONPATH": tree}
    # In the tree: python -c imports from the current directory first.
    return {"args": [sys.executable, "-c", source], "env": env, "text": True, "cwd": tree}


def _time(tree: str, call: str, family: str = "asyncio", repeat: int = 1) -> float:
    """Run job ``call`` in a process of its own; its CPU seconds."""
    out = subprocess.run(
        **_child(tree, family, [call], repeat, False), capture_output=True, timeout=600
    )
    if out.returncode:
        raise SystemExit(f"{tree} ({family}) failed on {call}:\n{out.stderr}")
    return float(out.stdout.split()[-1])


class _Persistent:
    """One process for a whole run (``--persistent``): it runs the job it is told,
    one at a time, on the same peers, and waits in between."""

    def __init__(self, tree: str, family: str, calls: list[str], repeat: int):
        self.what = f"{tree} ({family})"
        self.process = subprocess.Popen(
            **_child(tree, family, calls, repeat, True),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def time(self, index: int) -> float:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(f"{index}\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            self.process.wait(timeout=60)
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise SystemExit(f"{self.what} failed:\n{stderr}")
        return float(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", help="A B (A/B, asyncio) or one tree (--families)")
    parser.add_argument("--families", action="store_true", help="asyncio and trio on one tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", metavar="TEXT", help="only the jobs whose name has TEXT")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each job per process, the best kept"
    )
    parser.add_argument(
        "--persistent",
        action="store_true",
        help="one process per side for the whole run, the sides taking turns job by job",
    )
    args = parser.parse_args()
    jobs = {name: call for name, call in JOBS.items() if (args.only or "") in name}
    if args.families:
        (tree,) = args.trees
        sides = [(tree, "asyncio"), (tree, "trio")]
        header = "| job | asyncio CPU s | trio CPU s | trio/asyncio | median of rounds |"
    else:
        a, b = args.trees
        sides = [(a, "asyncio"), (b, "asyncio")]
        header = "| job | A CPU s | B CPU s | B/A | median of rounds |"
    calls = list(jobs.values())
    children = []
    if args.persistent:
        children = [_Persistent(tree, family, calls, args.repeat) for tree, family in sides]
    runs: dict[tuple[str, int], list[float]] = {}
    try:
        for round_number in range(args.rounds):
            for index, (name, call) in enumerate(jobs.items()):
                order = [0, 1] if round_number % 2 == 0 else [1, 0]
                for side in order:
                    if children:
                        seconds = children[side].time(index)
                    else:
                        tree, family = sides[side]
                        seconds = _time(tree, call, family, args.repeat)
                    runs.setdefault((name, side), []).append(seconds)
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for child in children:
            child.close()
    print(header)
    print("|---|---:|---:|---:|---:|")
    for name in jobs:
        first, second = runs[(name, 0)], runs[(name, 1)]
        median = statistics.median(b / a for a, b in zip(first, second, strict=True))
        best = min(second) / min(first)
        print(f"| {name} | {min(first):.4f} | {min(second):.4f} | {best:.3f} | {median:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
