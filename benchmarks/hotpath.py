"""Small frames on the hot path, against raw TCP and the plain codec library.

Run on demand from a checkout (nothing here runs in the test suite)::

    python benchmarks/hotpath.py                         # msgpack, length, lines
    python benchmarks/hotpath.py --codecs msgpack --repeat 5
    python benchmarks/hotpath.py --against HEAD~1        # A/B in one process

For each codec, 100,000 small items go client to server over 127.0.0.1, in these
ways (the items are built before the clock starts; best of ``--repeat`` rounds):

``raw``
    raw asyncio TCP, 64 KiB writes, and the plain library a user would write without
    wsframed: ``msgpack.Unpacker`` fed every read; a hand-written ``struct`` loop for
    the 4-byte length prefix; ``bytes.split`` and ``decode`` for lines. The limit of
    the machine for this work, and the baseline of every ratio. For ``cbor``
    (``--codecs cbor``) the baseline is cbor2 alone with no I/O (``dumps`` per item,
    one ``CBORDecoder`` over the bytes): it has no incremental decoder to put behind
    a socket.
``tcp recv_many``
    ``Framed.from_streams`` over the same TCP: ``send_all`` and ``recv_many``.
``ws recv_many`` / ``ws async for``
    ``Framed(WsStream(...))`` over a websockets connection: ``send_all``, and
    ``recv_many`` or ``async for`` on the other side.

Every measurement runs twice: with the items *live* on the heap (the garbage
collector on and walking them, as in a program that keeps what it sends) and
*frozen* (``gc.freeze()`` after building them: the collector no longer walks them).
The table shows items/s and the ratio to ``raw`` of the same heap. Time is the
process's CPU time (``--clock wall`` for the wall clock): both ends run in this
process, so on an idle machine the two agree, and on a shared one CPU time leaves
out what other processes took.

``--against REV`` also imports the ``wsframed`` package of git revision ``REV``
(under another name) and measures both, round by round in one process, and prints
the ratio of this checkout's rate to REV's: the A/B of a change.

``--floor`` also measures, in the same rounds, what ``async for`` cannot avoid per item
whatever the receiving code: one ``__anext__`` coroutine (an ``async for`` over a bare
object whose ``__anext__`` pops from a list, no I/O) and the checkpoint rule's loop turn
every ``BUDGET`` items (``asyncio.sleep(0)`` with the connections' loop, divided by
``BUDGET``). It then prints the most ``ws async for`` could reach: the raw baseline's
time per item over (``ws recv_many``'s time per item + that floor), a ratio to raw.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import io
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

import cbor2  # noqa: E402
import msgpack  # type: ignore[import-untyped]  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402

CHUNK = 64 * 1024
MODES = ("raw", "tcp recv_many", "ws recv_many", "ws async for")
_HEADER = struct.Struct(">I")
# The clock: the process's CPU time by default (both ends run in this process, so on
# an idle machine it matches the wall clock; on a shared one it leaves out the time
# other processes took), or the wall clock (--clock wall).
CLOCK = time.process_time


def rpc_item(i: int) -> dict[str, Any]:
    """About 29 bytes of msgpack: a small RPC request."""
    return {"id": i, "method": "add", "params": [1, 2]}


def line_item(i: int) -> str:
    """99 characters, 100 bytes with the newline."""
    return f"{i:08d} " + "x" * 90


def blob_item(i: int) -> bytes:
    """96 bytes, 100 with the length header."""
    return i.to_bytes(8, "big") + b"x" * 88


ITEMS: dict[str, Callable[[int], Any]] = {
    "msgpack": rpc_item,
    "cbor": rpc_item,
    "length": blob_item,
    "lines": line_item,
}


def codec_of(package: ModuleType, name: str) -> Any:
    codecs = package.codecs
    if name == "msgpack":
        return codecs.MsgpackCodec()
    if name == "length":
        return codecs.LengthPrefixedCodec()
    if name == "cbor":
        return codecs.CborCodec()
    return codecs.LinesCodec()


# Plain-library encoders and decoders: the raw baseline ------------------------------


def plain_encode(name: str) -> Callable[[Any], bytes]:
    if name == "msgpack":
        return msgpack.Packer().pack  # type: ignore[no-any-return]
    if name == "length":
        pack = _HEADER.pack
        return lambda item: pack(len(item)) + item
    return lambda item: item.encode() + b"\n"


class PlainLength:
    """A length-prefixed decoder as one would write it by hand."""

    def __init__(self) -> None:
        self.buf = b""

    def decode(self, data: bytes) -> int:
        buf = self.buf + data if self.buf else data
        pos = 0
        end = len(buf)
        count = 0
        unpack_from = _HEADER.unpack_from
        while end - pos >= 4:
            (size,) = unpack_from(buf, pos)
            stop = pos + 4 + size
            if stop > end:
                break
            buf[pos + 4 : stop]
            pos = stop
            count += 1
        self.buf = buf[pos:]
        return count


class PlainLines:
    """A line decoder as one would write it by hand."""

    def __init__(self) -> None:
        self.buf = b""

    def decode(self, data: bytes) -> int:
        buf = self.buf + data if self.buf else data
        last = buf.rfind(b"\n")
        if last < 0:
            self.buf = buf
            return 0
        lines = buf[:last].decode().split("\n")
        self.buf = buf[last + 1 :]
        return len(lines)


class PlainMsgpack:
    def __init__(self) -> None:
        self.unpacker = msgpack.Unpacker()

    def decode(self, data: bytes) -> int:
        self.unpacker.feed(data)
        count = 0
        for _ in self.unpacker:
            count += 1
        return count


PLAIN_DECODERS: dict[str, Callable[[], Any]] = {
    "msgpack": PlainMsgpack,
    "length": PlainLength,
    "lines": PlainLines,
}


# Connections ---------------------------------------------------------------------


async def tcp_pair() -> tuple[Any, Any, Callable[[], None]]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Any] = loop.create_future()

    async def on_connect(reader: Any, writer: Any) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await asyncio.open_connection("127.0.0.1", port)
    accepted_pair = await asyncio.wait_for(accepted, 10)

    def close() -> None:
        client[1].transport.abort()
        accepted_pair[1].transport.abort()
        server.close()

    return client, accepted_pair, close


async def ws_pair() -> tuple[Any, Any, Callable[[], Any]]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Any] = loop.create_future()
    release = asyncio.Event()

    async def handler(connection: Any) -> None:
        accepted.set_result(connection)
        await release.wait()

    server = await serve(handler, "127.0.0.1", 0, compression=None)
    port = next(iter(server.sockets)).getsockname()[1]
    client = await connect(f"ws://127.0.0.1:{port}", compression=None)
    server_side = await asyncio.wait_for(accepted, 10)

    async def close() -> None:
        release.set()
        client.transport.abort()
        server.close()
        await server.wait_closed()

    return client, server_side, close


# Measurements --------------------------------------------------------------------


def library_alone(name: str, items: list[Any]) -> float:
    """cbor2 alone, no I/O: ``dumps`` per item, then a ``CBORDecoder`` over the bytes.

    cbor2 has no incremental decoder to put behind a socket, so its baseline is the
    library alone (what bounds any transport).
    """
    start = CLOCK()
    data = b"".join(map(cbor2.dumps, items))
    decode = cbor2.CBORDecoder(io.BytesIO(data)).decode
    for _ in range(len(items)):
        decode()
    return CLOCK() - start


async def raw(name: str, items: list[Any]) -> float:
    if name == "cbor":
        return library_alone(name, items)
    encode = plain_encode(name)
    decoder = PLAIN_DECODERS[name]()
    (_, writer), (reader, _), close = await tcp_pair()
    count = len(items)

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
        while received < count:
            data = await reader.read(CHUNK)
            if not data:
                raise EOFError("sender closed early")
            received += decoder.decode(data)

    try:
        start = CLOCK()
        await asyncio.gather(send(), receive())
        return CLOCK() - start
    finally:
        close()


async def recv_many(framed: Any, count: int) -> None:
    received = 0
    get = framed.recv_many
    while received < count:
        received += len(await get())


async def iterate(framed: Any, count: int) -> None:
    received = 0
    async for _ in framed:
        received += 1
        if received == count:
            return


async def framed_run(package: ModuleType, name: str, mode: str, items: list[Any]) -> float:
    count = len(items)
    receive = recv_many if mode.endswith("recv_many") else iterate
    if mode.startswith("tcp"):
        client, server, close = await tcp_pair()
        sender = package.Framed.from_streams(*client, codec_of(package, name))
        receiver = package.Framed.from_streams(*server, codec_of(package, name))
        try:
            start = CLOCK()
            await asyncio.gather(sender.send_all(items), receive(receiver, count))
            return CLOCK() - start
        finally:
            close()
    ws_client, ws_server, aclose = await ws_pair()
    sender = package.Framed(package.WsStream(ws_client), codec_of(package, name))
    receiver = package.Framed(package.WsStream(ws_server), codec_of(package, name))
    try:
        start = CLOCK()
        await asyncio.gather(sender.send_all(items), receive(receiver, count))
        return CLOCK() - start
    finally:
        await aclose()


async def measure(
    package: ModuleType | None, name: str, mode: str, count: int, frozen: bool
) -> float:
    items = [ITEMS[name](i) for i in range(count)]
    gc.collect()
    if frozen:
        gc.freeze()
    try:
        if package is None:
            return await raw(name, items)
        return await framed_run(package, name, mode, items)
    finally:
        if frozen:
            gc.unfreeze()


def load_revision(rev: str, into: Path) -> ModuleType:
    """Import the ``wsframed`` package of git revision ``rev`` as ``wsframed_ab``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "wsframed"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    shutil.move(str(into / "wsframed"), str(into / "wsframed_ab"))
    sys.path.insert(0, str(into))
    return importlib.import_module("wsframed_ab")


