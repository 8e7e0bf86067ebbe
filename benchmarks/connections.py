"""Many concurrent connections on one server process: wsframed against plain websockets.

Run on demand::

    python benchmarks/connections.py                       # 1,000 connections, ~1 min
    python benchmarks/connections.py --connections 10000   # the 10k figure
    python benchmarks/connections.py --loop uvloop         # both processes on uvloop

For each server, in turn: a plain websockets echo server, ``wsframed.serve`` echoing
length-prefixed frames (websockets backend), and the same with ``backend="picows"``
(when picows is installed). Each runs in its own process (``--serve``), so its RSS is
its own; this process is the load: a minimal hand-written WebSocket client per
connection (a few hundred bytes each), so the client costs the same for every server.

Measured per server, in one run:

- accept rate: connections opened per second, ``--in-flight`` handshakes at a time;
- RSS per connection: the server's RSS with every connection open and idle, minus its
  RSS before the first one, divided by the number of connections;
- frames/s with all of them active: each connection sends a 20-byte frame, waits for
  its echo and sends the next, for ``--seconds``; echoes received per second.

File descriptors: both processes raise their soft limit (``RLIMIT_NOFILE``) to the hard
limit. Each connection needs one descriptor in each process, plus a few dozen: when the
hard limit is lower than the connections asked for, the run stops with what to do
(``ulimit -Hn`` shows it; raise it in /etc/security/limits.conf or with
``prlimit --nofile=N:N``, as root). Ephemeral ports: 127.0.0.1 gives one source port per
connection (``net.ipv4.ip_local_port_range``, about 28,000 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import platform
import resource
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

ROOT = str(Path(__file__).resolve().parents[1])
PAYLOAD = len(b"0123456789abcdef").to_bytes(4, "big") + b"0123456789abcdef"  # one frame
_KEY = os.urandom(4)
# A masked binary frame carrying PAYLOAD (RFC 6455 section 5.3), built once.
FRAME = (
    bytes([0x82, 0x80 | len(PAYLOAD)])
    + _KEY
    + bytes(b ^ _KEY[i % 4] for i, b in enumerate(PAYLOAD))
)
SPARE_FDS = 64  # listening socket, pipes, the interpreter's own files


def raise_fd_limit(needed: int) -> int:
    """Raise the soft limit on open files to the hard limit; exit if below ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(
            f"{needed} file descriptors are needed and the hard limit is {hard}: raise it "
            f"(as root: prlimit --nofile={needed}:{needed} --pid {os.getpid()}, or "
            "'nofile' in /etc/security/limits.conf) or ask for fewer --connections"
        )
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid`` in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


# Server process -------------------------------------------------------------------


async def serve(kind: str, connections: int) -> None:
    raise_fd_limit(connections + SPARE_FDS)
    backlog = {"backlog": 1024}
    if kind == "websockets":
        from websockets.asyncio.server import ServerConnection
        from websockets.asyncio.server import serve as ws_serve
        from websockets.exceptions import ConnectionClosed

        async def echo(ws: ServerConnection) -> None:
            with contextlib.suppress(ConnectionClosed):  # the load drops its connections
                async for message in ws:
                    await ws.send(message)

        server: Any = await ws_serve(echo, "127.0.0.1", 0, compression=None, **backlog)
        port = server.sockets[0].getsockname()[1]
    else:
        import wsframed
        from wsframed.codecs import LengthPrefixedCodec

        async def handler(framed: wsframed.Framed[bytes]) -> None:
            async for item in framed:
                await framed.send(item)

        backend = "picows" if kind == "wsframed-picows" else "websockets"
        server = await wsframed.serve(
            handler, "127.0.0.1", 0, LengthPrefixedCodec(), backend=backend, **backlog
        )
        port = server.port
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


# The load: a minimal WebSocket client per connection ------------------------------


