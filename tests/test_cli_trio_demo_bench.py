"""``wsframed demo --loop trio`` and ``wsframed bench --loop trio``: real subprocesses.

The demo under trio prints the same transcript as under asyncio (the port and the
suggested commands' ``--loop trio`` aside); the bench runs its scenarios on
websockets.trio and trio's TCP streams (Framed over TCP: over anyio's) and names the
rows that exist on asyncio only.
No test asserts on a rate.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PORT = re.compile(r"127\.0\.0\.1:\d+")
CELL = re.compile(r"\d[\d.,]*[kM]? \(\d[\d.]*x\)")  # a rate and its ratio

pytestmark = pytest.mark.timeout(240)

NOT_ON_TRIO = (
    "Not on trio (shown as -): ad-hoc StreamReader (it is built on asyncio.StreamReader, "
    "which trio has no counterpart of)."
)


def wsframed(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m wsframed ARGS`` as a user would (bounded)."""
    return subprocess.run(
        [sys.executable, "-m", "wsframed", *args], cwd=ROOT, capture_output=True,
        text=True, encoding="utf-8", timeout=timeout,
    )


def rows(report: str, heading: str) -> list[str]:
    """The body rows of the table under ``### heading...`` (no header, no rule)."""
    part = report.split("\n### " + heading, 1)[1].split("\n### ", 1)[0]
    return [line for line in part.splitlines() if line.startswith("|")][2:]


