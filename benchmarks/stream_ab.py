"""A/B the WsStream hot path of two checkouts, interleaved in one run.

Measures, with the benchmark suite's own scenarios (``wsframed.bench``), the stream's
paths per message: small msgpack frames one ``send()`` each and ``send_all`` +
``recv_many``, lines frames, and bulk bytes through ``write``/``drain``/``read``. Each
job runs in a fresh subprocess, alternating between the two trees round by round, so
both see the same machine load; the best round of each counts::

    git worktree add /tmp/base main   # or: git archive BASE | tar -x -C /tmp/base
    python benchmarks/stream_ab.py /tmp/base . --rounds 5

Prints per job the best CPU seconds of each tree and the ratio B/A (below 1: B is
faster). CPU time, not wall time: on a shared machine the wall time mostly measures
the other processes. The children run with glibc's mmap threshold fixed
(``MALLOC_MMAP_THRESHOLD_``): left dynamic, where websockets' large buffers land
depends on everything allocated before them, and the bulk job moved by 10-35% between
two trees that differ by one unused import (or by nothing but their directory name).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

JOBS = {
    "msgpack send (1 message/frame)": "small_frames(WORKLOADS['msgpack'], 'send', 20000)",
    "msgpack send_all+recv_many": "small_frames(WORKLOADS['msgpack'], 'recv_many', 200000)",
    "lines send_all+iterate": "small_frames(WORKLOADS['lines'], 'send_all', 200000)",
    "bulk 256 MiB write/drain/read": "bulk_wsstream(256 * 1024 * 1024)",
}

# The child reports the CPU time of the transfer (both ends run in it), not the wall
# time the scenario returns: on a shared machine the wall time measures the load.
CHILD = """
import asyncio, os, time
import wsframed
# The tree under test, not another copy on the path (python -c puts the current
# directory first: run from a checkout, both sides would measure that checkout).
assert os.path.dirname(os.path.dirname(wsframed.__file__)) == {tree!r}, wsframed.__file__
from wsframed.bench.scenarios import small_frames, bulk_wsstream
from wsframed.bench.workloads import WORKLOADS
started = time.process_time()
asyncio.run({call})
print(time.process_time() - started)
"""


def _time(tree: str, call: str) -> float:
    tree = os.path.abspath(tree)
    env = {
        "MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
        **os.environ,
        "PYTHONPATH": tree,
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(call=call, tree=tree)],
        env=env,
        cwd=tree,  # python -c imports from the current directory first
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(out.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="tree A (the baseline)")
    parser.add_argument("b", help="tree B (the change)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", metavar="TEXT", help="only the jobs whose name has TEXT")
    args = parser.parse_args()
    jobs = {name: call for name, call in JOBS.items() if (args.only or "") in name}
    best: dict[tuple[str, str], float] = {}
    for round_number in range(args.rounds):
        for name, call in jobs.items():
            order = (args.a, args.b) if round_number % 2 == 0 else (args.b, args.a)
            for tree in order:
                seconds = _time(tree, call)
                key = (name, tree)
                best[key] = min(best.get(key, seconds), seconds)
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    print("| job | A CPU s | B CPU s | B/A |")
    print("|---|---:|---:|---:|")
    for name in jobs:
        a, b = best[(name, args.a)], best[(name, args.b)]
        print(f"| {name} | {a:.4f} | {b:.4f} | {b / a:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