class Load(asyncio.Protocol):
    """One client connection: the opening handshake, then frames echoed one at a time."""

    active = False  # class-wide: every connection sends while it is True
    echoes = 0  # class-wide count of frames echoed back

    def __init__(self, port: int, opened: asyncio.Future[None]):
        self.port = port
        self.opened = opened
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(buffer[:40])))
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.opened.set_result(None)
        while len(buffer) >= 2:  # the server's frames: unmasked, small
            size, head = buffer[1] & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, head = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, head = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < head + size:
                return
            opcode = buffer[0] & 0x0F
            del buffer[: head + size]
            if opcode == 0x2:
                Load.echoes += 1
                if Load.active and self.transport is not None:
                    self.transport.write(FRAME)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))


async def measure(kind: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--serve", kind, "--connections", str(args.connections)]
    command += ["--loop", args.loop]
    server = await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    loop = asyncio.get_running_loop()
    clients: list[Load] = []
    try:
        assert server.stdout is not None
        port = int(await asyncio.wait_for(server.stdout.readline(), 30))
        await asyncio.sleep(0.5)
        before = rss_kib(server.pid)
        gate = asyncio.Semaphore(args.in_flight)

        started = time.perf_counter()
        results = await asyncio.gather(
            *(_opening(loop, port, gate) for _ in range(args.connections)),
        )
        accept_rate = args.connections / (time.perf_counter() - started)
        clients.extend(results)
        await asyncio.sleep(1.0)  # idle: the server settles
        after = rss_kib(server.pid)

        Load.echoes, Load.active = 0, True
        for client in clients:
            assert client.transport is not None
            client.transport.write(FRAME)
        await asyncio.sleep(0.5)  # warm
        first, started = Load.echoes, time.perf_counter()
        await asyncio.sleep(args.seconds)
        frames = (Load.echoes - first) / (time.perf_counter() - started)
        Load.active = False
        return {
            "accept": accept_rate,
            "rss": (after - before) / args.connections,
            "frames": frames,
            "server_rss": after / 1024,
        }
    finally:
        for client in clients:
            if client.transport is not None:
                client.transport.abort()
        if server.stdin is not None:
            server.stdin.close()
        try:
            await asyncio.wait_for(server.wait(), 10)
        except TimeoutError:
            server.kill()
            await server.wait()


async def _opening(loop: asyncio.AbstractEventLoop, port: int, gate: asyncio.Semaphore) -> Load:
    async with gate:
        opened: asyncio.Future[None] = loop.create_future()
        _, protocol = await loop.create_connection(lambda: Load(port, opened), "127.0.0.1", port)
        await asyncio.wait_for(opened, 30)
        return protocol


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


async def main(args: argparse.Namespace) -> None:
    limit = raise_fd_limit(args.connections + SPARE_FDS)
    kinds = ["websockets", "wsframed"]
    if _version("picows") != "not installed":
        kinds.append("wsframed-picows")
    figures = {kind: await measure(kind, args) for kind in kinds}
    loop = type(asyncio.get_running_loop())
    print(f"## {args.connections:,} concurrent connections on one server process\n")
    print(
        f"Python {platform.python_version()}, {loop.__module__}.{loop.__qualname__}, "
        f"websockets {_version('websockets')}, picows {_version('picows')}, "
        f"{os.cpu_count()} CPUs; open-files limit {limit}; {args.in_flight} handshakes in "
        f"flight; {args.seconds} s of 20-byte frames echoed on every connection at once.\n"
    )
    base = figures["websockets"]
    print("| server | accepts/s | RSS/connection | server RSS | frames/s (all active) |")
    print("|---|---:|---:|---:|---:|")
    for kind, f in figures.items():
        print(
            f"| {kind} | {f['accept']:,.0f} ({f['accept'] / base['accept']:.2f}x) "
            f"| {f['rss']:.1f} KiB ({f['rss'] - base['rss']:+.1f}) | {f['server_rss']:,.0f} MiB "
            f"| {f['frames']:,.0f} ({f['frames'] / base['frames']:.2f}x) |"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1_000, help="default 1,000")
    parser.add_argument("--seconds", type=float, default=3.0, help="active phase, default 3")
    parser.add_argument("--in-flight", type=int, default=200, help="handshakes at a time")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    coroutine = (
        serve(arguments.serve, arguments.connections) if arguments.serve else main(arguments)
    )
    if arguments.loop == "uvloop":
        import uvloop

        uvloop.run(coroutine)
    else:
        asyncio.run(coroutine)
