"""Adversarial cost benchmark: what the worst frame a peer can send costs each codec.

Run on demand from a checkout (nothing here runs in the test suite)::

    python benchmarks/adversarial.py                 # 64 KiB, 256 KiB, 1 MiB; best of 3
    python benchmarks/adversarial.py --sizes 65536 --repeat 5 --codec cbor

For every codec it takes the worst-case inputs of ``tests/codec_worst_cases.py`` and
``tests/cbor_worst_cases.py`` (the same generators the test suite uses to prove the
outcome of each shape) and a benign input of the same size, feeds each to a fresh
decoder in 64 KiB pieces (as WebSocket messages arrive) and iterates it the way a
forgiving consumer does (``tests.codec_worst_cases.consume``): it catches every
``DecodeError`` / ``FrameTooLarge`` and carries on; a decoder that cannot
resynchronise re-raises its stored error, which the consumer tries 100 more times.
It prints a markdown
table: milliseconds per MiB, the ratio to the benign input of the same size, and
how the time per MiB grows from the smallest size to the largest (1.0 is linear).

Targets (issue 14): no shape over 10x its benign input; time linear in size.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from tests import cbor_worst_cases, codec_worst_cases, msgspec_worst_cases
from tests.codec_worst_cases import consume
from wsframed.codecs import CborCodec

CODECS = (*codec_worst_cases.CODECS, "cbor", *msgspec_worst_cases.CODECS)
SIZES = (64 * 1024, 256 * 1024, 1024 * 1024)
PIECE = 64 * 1024
MIB = 1024 * 1024


def shapes(codec: str, size: int) -> dict[str, bytes]:
    """Every worst-case input for ``codec`` at about ``size`` bytes, and ``benign``."""
    if codec == "cbor":
        return cbor_worst_cases.cbor_worst_cases(size)
    if codec in msgspec_worst_cases.CODECS:
        return msgspec_worst_cases.worst_cases(codec, size)
    return codec_worst_cases.worst_cases(codec, size)


def codec_for(codec: str) -> Any:
    """The codec with the settings its shapes aim at."""
    if codec == "cbor":
        return CborCodec()
    if codec in msgspec_worst_cases.CODECS:
        return msgspec_worst_cases.codec_for(codec)
    return codec_worst_cases.codec_for(codec)


def chunk_for(codec: str, shape: str) -> int:
    """How a shape arrives: the generator's chunk size, else 64 KiB messages."""
    if codec == "cbor":
        return PIECE
    if codec in msgspec_worst_cases.CODECS:
        return msgspec_worst_cases.feed_chunk(codec, shape) or PIECE
    return codec_worst_cases.feed_chunk(codec, shape) or PIECE


def best_time(codec: str, shape: str, data: bytes, repeat: int) -> tuple[float, int, int]:
    """Best CPU time of ``repeat`` runs, with the GC on (a live heap).

    CPU time of this process, not wall time: on a shared machine it leaves out what
    other processes took (decoding never waits, so on an idle one the two agree).
    """
    best = float("inf")
    frames = errors = 0
    chunk = chunk_for(codec, shape)
    for _ in range(repeat):
        decoder = codec_for(codec).decoder()
        gc.collect()
        started = time.process_time()
        frames, errors = consume(decoder, data, chunk, retries=100)
        best = min(best, time.process_time() - started)
    return best, frames, errors


