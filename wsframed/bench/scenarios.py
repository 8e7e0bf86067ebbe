"""The measurements: each function runs one transfer and returns its duration.

Every network scenario runs a sender task and a receiver task on the running event
loop, over a fresh loopback connection, and times from the first send to the last
item received (the items are built before the clock starts). The baselines are the
code a user would write without wsframed:

``naive``
    one websockets message per item: ``await ws.send(msgpack.packb(x))`` and
    ``msgpack.unpackb(await ws.recv())``.
``adhoc``
    a hand-made stream: the sender joins length-prefixed frames (lines for the
    line-based codecs) into 64 KiB messages; the receiver feeds every message into an
    ``asyncio.StreamReader`` (``feed_data``) and reads frames with ``readexactly``
    (``readline``).
``plain_tcp``
    asyncio streams with coalesced 64 KiB writes, and the plain library on each
    side (a reused ``msgpack.Packer`` and ``msgpack.Unpacker``, ``split(b"\\n")``, ``struct``,
    ``cbor2``, ``json``): nothing of wsframed. The physical limit on loopback, the
    figure wsframed's rates are divided by.
``raw_tcp``
    the same with wsframed's codec instead of the plain library: what the codec
    layer costs on its own.
``codec``
    no I/O at all: encode the items with wsframed's codec, cut the bytes into
    64 KiB chunks, decode them. No transport can beat it: for CBOR and JSON Lines,
    whose libraries cost more than the I/O, this is the bound.

The decoding scenario (``decode_pieces``) needs no network and the memory
scenario (``slow_reader_memory``) reports traced bytes instead of a duration.

Every scenario runs on either loop family (``wsframed bench --loop trio``: websockets.trio
and trio's TCP streams) except those ``unavailable()`` names, with the reason.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import importlib.util
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from ..framed import Framed
from ..loops import current_shell, gather, in_trio
from ..stream import WsStream
from .workloads import Workload, framed_tcp_pair, tcp_pair, ws_pair

clock: Callable[[], float] = time.perf_counter
"""What every scenario times with: wall-clock by default; ``suite.run`` sets
``time.process_time`` for a run in CPU time (``Config.cpu_time``)."""

__all__ = [
    "CHUNK",
    "bulk_raw_tcp",
    "bulk_websockets",
    "bulk_wsstream",
    "decode_pieces",
    "frame_pieces",
    "keep_freed_memory",
    "slow_reader_memory",
    "small_frames",
    "unavailable",
]

CHUNK = 64 * 1024
"""The message / write size of the bulk and batching scenarios."""

SMALL_MODES = (
    "naive",
    "adhoc",
    "send",
    "send_all",
    "recv_many",
    "batch",
    "tcp_framed",
    "plain_tcp",
    "raw_tcp",
    "codec",
)
"""The small-frame scenarios; see ``small_frames``."""



def unavailable(mode: str, loop: str) -> str | None:
    """Why small-frame ``mode`` cannot run on ``loop`` ("asyncio" or "trio"), or None.

    Under trio, ``tcp_framed`` is Framed over anyio's TCP streams (Framed takes anyio's
    streams, not trio's own ``SocketStream``), so it needs anyio installed."""
    if loop != "trio":
        return None
    if mode == "adhoc":
        return "it is built on asyncio.StreamReader, which trio has no counterpart of"
    if mode == "tcp_framed" and importlib.util.find_spec("anyio") is None:
        return "under trio, Framed runs over anyio's TCP streams: pip install anyio"
    return None


async def _timed(sender: Awaitable[Any], receiver: Awaitable[Any]) -> float:
    """Run sender and receiver concurrently; return the seconds until both are done."""
    start = clock()
    await gather(lambda: sender, lambda: receiver)
    return clock() - start


