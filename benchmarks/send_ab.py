"""A/B of ``Framed.send()`` per item over asyncio TCP, this checkout against a revision.

Run on demand from a checkout (nothing here runs in the test suite)::

    python benchmarks/send_ab.py 7e26b1b                 # B = this checkout, A = 7e26b1b
    python benchmarks/send_ab.py HEAD                    # A/A when the tree is committed
    python benchmarks/send_ab.py HEAD~1 --count 20000 --rounds 15

Both packages are imported into one process (the revision's as ``wsframed_ab``, as
``benchmarks/hotpath.py --against`` does); each round sends ``--count`` small msgpack
items one ``await send(item)`` at a time over ``Framed.from_streams`` on 127.0.0.1,
the other end taking them with ``recv_many``, A and B alternating round by round.
Time is the process's CPU time. Printed: the best round of each, their ratio, and
the median of the rounds' own ratios (each B against the A run next to it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hotpath  # this directory's module (path set above)


async def one_round(package: ModuleType, count: int) -> float:
    client, server, close = await hotpath.tcp_pair()
    sender = package.Framed.from_streams(*client, hotpath.codec_of(package, "msgpack"))
    receiver = package.Framed.from_streams(*server, hotpath.codec_of(package, "msgpack"))
    items = [hotpath.rpc_item(i) for i in range(count)]

    async def send() -> None:
        send_one = sender.send
        for item in items:
            await send_one(item)

    try:
        started = time.process_time()
        await asyncio.gather(send(), hotpath.recv_many(receiver, count))
        return time.process_time() - started
    finally:
        close()


async def run(packages: dict[str, ModuleType], count: int, rounds: int) -> None:
    times: dict[str, list[float]] = {label: [] for label in packages}
    labels = list(packages)
    for round_number in range(rounds):
        for label in labels if round_number % 2 == 0 else labels[::-1]:
            times[label].append(await one_round(packages[label], count))
    a, b = labels
    ratios = [y / x for x, y in zip(times[a], times[b], strict=True)]
    print(f"Framed.send() per item over TCP: {count} msgpack items, {rounds} rounds, CPU s")
    print(f"| {a} best | {b} best | {b}/{a} best | median of rounds |")
    print("|---:|---:|---:|---:|")
    best_a, best_b = min(times[a]), min(times[b])
    print(
        f"| {best_a:.4f} | {best_b:.4f} | {best_b / best_a:.3f} | "
        f"{statistics.median(ratios):.3f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the git revision measured as A")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    import wsframed

    with tempfile.TemporaryDirectory() as tmp:
        packages = {args.rev: hotpath.load_revision(args.rev, Path(tmp)), "this": wsframed}
        asyncio.run(run(packages, args.count, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
