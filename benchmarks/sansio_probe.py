"""Probe: a byte stream driven straight from websockets' public sans-I/O layer.

Not used by wsframed. This measures how much of the per-message cost of a
``WsStream`` over ``websockets.asyncio`` belongs to the asyncio connection layer
(``send()``'s context manager and async generator, the message assembler and its
futures, ``recv()`` per message) and would go away if wsframed drove
``websockets.client.ClientProtocol`` / ``websockets.server.ServerProtocol``
(``receive_data()`` in, ``events_received()`` / ``data_to_send()`` out) from its own
``asyncio.Protocol``, as the websockets documentation describes for integrating it
with another I/O framework.

The probe stream is deliberately minimal: binary data frames go straight into the
read buffer (no per-message future), ``drain()`` serialises up to 64 KiB per frame and
writes it to the transport, reading pauses above 1 MiB buffered. No close handshake,
pings, text policy or events: enough to measure, far from enough to ship.

    python benchmarks/sansio_probe.py [--items N] [--repeat N]

prints items/s for the naive baseline (websockets.asyncio, one message per item) and
for ``Framed`` over a ``WsStream`` and over the probe stream, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from wsframed import Framed
from wsframed.bench.scenarios import small_frames
from wsframed.bench.workloads import WORKLOADS

CHUNK = 64 * 1024
PAUSE_ABOVE = 1024 * 1024
RESUME_BELOW = 256 * 1024


class SansIOStream(asyncio.Protocol):
    """asyncio ``read``/``write``/``drain`` over a websockets sans-I/O protocol."""

    def __init__(self, protocol: ClientProtocol | ServerProtocol) -> None:
        self.protocol = protocol
        self.transport: asyncio.Transport | None = None
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._pending: list[bytes] = []
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._eof = False

    # asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if isinstance(self.protocol, ClientProtocol):
            self.protocol.send_request(self.protocol.connect())
            self._flush()

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        self._flush()  # automatic replies (pong, close)
        chunks = self._chunks
        arrived = 0
        for event in events:
            if isinstance(event, Frame):
                if event.opcode is Opcode.BINARY or event.opcode is Opcode.CONT:
                    payload = bytes(event.data)
                    if payload:
                        chunks.append(payload)
                        arrived += len(payload)
            elif isinstance(event, Request):
                assert isinstance(protocol, ServerProtocol)
                protocol.send_response(protocol.accept(event))
                self._flush()
                self.open.set_result(None)
            elif isinstance(event, Response):
                if protocol.state is not State.OPEN:
                    self.open.set_exception(ConnectionError("handshake failed"))
                else:
                    self.open.set_result(None)
        if arrived:
            self._buffered += arrived
            if self._buffered > PAUSE_ABOVE and not self._reading_paused:
                self._reading_paused = True
                assert self.transport is not None
                self.transport.pause_reading()
            self._wake_reader()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake_reader()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake_reader()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # Reading ----------------------------------------------------------------

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, n: int = -1) -> bytes:
        chunks = self._chunks
        while not chunks:
            if self._eof:
                return b""
            self._read_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        first = chunks[0]
        if len(first) <= n:
            chunks.popleft()
            data = first
        else:
            data, chunks[0] = first[:n], first[n:]
        self._buffered -= len(data)
        if self._reading_paused and self._buffered < RESUME_BELOW:
            self._reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        return data

    # Writing ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if data:
            self._pending.append(data)

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)

    async def drain(self) -> None:
        pending = self._pending
        if pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            send_binary = self.protocol.send_binary
            if len(data) <= CHUNK:
                send_binary(data)
            else:
                view = memoryview(data)
                for start in range(0, len(view), CHUNK):
                    send_binary(view[start : start + CHUNK])
            self._flush()
        if self._write_paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    async def send_eof(self) -> None:
        await self.drain()

    async def aclose(self) -> None:
        if self.transport is not None:
            self.transport.abort()


@asynccontextmanager
async def sansio_pair() -> AsyncIterator[tuple[SansIOStream, SansIOStream]]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[SansIOStream] = loop.create_future()

    def server_side() -> SansIOStream:
        stream = SansIOStream(ServerProtocol())
        if not accepted.done():
            accepted.set_result(stream)
        return stream

    server = await loop.create_server(server_side, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    uri = parse_uri(f"ws://127.0.0.1:{port}/")
    _, client = await loop.create_connection(
        lambda: SansIOStream(ClientProtocol(uri)), "127.0.0.1", port
    )
    server_stream = await accepted
    await asyncio.wait_for(asyncio.gather(client.open, server_stream.open), 10)
    try:
        yield client, server_stream
    finally:
        for stream in (client, server_stream):
            if stream.transport is not None:
                stream.transport.abort()
        server.close()


async def sansio_frames(mode: str, count: int) -> float:
    workload = WORKLOADS["msgpack"]
    items = [workload.item(i) for i in range(count)]
    gc.collect()
    async with sansio_pair() as (client, server):
        sender = Framed(client, workload.codec())
        receiver = Framed(server, workload.codec())

        async def send() -> None:
            if mode == "send":
                for item in items:
                    await sender.send(item)
            else:
                await sender.send_all(items)

        async def receive() -> None:
            received = 0
            if mode == "recv_many":
                while received < count:
                    received += len(await receiver.recv_many())
            else:
                async for _ in receiver:
                    received += 1
                    if received == count:
                        return

        start = time.perf_counter()
        await asyncio.gather(send(), receive())
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    msgpack = WORKLOADS["msgpack"]
    per_message = args.items // 5
    jobs: dict[str, tuple[int, Callable[[], Any]]] = {
        "naive (websockets.asyncio, message per item)": (
            per_message,
            lambda: small_frames(msgpack, "naive", per_message),
        ),
        "WsStream: send() per item, async for": (
            per_message,
            lambda: small_frames(msgpack, "send", per_message),
        ),
        "sans-I/O probe: send() per item, async for": (
            per_message,
            lambda: sansio_frames("send", per_message),
        ),
        "WsStream: send_all, async for": (
            args.items,
            lambda: small_frames(msgpack, "send_all", args.items),
        ),
        "sans-I/O probe: send_all, async for": (
            args.items,
            lambda: sansio_frames("send_all", args.items),
        ),
        "WsStream: send_all, recv_many": (
            args.items,
            lambda: small_frames(msgpack, "recv_many", args.items),
        ),
        "sans-I/O probe: send_all, recv_many": (
            args.items,
            lambda: sansio_frames("recv_many", args.items),
        ),
    }
    best: dict[str, float] = {}
    with asyncio.Runner() as runner:
        for round_number in range(args.repeat):
            for name, (count, job) in jobs.items():
                print(f"round {round_number + 1}: {name}", file=sys.stderr)
                seconds = runner.run(job())
                best[name] = max(best.get(name, 0.0), count / seconds)
    naive = best["naive (websockets.asyncio, message per item)"]
    print(f"msgpack items (~28 B), best of {args.repeat}; websockets {version('websockets')}")
    print()
    print("| path | items/s | vs naive |")
    print("|---|---|---|")
    for name, rate in best.items():
        print(f"| {name} | {rate:,.0f} | {rate / naive:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