async def small_frames(workload: Workload, mode: str, count: int, batch: int = 0) -> float:
    """Send ``count`` small items client to server; return the seconds it took.

    ``mode`` is one of ``SMALL_MODES``:

    - ``naive``, ``adhoc``, ``plain_tcp``, ``raw_tcp``, ``codec``: the baselines (see
      the module docs);
    - ``send``: ``await framed.send(x)`` per item, ``async for`` on the other side;
    - ``send_all``: ``await framed.send_all(items)``, ``async for``;
    - ``recv_many``: ``send_all``, and ``recv_many()`` on the other side;
    - ``batch``: ``feed()`` ``batch`` items then ``await flush()``, ``recv_many()``;
    - ``tcp_framed``: ``send_all`` and ``recv_many`` with ``Framed.from_streams`` over
      asyncio TCP streams (under trio: ``Framed`` over anyio's TCP streams).
    """
    items = [workload.item(i) for i in range(count)]
    # The items are the benchmark's scaffolding: frozen, the garbage collector does
    # not walk them again and again (it does walk everything the transfer creates).
    # Without this, 100,000 live dicts make each collection slower, which skews the
    # batched transfers (many allocations per second) far more than the baselines.
    gc.collect()
    gc.freeze()
    try:
        return await _small_frames(workload, mode, items, batch)
    finally:
        gc.unfreeze()


async def _small_frames(workload: Workload, mode: str, items: list[Any], batch: int) -> float:
    count = len(items)
    why = unavailable(mode, "trio" if in_trio() else "asyncio")
    if why is not None:
        raise ValueError(f"mode {mode!r} cannot run here: {why}")
    if mode == "codec":
        return _codec_only(workload, items)
    if mode == "raw_tcp":
        codec = workload.codec()
        return await _raw_tcp_frames(codec.encode, _codec_receiver(codec), items)
    if mode == "plain_tcp":
        return await _raw_tcp_frames(workload.plain_frame, workload.plain_receiver(), items)
    if mode == "tcp_framed":
        async with framed_tcp_pair(workload.codec) as (sender, receiver):
            return await _timed(sender.send_all(items), _recv_many(receiver, count))
    async with ws_pair() as (client, server):
        if mode == "naive":
            return await _naive(workload, client, server, items)
        if mode == "adhoc":
            return await _adhoc(workload, client, server, items)
        framed_client = Framed(WsStream(client), workload.codec())
        framed_server = Framed(WsStream(server), workload.codec())
        if mode == "send":
            return await _timed(_send_each(framed_client, items), _iterate(framed_server, count))
        if mode == "send_all":
            return await _timed(framed_client.send_all(items), _iterate(framed_server, count))
        if mode == "recv_many":
            return await _timed(framed_client.send_all(items), _recv_many(framed_server, count))
        if mode == "batch":
            return await _timed(
                _send_batches(framed_client, items, batch), _recv_many(framed_server, count)
            )
    raise ValueError(f"unknown mode {mode!r}; expected one of {SMALL_MODES}")


async def _send_each(framed: Framed[Any], items: list[Any]) -> None:
    send = framed.send
    for item in items:
        await send(item)


async def _send_batches(framed: Framed[Any], items: list[Any], batch: int) -> None:
    feed = framed.feed
    flush = framed.flush
    for start in range(0, len(items), batch):
        for item in items[start : start + batch]:
            feed(item)
        await flush()


async def _iterate(framed: Framed[Any], count: int) -> None:
    received = 0
    async for _ in framed:
        received += 1
        if received == count:
            return


async def _recv_many(framed: Framed[Any], count: int) -> None:
    received = 0
    recv_many = framed.recv_many
    while received < count:
        received += len(await recv_many())


async def _naive(workload: Workload, client: Any, server: Any, items: list[Any]) -> float:
    to_message = workload.to_message
    from_message = workload.from_message

    async def send() -> None:
        for item in items:
            await client.send(to_message(item))

    async def receive() -> None:
        for _ in range(len(items)):
            from_message(await server.recv())

    return await _timed(send(), receive())


