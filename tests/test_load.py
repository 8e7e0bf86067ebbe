"""Load: many concurrent connections, every frame accounted for; a slow consumer.

The default suite runs 500 connections x 100 msgpack frames each way (100,000 frames)
in a few seconds. ``pytest -m soak`` runs the full 500 x 1,000 each way (1,000,000
frames), once batched and once one WebSocket message per frame, plus a churn test
that opens and breaks connections for a minute checking for leaks.

Each frame carries (side, connection, sequence number, payload); both ends check the
sequence and hash the encoded frames they sent and received, and the hashes must
match across the connection. Everything runs in one process, so 500 connections are
1,000 sockets: the soft limit on open files is raised when needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import os
import random
import resource
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

import wsframed
from wsframed import ConnectionClosed, EndOfStream, Framed, WsFramedError
from wsframed.codecs import LengthPrefixedCodec, MsgpackCodec

from .peers import KiB, MiB, RawWsClient, reset, traced


def raise_open_file_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE to ``needed`` (within the hard limit), or skip.

    Under ``CI=true`` a hard limit too low is a failure, not a skip: CI must run the
    load tests (raise the limit with ``ulimit -Hn`` before the run).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        message = f"needs {needed} open files; the hard limit is {hard}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: a load test may not skip)")
        pytest.skip(message)
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def peak_rss_mib() -> float:
    """The process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def make_frame(side: str, conn: int, seq: int) -> list[Any]:
    """A frame whose payload size varies with the connection and the sequence."""
    return [side, conn, seq, bytes([seq % 256]) * (16 + (conn * 7 + seq * 13) % 200)]


@dataclass
class Tally:
    """What one end of one connection sent and received."""

    received: int = 0
    received_hash: str = ""
    sent_hash: str = ""


async def exchange(
    framed: Framed[Any], codec: MsgpackCodec, side: str, conn: int, frames: int, batched: bool
) -> Tally:
    """Send ``frames`` frames while receiving the peer's ``frames``; tally both."""
    peer_side = "s" if side == "c" else "c"
    sent = hashlib.sha256()
    got = hashlib.sha256()
    tally = Tally()

    async def send_side() -> None:
        rng = random.Random(f"{side}{conn}")
        seq = 0
        while seq < frames:
            batch = rng.randint(1, 32) if batched else 1
            for _ in range(min(batch, frames - seq)):
                item = make_frame(side, conn, seq)
                sent.update(codec.encode(item))
                framed.feed(item)
                seq += 1
            await framed.flush()

    async def receive_side() -> None:
        while tally.received < frames:
            for item in await framed.recv_many():
                assert item[:3] == [peer_side, conn, tally.received], item[:3]
                got.update(codec.encode(item))
                tally.received += 1

    await asyncio.gather(send_side(), receive_side())
    tally.sent_hash = sent.hexdigest()
    tally.received_hash = got.hexdigest()
    return tally


async def run_load(connections: int, frames: int, *, batched: bool) -> float:
    """Run the exchange on ``connections`` concurrent connections; return seconds."""
    raise_open_file_limit(2 * connections + 256)
    codec = MsgpackCodec()
    server_tallies: dict[int, Tally] = {}
    client_tallies: dict[int, Tally] = {}
    handler_errors: list[BaseException] = []

    async def handler(framed: Framed[Any]) -> None:
        try:
            _, conn = await framed.recv()
            server_tallies[conn] = await exchange(framed, codec, "s", conn, frames, batched)
            with pytest.raises(EndOfStream):  # and not one frame more
                await framed.recv()
        except BaseException as exc:
            handler_errors.append(exc)
            raise

    async def client(url: str, conn: int) -> None:
        async with wsframed.connect(url, codec, open_timeout=60) as framed:
            await framed.send(["hello", conn])
            client_tallies[conn] = await exchange(framed, codec, "c", conn, frames, batched)

    fds_before = open_fds()
    async with wsframed.serve(handler, "127.0.0.1", 0, codec=codec, backlog=1024) as server:
        url = f"ws://127.0.0.1:{server.port}"
        started = time.monotonic()
        await asyncio.gather(*(client(url, conn) for conn in range(connections)))
        async with asyncio.timeout(30):
            while len(server_tallies) + len(handler_errors) < connections:
                await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
    assert handler_errors == []
    assert sorted(client_tallies) == sorted(server_tallies) == list(range(connections))
    for conn in range(connections):
        client_tally, server_tally = client_tallies[conn], server_tallies[conn]
        assert client_tally.received == server_tally.received == frames
        assert client_tally.sent_hash == server_tally.received_hash
        assert server_tally.sent_hash == client_tally.received_hash
    await asyncio.sleep(0.1)
    if fds_before >= 0:
        assert open_fds() <= fds_before + 8  # every socket was closed
    return elapsed