class _BareIterator:
    """The least an async iterator can do per item: a coroutine that pops a list."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __aiter__(self) -> _BareIterator:
        return self

    async def __anext__(self) -> Any:
        items = self.items
        if items:
            return items.pop()
        raise StopAsyncIteration


async def floor_per_item(count: int, budget: int) -> float:
    """Seconds per item ``async for`` costs at least: a coroutine, a turn per budget."""
    iterator = _BareIterator([None] * count)
    start = CLOCK()
    async for _ in iterator:
        pass
    coroutine = (CLOCK() - start) / count
    _, _, close = await tcp_pair()  # a loop with sockets registered
    try:
        turns = max(count // budget, 1)
        start = CLOCK()
        for _ in range(turns):
            await asyncio.sleep(0)
        turn = (CLOCK() - start) / turns
    finally:
        close()
    return coroutine + turn / budget


async def main_async(args: argparse.Namespace, packages: dict[str, ModuleType]) -> None:
    heaps = {"live": False, "frozen": True}
    if args.heap != "both":
        heaps = {args.heap: heaps[args.heap]}
    best: dict[tuple[str, str, str, str], float] = {}
    floor = float("inf")
    budget = importlib.import_module("wsframed.checkpoint").BUDGET
    for round_ in range(args.repeat):
        if args.floor:
            floor = min(floor, await floor_per_item(args.count, budget))
        for name in args.codecs:
            for heap, frozen in heaps.items():
                for mode in MODES:
                    targets = {"-": None} if mode == "raw" else packages
                    for label, package in targets.items():
                        key = (name, heap, mode, label)
                        seconds = await measure(package, name, mode, args.count, frozen)
                        best[key] = min(best.get(key, float("inf")), seconds)
        sys.stderr.write(f"round {round_ + 1}/{args.repeat} done\n")
    labels = list(packages)
    head = "| codec | heap | path | " + " | ".join(
        f"{label} items/s | {label} vs raw" for label in labels
    )
    if len(labels) == 2:
        head += f" | {labels[0]} / {labels[1]}"
    print(head + " |")
    print("|" + "---|" * (3 + 2 * len(labels) + (len(labels) == 2)))
    for name in args.codecs:
        for heap in heaps:
            raw_rate = args.count / best[(name, heap, "raw", "-")]
            label = "cbor2 alone, no I/O" if name == "cbor" else "raw TCP + plain library"
            print(f"| {name} | {heap} | {label} | {raw_rate / 1e6:.2f}M | 1.00 |")
            for mode in MODES[1:]:
                cells = []
                rates = []
                for label in labels:
                    rate = args.count / best[(name, heap, mode, label)]
                    rates.append(rate)
                    cells.append(f"{rate / 1e6:.2f}M | {rate / raw_rate:.2f}")
                row = f"| {name} | {heap} | {mode} | " + " | ".join(cells)
                if len(labels) == 2:
                    row += f" | {rates[0] / rates[1]:.2f}"
                print(row + " |")
    if args.floor:
        print(
            f"\nFloor of `async for` per item: {floor * 1e9:.0f} ns (a coroutine, and a loop "
            f"turn per {budget} items). The most `ws async for` can reach, as a ratio to "
            "raw: raw time per item / (ws recv_many time per item + floor):\n"
        )
        print("| codec | heap | ws recv_many ns/item | raw ns/item | async for at most |")
        print("|---|---|---|---|---|")
        for name in args.codecs:
            for heap in heaps:
                raw_item = best[(name, heap, "raw", "-")] / args.count
                many_item = best[(name, heap, "ws recv_many", "this")] / args.count
                bound = raw_item / (many_item + floor)
                print(
                    f"| {name} | {heap} | {many_item * 1e9:.0f} | {raw_item * 1e9:.0f} "
                    f"| {bound:.2f} |"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codecs", default="msgpack,length,lines", type=lambda s: s.split(","))
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--heap", choices=("live", "frozen", "both"), default="both")
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument(
        "--floor", action="store_true", help="also measure async for's floor per item"
    )
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    packages = {"this": importlib.import_module("wsframed")}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            packages[args.against] = load_revision(args.against, Path(tmp))
        asyncio.run(main_async(args, packages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