async def _adhoc(workload: Workload, client: Any, server: Any, items: list[Any]) -> float:
    to_message = workload.to_message
    from_message = workload.from_message
    line_based = workload.line_based
    reader = asyncio.StreamReader(limit=1024 * 1024)

    async def send() -> None:
        parts: list[bytes] = []
        size = 0
        for item in items:
            data = to_message(item)
            if line_based:
                parts.append(data + b"\n")
            else:
                parts.append(len(data).to_bytes(4, "big") + data)
            size += len(data) + 4
            if size >= CHUNK:
                await client.send(b"".join(parts))
                parts.clear()
                size = 0
        if parts:
            await client.send(b"".join(parts))

    async def pump() -> None:
        while True:
            reader.feed_data(await server.recv())

    async def receive() -> None:
        pumping = asyncio.create_task(pump())
        try:
            if line_based:
                for _ in range(len(items)):
                    from_message((await reader.readline())[:-1])
            else:
                for _ in range(len(items)):
                    size = int.from_bytes(await reader.readexactly(4), "big")
                    from_message(await reader.readexactly(size))
        finally:
            pumping.cancel()

    return await _timed(send(), receive())


def _codec_receiver(codec: Any) -> Callable[[bytes], int]:
    decoder = codec.decoder()

    def feed(data: bytes) -> int:
        decoder.feed(data)
        return len(list(decoder))

    return feed


async def _raw_tcp_frames(
    encode: Callable[[Any], bytes], feed: Callable[[bytes], int], items: list[Any]
) -> float:
    """Items over asyncio TCP streams: ``encode`` each, 64 KiB writes, ``feed`` reads."""
    async with tcp_pair() as ((_, writer), (reader, _)):

        async def send() -> None:
            parts: list[bytes] = []
            size = 0
            for item in items:
                data = encode(item)
                parts.append(data)
                size += len(data)
                if size >= CHUNK:
                    writer.write(b"".join(parts))
                    await writer.drain()
                    parts.clear()
                    size = 0
            writer.write(b"".join(parts))
            await writer.drain()

        async def receive() -> None:
            received = 0
            while received < len(items):
                data = await reader.read(CHUNK)
                if not data:
                    raise EOFError("raw TCP sender closed early")
                received += feed(data)
            if received != len(items):
                raise AssertionError(f"decoded {received} of {len(items)} items")

        return await _timed(send(), receive())


def _codec_only(workload: Workload, items: list[Any]) -> float:
    codec = workload.codec()
    encode = codec.encode
    start = clock()
    data = b"".join([encode(item) for item in items])
    decoder = codec.decoder()
    received = 0
    for offset in range(0, len(data), CHUNK):
        decoder.feed(data[offset : offset + CHUNK])
        received += len(list(decoder))
    elapsed = clock() - start
    if received != len(items):
        raise AssertionError(f"decoded {received} of {len(items)} items")
    return elapsed


# Bulk -----------------------------------------------------------------------------