def run(codecs: list[str], sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    """Measure every shape of every codec at every size."""
    rows: list[dict[str, Any]] = []
    for name in codecs:
        per_size = {size: shapes(name, size) for size in sizes}
        for shape in per_size[sizes[0]]:
            row: dict[str, Any] = {"codec": name, "shape": shape}
            for size in sizes:
                data = per_size[size][shape]
                benign = per_size[size]["benign"]
                seconds, frames, errors = best_time(name, shape, data, repeat)
                benign_seconds = best_time(name, "benign", benign, repeat)[0]
                per_mib = seconds / max(len(data), 1) * MIB * 1e3
                benign_per_mib = benign_seconds / max(len(benign), 1) * MIB * 1e3
                row[size] = {
                    "bytes": len(data),
                    "ms_per_mib": per_mib,
                    "ratio": per_mib / benign_per_mib if benign_per_mib else float("nan"),
                    "frames": frames,
                    "errors": errors,
                }
                sys.stderr.write(
                    f"{name:8} {shape:28} {len(data):>8} B  {per_mib:9.1f} ms/MiB"
                    f"  {row[size]['ratio']:6.2f}x benign  {frames} frames {errors} errors\n"
                )
            first, last = row[sizes[0]]["ms_per_mib"], row[sizes[-1]]["ms_per_mib"]
            row["growth"] = last / first if first else float("nan")
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], sizes: list[int], repeat: int) -> str:
    """The table: ms per MiB and the ratio to benign at each size, and the growth."""
    labels = [f"{size // 1024} KiB" for size in sizes]
    head = ["codec", "shape"]
    for label in labels:
        head += [f"{label} ms/MiB", f"{label} vs benign"]
    head.append(f"growth {labels[0]} -> {labels[-1]}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    worst = 0.0
    for row in rows:
        cells = [row["codec"], row["shape"]]
        for size in sizes:
            cell = row[size]
            cells += [f"{cell['ms_per_mib']:.1f}", f"{cell['ratio']:.2f}x"]
            if row["shape"] != "benign":
                worst = max(worst, cell["ratio"])
        cells.append(f"{row['growth']:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    versions = _versions()
    lines.append("")
    lines.append(
        f"Best of {repeat}, GC on, fed in {PIECE // 1024} KiB pieces; worst ratio to "
        f"benign: {worst:.2f}x. {versions}"
    )
    return "\n".join(lines) + "\n"


def _versions() -> str:
    import platform
    from importlib.metadata import version

    parts = [f"Python {platform.python_version()}"]
    parts += [f"{lib} {version(lib)}" for lib in ("msgpack", "cbor2", "msgspec")]
    return ", ".join(parts) + "."


def bytes_per_message(count: int = 20_000, repeat: int = 3) -> str:
    """What a one-byte WebSocket message costs: websockets alone, and through wsframed.

    ``BytesCodec`` yields each chunk it is fed as a frame, so a peer that sends one
    byte per message makes one frame per byte: hundreds of times a benign 64 KiB
    message per byte. Over a WebSocket each such byte is a whole message, which the
    peer pays at least 7 wire bytes for (2 header, 4 mask, 1 payload) and websockets
    pays its own per-message parsing for: this measures both sides of that bound.
    (A ``WsStream`` read takes every small message already queued, so a frame may
    hold several of them: the receiving loop counts bytes.)
    """
    import asyncio

    from tests.conftest import ws_pair
    from wsframed import Framed, WsStream
    from wsframed.codecs import BytesCodec

    async def one(through_wsframed: bool) -> float:
        async with ws_pair() as (client, server):
            receiver: Any = Framed(WsStream(server), BytesCodec()) if through_wsframed else None

            async def send() -> None:
                for _ in range(count):
                    await client.send(b"x")

            async def receive() -> None:
                if receiver is None:
                    for _ in range(count):
                        await server.recv()
                else:  # a read may take several queued messages: count bytes
                    received = 0
                    while received < count:
                        received += len(await receiver.recv())

            started = time.process_time()
            await asyncio.gather(send(), receive())
            return (time.process_time() - started) / count * 1e6

    async def both() -> tuple[float, float]:
        best = [float("inf"), float("inf")]
        for _ in range(repeat):
            for index in (0, 1):
                best[index] = min(best[index], await one(bool(index)))
        return best[0], best[1]

    alone, framed = asyncio.run(both())
    return (
        f"One-byte messages, sender and receiver in one process (CPU time, best of {repeat}):"
        f" websockets alone {alone:.1f} us per message, through Framed(BytesCodec)"
        f" {framed:.1f} us: wsframed adds {framed - alone:.1f} us"
        f" ({(framed - alone) / alone:.0%} of websockets' own).\n"
    )


def peek_end_cost(calls: int = 1000) -> str:
    """What ``at_eof()`` costs with many empty binary messages queued (websockets backend).

    A peer's empty messages carry no byte, so ``at_eof()`` and ``read(0)`` look past
    them in websockets' queue for the end of the connection. websockets parses a whole
    received chunk before ``max_queue`` pauses reading, so one write of 6-byte empty
    frames queues thousands (``max_queue=None`` here, to queue more). Prints the CPU
    time of the first call (which scans the queue) and the mean of ``calls`` more,
    with the connection open and nothing but empty messages queued.
    """
    import asyncio

    from tests.conftest import wait_for, ws_pair
    from wsframed import WsStream

    async def one(count: int) -> tuple[float, float]:
        async with ws_pair(server_options={"max_queue": None}) as (client, server):
            stream = WsStream(server)
            for _ in range(count):
                client.protocol.send_binary(b"")
            client.send_data()
            frames = server.recv_messages.frames.queue
            await wait_for(lambda: len(frames) >= count, 60)
            started = time.process_time()
            stream.at_eof()
            first = time.process_time() - started
            started = time.process_time()
            for _ in range(calls):
                stream.at_eof()
            return first * 1e6, (time.process_time() - started) / calls * 1e6

    async def every() -> str:
        lines = []
        for count in (1_000, 10_000, 100_000):
            first, rest = await one(count)
            lines.append(
                f"{count:>7} empty messages queued: first at_eof() {first:8.1f} us,"
                f" then {rest:8.2f} us per call (mean of {calls})\n"
            )
        return "".join(lines)

    return asyncio.run(every())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", action="append", choices=CODECS, help="repeatable")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), metavar="BYTES")
    parser.add_argument("--repeat", type=int, default=3, metavar="N", help="best of N")
    parser.add_argument("--output", metavar="FILE", help="also write the table to FILE")
    parser.add_argument(
        "--bytes-per-message",
        action="store_true",
        help="measure one-byte WebSocket messages instead (see bytes_per_message)",
    )
    parser.add_argument(
        "--peek-end",
        action="store_true",
        help="measure at_eof() behind queued empty WebSocket messages (see peek_end_cost)",
    )
    args = parser.parse_args(argv)
    if args.peek_end:
        sys.stdout.write(peek_end_cost())
        return 0
    if args.bytes_per_message:
        sys.stdout.write(bytes_per_message(repeat=args.repeat))
        return 0
    codecs = args.codec or list(CODECS)
    sizes = sorted(args.sizes)
    table = markdown(run(codecs, sizes, args.repeat), sizes, args.repeat)
    sys.stdout.write(table)
    if args.output:
        Path(args.output).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