def by_task(lines: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The transcript without the split section's task lines, the sender task's lines
    and the receiver task's lines (each in its order)."""
    tasks: dict[str, list[str]] = {"   sender": [], "   receiver": []}
    rest = []
    for line in lines:
        task = line.split(" task ", 1)[0]
        tasks.get(task, rest).append(line)
    return rest, tasks["   sender"], tasks["   receiver"]


def test_the_demo_prints_the_same_transcript_on_trio() -> None:
    on_asyncio = wsframed("demo")
    on_trio = wsframed("demo", "--loop", "trio")
    assert (on_asyncio.returncode, on_asyncio.stderr) == (0, "")
    assert (on_trio.returncode, on_trio.stderr) == (0, "")
    expected = PORT.sub("127.0.0.1:PORT", on_asyncio.stdout).splitlines()
    # The suggested commands name the loop the demo ran on.
    expected[-2:] = [line + " --loop trio" for line in expected[-2:]]
    printed = PORT.sub("127.0.0.1:PORT", on_trio.stdout).splitlines()
    # Section 5's two tasks interleave as the scheduler runs them, on either loop:
    # each task's own lines are in order, and nothing else moves.
    assert by_task(printed) == by_task(expected)
    assert re.findall(r"^== .*$", on_trio.stdout, re.M) == [
        "== 1. Lines, echoed (LinesCodec)",
        "== 2. msgpack request/response (MsgpackCodec)",
        "== 3. msgpack-RPC (wsframed.rpc.RpcPeer)",
        "== 4. CBOR items, echoed (CborCodec)",
        "== 5. Split halves: one task sends, another receives",
        "== 6. Oversized frames refused",
        "== 7. Close handshake",
    ]
    assert expected[-2:] == [
        "   wsframed serve --codec lines --echo --port 8765 --loop trio",
        "   wsframed connect ws://127.0.0.1:PORT --codec lines --loop trio",
    ]


def test_the_demo_on_trio_gives_up_at_its_timeout() -> None:
    done = wsframed("demo", "--loop", "trio", "--timeout", "0")
    assert done.returncode == 1
    assert done.stderr == "wsframed demo: error: did not finish within 0.0 s\n"
    assert done.stdout.startswith("wsframed demo: a server and a client in this process")


def test_bench_on_trio_measures_the_small_frames_and_names_what_it_cannot() -> None:
    done = wsframed("bench", "--loop", "trio", "--only", "small", "--codec", "msgpack",
                    "--codec", "lines", "--items", "300", "--repeat", "1")
    assert (done.returncode, done.stderr) == (0, "")
    out = done.stdout
    assert out.startswith("## wsframed bench (quick): best of 1 round on trio\n")
    lines = out.splitlines()
    assert re.fullmatch(r"Python .*, trio \d[\w.]*; .*", lines[2])
    assert lines[3].startswith(
        "Server and client tasks share one trio run (websockets.trio, trio's TCP streams)"
    )
    assert lines[5] == NOT_ON_TRIO
    assert lines[7] == "Framed over TCP on trio: Framed over anyio's TCP streams."
    against_limit = [row.split(" | ") for row in rows(out, "Small frames against the limit")]
    assert [row[:2] for row in against_limit] == [
        ["| msgpack, 28 B", "TCP + msgpack"], ["| lines, 100 B", "TCP + split"]
    ]
    for row in against_limit:  # the limit, then each mode against it
        assert re.fullmatch(r"\d[\d.]*[kM]?", row[2])
        cells = [*row[3:5], row[5].removesuffix(" |")]  # recv_many, async for, Framed/TCP
        assert [bool(CELL.fullmatch(cell)) for cell in cells] == [True, True, True]
    for row in rows(out, "Small frames against the code you would write"):
        cells = row.split(" | ")
        assert re.fullmatch(r"\d[\d.]*[kM]?", cells[1])  # naive, websockets.trio
        assert cells[2] == "-"  # ad-hoc StreamReader: asyncio only
        assert [bool(CELL.fullmatch(c)) for c in (cells[3], cells[4][:-2])] == [True, True]
    for row in rows(out, "The limits"):  # codec alone, TCP + plain, TCP + codec: all run
        assert all(re.fullmatch(r"\d[\d.]*[kM]?", cell) for cell in row[2:-2].split(" | ")[1:])


def test_bench_on_trio_runs_bulk_and_the_slow_reader() -> None:
    done = wsframed("bench", "--loop", "trio", "--only", "bulk", "--only", "memory",
                    "--repeat", "1")
    assert (done.returncode, done.stderr) == (0, "")
    out = done.stdout
    assert "Not on trio" not in out  # every bulk and memory row exists on trio
    bulk = [row.split(" | ") for row in rows(out, "Bulk: 32 MiB")]
    assert [row[0] for row in bulk] == [
        "| raw websockets send/recv", "| WsStream write+drain / read", "| raw TCP trio streams"
    ]
    for row in bulk:
        assert re.fullmatch(r"[\d,]+ MB/s", row[1])
    [memory] = rows(out, "Memory: a slow reader")
    assert re.fullmatch(r"\| 128 MiB \| [\d,]+ KiB \| 4 MiB \| [\d.]+ s \|", memory)


def test_bench_on_asyncio_is_unchanged_by_the_option() -> None:
    done = wsframed("bench", "--loop", "asyncio", "--only", "small", "--codec", "length",
                    "--items", "200", "--repeat", "1")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("## wsframed bench (quick): best of 1 round\n")
    assert "Not on trio" not in done.stdout
    [row] = rows(done.stdout, "Small frames against the code you would write")
    assert "-" not in row.split(" | ")[1:]  # the ad-hoc baseline ran


def test_bench_jobs_run_in_trio_over_websockets_trio(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: each job of ``--loop trio`` runs inside trio, over websockets.trio."""
    from dataclasses import replace

    import trio
    from websockets.trio.connection import Connection

    from wsframed.bench import QUICK, run, scenarios
    from wsframed.bench.workloads import ws_pair

    seen: list[tuple[str, bool, bool]] = []
    measure = scenarios.small_frames

    async def observed(workload: object, mode: str, count: int, batch: int = 0) -> float:
        pair_is_trio = False
        if mode == "send":
            async with ws_pair() as (client, server):
                pair_is_trio = isinstance(client, Connection) and isinstance(server, Connection)
        seen.append((mode, trio.lowlevel.in_trio_task(), pair_is_trio))
        return await measure(workload, mode, count, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(scenarios, "small_frames", observed)
    config = replace(QUICK, loop="trio", items=50, message_items=50, codecs=("length",),
                     repeat=1)
    results = run(config, sections=("small",))
    assert seen == [
        ("naive", True, False), ("send", True, True), ("send_all", True, False),
        ("recv_many", True, False), ("tcp_framed", True, False), ("plain_tcp", True, False),
        ("raw_tcp", True, False), ("codec", True, False),
    ]
    assert sorted(key[2] for key in results.best) == sorted(mode for mode, _, _ in seen)


def test_without_anyio_framed_over_tcp_is_left_out_on_trio_and_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    from dataclasses import replace

    from wsframed.bench import QUICK, Results, markdown, scenarios
    from wsframed.bench.suite import plan

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *rest: None if name == "anyio" else find_spec(name, *rest),
    )
    why = "under trio, Framed runs over anyio's TCP streams: pip install anyio"
    assert scenarios.unavailable("tcp_framed", "trio") == why
    assert scenarios.unavailable("tcp_framed", "asyncio") is None
    assert scenarios.unavailable("adhoc", "asyncio") is None
    config = replace(QUICK, loop="trio", codecs=("length",))
    assert [job.label for job in plan(config, ("small",))] == [
        "length naive", "length send", "length send_all", "length recv_many",
        "length plain_tcp", "length raw_tcp", "length codec",
    ]
    results = Results(config)
    results.best[("small", "length", "codec")] = 1.0
    results.units[("small", "length", "codec")] = 1
    assert markdown(results).splitlines()[5] == (
        f"Not on trio (shown as -): Framed over TCP ({why}); ad-hoc StreamReader (it is "
        "built on asyncio.StreamReader, which trio has no counterpart of)."
    )