async def test_500_connections_exchange_100_msgpack_frames_each_way() -> None:
    elapsed = await asyncio.wait_for(run_load(500, 100, batched=True), 50)
    print(
        f"500 connections x 100 frames each way (100,000 frames): {elapsed:.1f}s, "
        f"process peak RSS {peak_rss_mib():.0f} MiB"
    )


@pytest.mark.soak
@pytest.mark.timeout(600)
async def test_soak_500_connections_exchange_1000_msgpack_frames_each_way() -> None:
    elapsed = await asyncio.wait_for(run_load(500, 1000, batched=True), 300)
    print(
        f"500 connections x 1,000 frames each way (1,000,000 frames): {elapsed:.1f}s, "
        f"process peak RSS {peak_rss_mib():.0f} MiB"
    )


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_soak_500_connections_1000_frames_each_way_one_message_per_frame() -> None:
    elapsed = await asyncio.wait_for(run_load(500, 1000, batched=False), 600)
    print(
        f"500 x 1,000 each way, one message per frame (1,000,000 messages): {elapsed:.1f}s, "
        f"process peak RSS {peak_rss_mib():.0f} MiB"
    )


# A slow consumer ------------------------------------------------------------------


async def test_a_slow_consumer_does_not_grow_server_memory() -> None:
    """The handler sends 16 KiB frames as fast as it can to a client that stops
    reading, then reads slowly, then at full speed. While the client lags, the
    handler is held in send() by backpressure and traced memory stays flat; in the
    end every frame arrives, in order."""
    codec = LengthPrefixedCodec()
    total = 2000  # 32 MiB in all
    chunk = 16 * KiB
    progress = {"sent": 0}

    async def handler(framed: Framed[Any]) -> None:
        for seq in range(total):
            await framed.send(seq.to_bytes(4, "big") + bytes(chunk - 4))
            progress["sent"] = seq + 1

    async with wsframed.serve(handler, "127.0.0.1", 0, codec=codec) as server:
        framed = await wsframed.connect(f"ws://127.0.0.1:{server.port}", codec, max_queue=4)
        try:
            tracemalloc.start()
            try:
                await asyncio.sleep(0.3)  # the client reads nothing
                stalled_at = progress["sent"]
                level = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                await asyncio.sleep(0.7)
                current, peak = tracemalloc.get_traced_memory()
                assert progress["sent"] == stalled_at  # held by backpressure
                assert stalled_at < total // 2
                assert current - level < 512 * KiB  # flat
                assert peak - level < 1 * MiB
                # Slow reading: one frame every 2 ms for half a second.
                seq = 0
                for _ in range(250):
                    frame = await asyncio.wait_for(framed.recv(), 5)
                    assert int.from_bytes(frame[:4], "big") == seq
                    seq += 1
                    await asyncio.sleep(0.002)
                current, peak = tracemalloc.get_traced_memory()
                assert peak - level < 2 * MiB, peak - level
            finally:
                tracemalloc.stop()
            async with asyncio.timeout(30):
                while seq < total:
                    frame = await framed.recv()
                    assert int.from_bytes(frame[:4], "big") == seq
                    seq += 1
            print(
                f"slow consumer: server held at {stalled_at} frames "
                f"({stalled_at * chunk // KiB} KiB in flight), traced growth "
                f"{(current - level) // KiB} KiB, peak {(peak - level) // KiB} KiB"
            )
        finally:
            await framed.aclose()


# Churn (soak) ------------------------------------------------------------------------