async def bulk_websockets(total: int) -> float:
    """``total`` bytes as 64 KiB websockets messages, ``send``/``recv``."""
    payload = bytes(CHUNK)
    async with ws_pair() as (client, server):

        async def send() -> None:
            for _ in range(total // CHUNK):
                await client.send(payload)

        async def receive() -> None:
            received = 0
            while received < total:
                received += len(await server.recv())

        return await _timed(send(), receive())


async def _write_chunks(writer: Any, payload: bytes, total: int) -> None:
    """Write ``payload`` until ``total`` bytes are written, ``drain()`` after each."""
    for _ in range(total // len(payload)):
        writer.write(payload)
        await writer.drain()


async def bulk_wsstream(total: int) -> float:
    """``total`` bytes through WsStream: ``write`` 64 KiB + ``drain``, ``read(65536)``."""
    payload = bytes(CHUNK)
    async with ws_pair() as (client, server):
        sender = WsStream(client)
        receiver = WsStream(server)

        async def receive() -> None:
            received = 0
            while received < total:
                received += len(await receiver.read(CHUNK))

        return await _timed(_write_chunks(sender, payload, total), receive())


async def bulk_raw_tcp(total: int) -> float:
    """``total`` bytes through TCP streams (asyncio's, or trio's under trio): ``write``
    64 KiB + ``drain``, ``read``."""
    payload = bytes(CHUNK)
    async with tcp_pair() as ((_, writer), (reader, _)):

        async def receive() -> None:
            received = 0
            while received < total:
                received += len(await reader.read(CHUNK))

        return await _timed(_write_chunks(writer, payload, total), receive())


# Decoding one large frame ------------------------------------------------------------


_M_TRIM_THRESHOLD = -1  # glibc mallopt() parameters
_M_MMAP_THRESHOLD = -3
_kept_freed_memory: bool | None = None


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse; return whether it could.

    A decoder of a 16 MiB frame allocates a few 16 MiB blocks. glibc serves blocks
    that large with fresh pages (mmap) or returns them to the system on free (trim),
    so each run pays for faulting 16 MiB of zeroed pages in, which on the VM the
    published numbers come from costs about 0.75 ms per MiB, more than decoding it,
    while a 1 MiB frame reuses memory the process already has. A long-running
    process that keeps decoding large frames settles in the second state (glibc raises
    its thresholds as it sees large blocks come and go); this puts the benchmark
    there from the start, so the ratio of the two frame sizes measures the decoders.
    Only the decoding scenario calls it. Not glibc (macOS, musl): nothing happens.
    """
    global _kept_freed_memory
    if _kept_freed_memory is None:
        _kept_freed_memory = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # pragma: no cover - not glibc
                return False
            mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
            _kept_freed_memory = bool(
                mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
                and mallopt(_M_TRIM_THRESHOLD, 1 << 30)
            )
    return _kept_freed_memory


def frame_pieces(codec: Any, item: Any, chunk: int = 1024) -> list[bytes]:
    """Encode ``item`` with ``codec`` and cut the frame into ``chunk``-byte pieces."""
    data = memoryview(codec.encode(item))
    return [data[i : i + chunk].tobytes() for i in range(0, len(data), chunk)]


def decode_pieces(codec: Any, pieces: list[bytes]) -> float:
    """Feed ``pieces`` to a fresh decoder one at a time; return the seconds it took.

    The decoder is iterated after every piece, as Framed does, so a decoder that
    rescans its buffer on each pass shows up as quadratic time. The pieces are made
    beforehand (they stand for network reads) and reused across runs, so that a run
    allocates only what the decoder itself allocates.
    """
    gc.collect()
    decoder = codec.decoder()
    feed = decoder.feed
    frames = 0
    start = clock()
    for piece in pieces:
        feed(piece)
        for _ in decoder:
            frames += 1
    decoder.feed_eof()
    elapsed = clock() - start
    if not frames:  # one frame, or one per piece for BytesCodec
        raise AssertionError("the decoder yielded nothing")
    return elapsed


# Memory ----------------------------------------------------------------------------


async def slow_reader_memory(total: int, *, pause_every: int = 16) -> tuple[int, float]:
    """Receive ``total`` bytes through a WsStream whose reader keeps pausing.

    The sender writes 64 KiB + ``drain()`` as fast as it can; the reader reads
    64 KiB at a time and sleeps 1 ms every ``pause_every`` reads, so the sender is
    always ahead and backpressure decides how much is buffered. Returns the peak of
    ``tracemalloc``'s traced memory during the transfer (bytes, both ends and the
    websockets connections included) and the duration.
    """
    payload = bytes(CHUNK)
    sleep = current_shell("the benchmark").sleep
    async with ws_pair() as (client, server):
        sender = WsStream(client)
        receiver = WsStream(server)

        async def receive() -> None:
            received = 0
            reads = 0
            while received < total:
                received += len(await receiver.read(CHUNK))
                reads += 1
                if reads % pause_every == 0:
                    await sleep(0.001)

        gc.collect()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            elapsed = await _timed(_write_chunks(sender, payload, total), receive())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak, elapsed