@pytest.mark.soak
@pytest.mark.timeout(600)
async def test_soak_churn_of_good_bad_and_broken_connections_leaks_nothing() -> None:
    """For a minute, rounds of 100 concurrent connections: well-behaved exchanges,
    hostile frames, resets mid-frame, vanishing clients, failing handlers. After
    each round the server still serves; at the end no socket, task or memory leaked.
    """
    raise_open_file_limit(1024)
    codec = MsgpackCodec(max_frame_size=64 * KiB)
    duration = float(os.environ.get("WSFRAMED_SOAK_SECONDS", "60"))

    async def handler(framed: Framed[Any]) -> None:
        async for item in framed:
            if item == "raise":
                raise RuntimeError("handler failure (expected)")
            await framed.send(item)

    async def well_behaved(url: str, rng: random.Random) -> None:
        async with wsframed.connect(url, codec) as framed:
            for n in range(rng.randint(1, 50)):
                item = [n, "x" * rng.randint(0, 1000)]
                await framed.send(item)
                assert await framed.recv() == item

    async def hostile(url: str, rng: random.Random) -> None:
        attack = rng.choice([b"\xc6\xff\xff\xff\xff", b"\x91" * 2000, b"\xc1", b"\xdd" * 5])
        async with ws_connect(url, compression=None) as ws:
            await ws.send(attack)
            with contextlib.suppress(WsConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)

    async def resetting(url: str, rng: random.Random) -> None:
        port = int(url.rsplit(":", 1)[1])
        peer = await RawWsClient.connect(port)
        peer.send(2, codec.encode([1, 2, 3])[: rng.randint(1, 3)])
        await asyncio.sleep(rng.random() * 0.01)
        reset(peer.writer.transport)

    async def raising(url: str, rng: random.Random) -> None:
        async with wsframed.connect(url, codec) as framed:
            await framed.send("raise")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(framed.recv(), 5)

    async def vanishing(url: str, rng: random.Random) -> None:
        framed = await wsframed.connect(url, codec)
        await framed.send([1])
        stream = framed.stream
        assert isinstance(stream, wsframed.WsStream)
        stream.get_extra_info("connection").transport.abort()
        with contextlib.suppress(WsFramedError):
            await framed.recv()

    behaviours: list[Callable[[str, random.Random], Any]] = [
        well_behaved,
        well_behaved,
        hostile,
        resetting,
        raising,
        vanishing,
    ]
    rng = random.Random(2024)
    # pytest keeps every log record, with its traceback (and so the frames and the
    # connections they reference): that would look like a leak. Silence the loggers.
    quiet = contextlib.ExitStack()
    for name in ("wsframed", "websockets"):
        quiet.enter_context(_silenced(logging.getLogger(name)))
    with quiet:
        await _churn(handler, behaviours, codec, rng, duration)


@contextlib.contextmanager
def _silenced(logger: logging.Logger) -> Iterator[None]:
    saved = logger.propagate, logger.level
    logger.propagate = False
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.propagate, logger.level = saved[0], saved[1]


async def _churn(
    handler: Callable[[Framed[Any]], Any],
    behaviours: list[Callable[[str, random.Random], Any]],
    codec: MsgpackCodec,
    rng: random.Random,
    duration: float,
) -> None:
    async def well_behaved(url: str, rng: random.Random) -> None:
        await behaviours[0](url, rng)

    async with wsframed.serve(
        handler, "127.0.0.1", 0, codec=codec, close_timeout=1, backlog=512
    ) as server:
        url = f"ws://127.0.0.1:{server.port}"
        await well_behaved(url, rng)  # warm up imports and caches before measuring
        await asyncio.sleep(0.2)
        gc.collect()
        fds_before = open_fds()
        tasks_before = len(asyncio.all_tasks())
        with traced() as peak:
            tracemalloc_level = tracemalloc.get_traced_memory()[0]
            rounds = 0
            deadline = time.monotonic() + duration
            while time.monotonic() < deadline:
                jobs = [
                    rng.choice(behaviours)(url, random.Random(rng.random())) for _ in range(100)
                ]
                await asyncio.wait_for(asyncio.gather(*jobs), 60)
                rounds += 1
            await well_behaved(url, rng)
            async with asyncio.timeout(10):
                while server.ws_server.connections:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            gc.collect()  # exceptions and their tracebacks form reference cycles
            growth = tracemalloc.get_traced_memory()[0] - tracemalloc_level
        fds_after = open_fds()
        tasks_after = len(asyncio.all_tasks())
    print(
        f"churn: {rounds} rounds x 100 connections in {duration:.0f}s; "
        f"traced growth {growth // KiB} KiB, peak {peak.bytes // MiB} MiB; "
        f"fds {fds_before}->{fds_after}; tasks {tasks_before}->{tasks_after}"
    )
    assert rounds >= 1
    assert fds_after <= fds_before + 4
    assert tasks_after <= tasks_before + 2
    assert growth < 4 * MiB


# The load tests cannot hide in CI ----------------------------------------------------


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), ("", "1 skipped")])
def test_a_load_test_skips_for_a_low_open_file_limit_only_outside_ci(
    ci: str, outcome: str
) -> None:
    """Under CI=true, a hard limit of 512 open files fails the 500-connection test."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    test = "tests/test_load.py::test_500_connections_exchange_100_msgpack_frames_each_way"
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(root)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", test],
        cwd=root, env=env, preexec_fn=low_limit, capture_output=True, text=True, timeout=120,
    )
    assert f"{outcome} in " in run.stdout, run.stdout + run.stderr
    reason = "needs 1256 open files; the hard limit is 512"
    assert reason + (" (CI=true: a load test may not skip)" if ci else "") in run.stdout
