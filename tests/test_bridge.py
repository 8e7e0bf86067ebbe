"""wsframed.bridge: real bridge processes on 127.0.0.1, TCP targets in the test process.

Bridges run as ``python -m wsframed.bridge`` subprocesses (their "listening on" line
gives the port); TLS and the Python API are tested in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import re
import signal
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidStatus

from wsframed import WsStream
from wsframed.bridge import (
    BINARY_SUBPROTOCOL,
    HALF_CLOSE_SUBPROTOCOL,
    add_arguments,
    parse_endpoint,
    pump,
    run_command,
    serve_bridge,
)

from .conftest import tcp_pair, wait_for, ws_pair

ROOT = Path(__file__).resolve().parent.parent

loops = pytest.mark.parametrize("loop", ["asyncio", "trio"])
"""Run a bridge-process test with the bridge on each loop family (``--loop``)."""
MiB = 1024 * 1024

TcpHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# Bridge processes and TCP targets ---------------------------------------------------


@dataclass
class BridgeProcess:
    """A running ``python -m wsframed.bridge``; ``log`` collects its stderr lines."""

    proc: asyncio.subprocess.Process
    url: str
    log: list[str] = field(default_factory=list)
    terminated: bool = False

    def terminate(self) -> None:
        self.terminated = True
        self.proc.send_signal(signal.SIGTERM)

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    def connection_lines(self) -> list[str]:
        return [line for line in self.log if line.startswith("wsframed.bridge: peer=")]


@asynccontextmanager
async def bridge(*args: str) -> AsyncIterator[BridgeProcess]:
    """Run a bridge process; on exit send SIGTERM and check it exits with status 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsframed.bridge", *args,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    stderr = proc.stderr
    first = (await asyncio.wait_for(stderr.readline(), 20)).decode()
    match = re.match(r"listening on (\S+) -> \S+$", first.strip())
    if match is None:
        rest = (await asyncio.wait_for(stderr.read(), 10)).decode()
        await proc.wait()
        pytest.fail(f"bridge did not start: {first}{rest}")
    running = BridgeProcess(proc, match.group(1))

    async def collect() -> None:
        while line := await stderr.readline():
            running.log.append(line.decode().rstrip("\n"))

    collector = asyncio.create_task(collect())
    try:
        yield running
    finally:
        if not running.terminated:
            running.terminate()
        returncode = await asyncio.wait_for(proc.wait(), 20)
        await asyncio.wait_for(collector, 5)
    assert returncode == 0, running.log
    noise = [line for line in running.log if "Traceback" in line or "never retrieved" in line]
    assert not noise, running.log


async def wait_for_lines(process: BridgeProcess, count: int, timeout: float = 10) -> list[str]:
    await wait_for(lambda: len(process.connection_lines()) >= count, timeout)
    return process.connection_lines()


@asynccontextmanager
async def tcp_server(handler: TcpHandler) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 in this process; yields its port."""
    tasks: set[asyncio.Task[Any]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(64 * 1024):
        writer.write(data)
        await writer.drain()


def summary(data: bytes) -> bytes:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()


@dataclass
class SummaryTarget:
    """Reads to EOF, then sends the byte count and hash of what it read, and closes."""

    received: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        await self.received.put(data)
        writer.write(summary(data))
        await writer.drain()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def ws_client(url: str, **options: Any) -> ClientConnection:
    return await connect(url, compression=None, open_timeout=10, **options)


async def send_and_hash(stream: Any, data: bytes, chunk: int = 256 * 1024) -> None:
    view = memoryview(data)
    for start in range(0, len(data), chunk):
        stream.write(view[start : start + chunk])
        await stream.drain()


async def read_and_hash(read: Callable[[int], Awaitable[bytes]], size: int) -> bytes:
    digest = hashlib.sha256()
    got = 0
    while got < size:
        chunk = await read(1 << 20)
        assert chunk, f"stream ended after {got} of {size} bytes"
        digest.update(chunk)
        got += len(chunk)
    assert got == size
    return digest.digest()


# Bulk transfer, tunnels -------------------------------------------------------------


@loops
async def test_50_mib_echoed_byte_identical_both_ways(loop: str) -> None:
    data = os.urandom(50 * MiB)
    async with tcp_server(echo) as target, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{target}"
    ) as process:
        stream = WsStream(await ws_client(process.url))
        started = time.perf_counter()
        sender = asyncio.create_task(send_and_hash(stream, data))
        received = await asyncio.wait_for(read_and_hash(stream.read, len(data)), 30)
        elapsed = time.perf_counter() - started
        await sender
        assert received == hashlib.sha256(data).digest()
        await stream.aclose()
        assert stream.close_code == 1000
        [line] = await wait_for_lines(process, 1)
    print(f"\n50 MiB each way through the bridge: {len(data) / MiB / elapsed:.0f} MiB/s")
    assert f"to_target={len(data)} to_client={len(data)}" in line
    assert "close=1000" in line
    assert "reason='websocket closed'" in line


@loops
async def test_tunnel_of_two_bridges_carries_bytes_and_half_close(loop: str) -> None:
    # 8 MiB echoed: more than the socket buffers in flight each way at once, on both
    # WebSocket ends (under trio, two websockets.trio ends: docs/trio.md's hazard).
    data = os.urandom(8 * MiB)
    async with tcp_server(echo) as target, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0/tunnel",
        "--to", f"tcp://127.0.0.1:{target}",
    ) as far, bridge("--loop", loop, "--listen", "tcp://127.0.0.1:0", "--to", far.url) as near:
        reader, writer = await asyncio.open_connection("127.0.0.1", near.port)
        sender = asyncio.create_task(send_and_hash(writer, data))
        received = await asyncio.wait_for(read_and_hash(reader.read, len(data)), 30)
        await sender
        assert received == hashlib.sha256(data).digest()
        writer.write_eof()  # the echo server sees EOF and closes: so do we, through both
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        [near_line] = await wait_for_lines(near, 1)
        [far_line] = await wait_for_lines(far, 1)
    for line in (near_line, far_line):
        assert f"to_target={len(data)} to_client={len(data)}" in line, line
        assert "close=1000" in line, line


@loops
async def test_tunnel_client_half_close_still_gets_the_full_reply(loop: str) -> None:
    target = SummaryTarget()
    data = os.urandom(3 * MiB)
    async with tcp_server(target) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
    ) as far, bridge("--loop", loop, "--listen", "tcp://127.0.0.1:0", "--to", far.url) as near:
        reader, writer = await asyncio.open_connection("127.0.0.1", near.port)
        await send_and_hash(writer, data)
        writer.write_eof()  # "no more from me"; the reply comes after this
        reply = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert reply == summary(data)
        assert await target.received.get() == data


@loops
async def test_websocket_close_half_closes_tcp_so_trailing_bytes_arrive(loop: str) -> None:
    target = SummaryTarget()
    data = os.urandom(2 * MiB)
    async with tcp_server(target) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
    ) as process:
        stream = WsStream(await ws_client(process.url))
        await send_and_hash(stream, data)
        await stream.aclose()  # write_eof() on TCP: the target reads every byte, then EOF
        assert await asyncio.wait_for(target.received.get(), 10) == data
        [line] = await wait_for_lines(process, 1)
    assert f"to_target={len(data)}" in line
    assert "reason='websocket closed'" in line


@loops
async def test_target_close_flushes_then_closes_with_1000(loop: str) -> None:
    data = os.urandom(3 * MiB)

    async def send_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    async with tcp_server(send_then_close) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
    ) as process:
        stream = WsStream(await ws_client(process.url))
        assert await asyncio.wait_for(stream.read(), 10) == data  # read() to the end
        assert stream.close_code == 1000
        [line] = await wait_for_lines(process, 1)
    assert "close=1000 reason='target closed'" in line


@loops
async def test_unreachable_target_closes_the_accepted_websocket_with_1011(loop: str) -> None:
    async with bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{free_port()}"
    ) as process:
        connection = await ws_client(process.url)  # accepted before the target is dialled
        with pytest.raises(WsConnectionClosed):
            await asyncio.wait_for(connection.recv(), 10)
        assert connection.close_code == 1011
        [line] = await wait_for_lines(process, 1)
    assert "close=1011" in line
    assert "target unreachable" in line


# websockify compatibility -----------------------------------------------------------


@loops
async def test_text_rejected_with_1003_or_forwarded_as_bytes_on_request(loop: str) -> None:
    async with tcp_server(echo) as port:
        async with bridge(
            "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
        ) as p:
            connection = await ws_client(p.url)
            await connection.send(b"binary first\n")
            assert await connection.recv() == b"binary first\n"
            await connection.send("text")
            with pytest.raises(WsConnectionClosed):
                await asyncio.wait_for(connection.recv(), 10)
            assert connection.close_code == 1003
            [line] = await wait_for_lines(p, 1)
            assert "close=1003 reason='text message rejected'" in line
        async with bridge(
            "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}",
            "--text", "bytes",
        ) as p:
            connection = await ws_client(p.url)
            await connection.send("h\u00e9llo")
            assert await asyncio.wait_for(connection.recv(), 10) == "h\u00e9llo".encode()
            await connection.close()


async def test_subprotocols_binary_halfclose_and_none() -> None:
    async with tcp_server(echo) as port, serve_bridge(
        "ws://127.0.0.1:0", f"tcp://127.0.0.1:{port}"
    ) as server:
        for offered, selected in [
            (None, None),
            ([BINARY_SUBPROTOCOL], BINARY_SUBPROTOCOL),
            (["base64", BINARY_SUBPROTOCOL], BINARY_SUBPROTOCOL),
            ([BINARY_SUBPROTOCOL, HALF_CLOSE_SUBPROTOCOL], HALF_CLOSE_SUBPROTOCOL),
            (["something-else"], None),
        ]:
            connection = await ws_client(server.url, subprotocols=offered)
            assert connection.subprotocol == selected
            await connection.send(b"ping")
            assert await connection.recv() == b"ping"
            await connection.close()
    async with tcp_server(echo) as port, serve_bridge(
        "ws://127.0.0.1:0", f"tcp://127.0.0.1:{port}", half_close=False
    ) as server:
        offered = [HALF_CLOSE_SUBPROTOCOL, BINARY_SUBPROTOCOL]
        connection = await ws_client(server.url, subprotocols=offered)
        assert connection.subprotocol == BINARY_SUBPROTOCOL
        await connection.close()


async def test_listen_path_other_paths_get_404() -> None:
    async with tcp_server(echo) as port, serve_bridge(
        "ws://127.0.0.1:0/vnc", f"tcp://127.0.0.1:{port}"
    ) as server:
        with pytest.raises(InvalidStatus) as info:
            await ws_client(f"ws://127.0.0.1:{server.port}/other")
        assert info.value.response.status_code == 404
        for url in (server.url, f"{server.url}?token=abc"):
            connection = await ws_client(url)
            await connection.close()


# Backpressure and load --------------------------------------------------------------


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def plateau(counter: Callable[[], int], quiet: float = 0.5, timeout: float = 15) -> int:
    """Wait until ``counter()`` stopped growing for ``quiet`` seconds; return it."""
    async with asyncio.timeout(timeout):
        last, since = counter(), time.monotonic()
        while time.monotonic() - since < quiet:
            await asyncio.sleep(0.05)
            if counter() != last:
                last, since = counter(), time.monotonic()
    return last


@loops
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_slow_websocket_reader_pauses_the_target(loop: str) -> None:
    written = 0
    stop = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        chunk = os.urandom(64 * 1024)
        while not stop.is_set():
            writer.write(chunk)
            await writer.drain()
            written += len(chunk)

    async with tcp_server(flood) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
    ) as process:
        stream = WsStream(await ws_client(process.url))  # and it reads nothing for now
        stalled_at = await plateau(lambda: written)
        rss = peak_rss_mib(process.proc.pid)
        print(f"\ntarget blocked after {stalled_at / MiB:.1f} MiB; bridge peak RSS {rss:.0f} MiB")
        assert 0 < stalled_at < 32 * MiB
        assert rss < 150
        stop.set()
        total = 0
        while chunk := await asyncio.wait_for(stream.read(1 << 20), 10):
            total += len(chunk)
        assert total == written  # nothing lost while paused


@loops
async def test_slow_target_pauses_the_websocket_sender(loop: str) -> None:
    resume = asyncio.Event()
    target = SummaryTarget()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await resume.wait()
        await target(reader, writer)

    async with tcp_server(slow) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
    ) as process:
        stream = WsStream(await ws_client(process.url))
        written = 0
        chunk = b"\x01" * (64 * 1024)

        async def send_forever() -> None:
            nonlocal written
            while True:
                stream.write(chunk)
                written += len(chunk)
                await stream.drain()

        sender = asyncio.create_task(send_forever())
        stalled_at = await plateau(lambda: written)
        print(f"\nWebSocket sender blocked after {stalled_at / MiB:.1f} MiB")
        assert 0 < stalled_at < 32 * MiB
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        resume.set()
        await stream.send_eof()  # sends what the cancelled drain() left, then closes
        received = await asyncio.wait_for(target.received.get(), 15)
        assert len(received) == written


@loops
async def test_100_concurrent_clients_each_get_their_own_echo(loop: str) -> None:
    async with tcp_server(echo) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
    ) as process:

        async def client(index: int) -> None:
            data = index.to_bytes(2, "big") + os.urandom(64 * 1024)
            stream = WsStream(await ws_client(process.url))
            stream.write(data)
            await stream.drain()
            assert await stream.readexactly(len(data)) == data
            await stream.aclose()

        async with asyncio.timeout(30):
            await asyncio.gather(*(client(i) for i in range(100)))
        lines = await wait_for_lines(process, 100)
    assert len(lines) == 100
    assert all("to_target=65538 to_client=65538" in line for line in lines)


# Limits -----------------------------------------------------------------------------


@loops
async def test_max_connections_websocket_listener_answers_503(loop: str) -> None:
    async with tcp_server(echo) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}",
        "--max-connections", "2",
    ) as process:
        first, second = await ws_client(process.url), await ws_client(process.url)
        with pytest.raises(InvalidStatus) as info:
            await ws_client(process.url)
        assert info.value.response.status_code == 503
        await first.close()

        async def try_again() -> ClientConnection | None:
            try:
                return await ws_client(process.url)
            except InvalidStatus:
                return None

        async with asyncio.timeout(5):  # the slot is free once the first one is closed
            while (third := await try_again()) is None:
                await asyncio.sleep(0.05)
        for connection in (second, third):
            await connection.send(b"still served")
            assert await connection.recv() == b"still served"
            await connection.close()
    assert any("refused" in line and "max-connections" in line for line in process.log)


@asynccontextmanager
async def ws_echo_server() -> AsyncIterator[str]:
    async def handler(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        yield f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"


@loops
async def test_max_connections_tcp_listener_closes_extra_sockets(loop: str) -> None:
    async with ws_echo_server() as url, bridge(
        "--loop", loop, "--listen", "tcp://127.0.0.1:0", "--to", url, "--max-connections", "1"
    ) as process:
        reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
        writer.write(b"hello")
        assert await asyncio.wait_for(reader.readexactly(5), 10) == b"hello"
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", process.port)
        assert await asyncio.wait_for(extra_reader.read(), 10) == b""
        extra_writer.close()
        writer.close()


@loops
async def test_idle_timeout_closes_with_1001_and_closes_tcp(loop: str) -> None:
    target_eof = asyncio.Event()

    async def echo_then_note_eof(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await echo(reader, writer)
        target_eof.set()

    async with tcp_server(echo_then_note_eof) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}",
        "--idle-timeout", "0.5",
    ) as process:
        stream = WsStream(await ws_client(process.url))
        stream.write(b"hi")
        await stream.drain()
        assert await stream.readexactly(2) == b"hi"
        quiet_since = time.monotonic()
        assert await asyncio.wait_for(stream.read(), 10) == b""
        assert 0.4 < time.monotonic() - quiet_since < 5
        assert stream.close_code == 1001
        await asyncio.wait_for(target_eof.wait(), 5)
        [line] = await wait_for_lines(process, 1)
    assert "close=1001 reason='idle timeout'" in line


@loops
async def test_sigterm_closes_open_connections_with_1001_and_exits_0(loop: str) -> None:
    async with tcp_server(echo) as port, bridge(
        "--loop", loop, "--listen", "ws://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}"
    ) as process:
        stream = WsStream(await ws_client(process.url))
        stream.write(b"x")
        await stream.drain()
        assert await stream.readexactly(1) == b"x"
        process.terminate()
        assert await asyncio.wait_for(stream.read(), 10) == b""
        assert stream.close_code == 1001
    # bridge() checked the exit status 0


# TLS (in-process) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_wss_listener_and_wss_target_verified_with_a_test_ca(
    server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    data = os.urandom(MiB)
    async with tcp_server(echo) as port, serve_bridge(
        "wss://127.0.0.1:0", f"tcp://127.0.0.1:{port}", ssl=server_ssl
    ) as far:
        assert far.url.startswith("wss://")
        connection = await ws_client(f"wss://localhost:{far.port}", ssl=client_ssl)
        await connection.send(b"over tls")
        assert await connection.recv() == b"over tls"
        await connection.close()
        async with serve_bridge(
            "tcp://127.0.0.1:0", f"wss://localhost:{far.port}", target_ssl=client_ssl
        ) as near:
            reader, writer = await asyncio.open_connection("127.0.0.1", near.port)
            sender = asyncio.create_task(send_and_hash(writer, data))
            assert await read_and_hash(reader.read, len(data)) == hashlib.sha256(data).digest()
            await sender
            writer.close()


def bridge_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


async def test_wss_target_unverified_is_refused_unless_insecure(
    server_ssl: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wsframed.bridge")
    async with tcp_server(echo) as port, serve_bridge(
        "wss://127.0.0.1:0", f"tcp://127.0.0.1:{port}", ssl=server_ssl
    ) as far:
        target = f"wss://localhost:{far.port}"
        async with serve_bridge("tcp://127.0.0.1:0", target) as near:  # system CAs only
            reader, writer = await asyncio.open_connection("127.0.0.1", near.port)
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        assert any("target unreachable" in r.getMessage() and "SSL" in r.getMessage()
                   for r in caplog.records)

        from wsframed.bridge import _ssl_contexts

        args = bridge_args("--listen", "tcp://127.0.0.1:0", "--to", target, "--insecure")
        _, insecure = _ssl_contexts(args, parse_endpoint(args.listen), parse_endpoint(args.to))
        async with serve_bridge("tcp://127.0.0.1:0", target, target_ssl=insecure) as near:
            reader, writer = await asyncio.open_connection("127.0.0.1", near.port)
            writer.write(b"trusted anyway")
            assert await asyncio.wait_for(reader.readexactly(14), 10) == b"trusted anyway"
            writer.close()


@loops
async def test_cli_tls_options_cert_key_and_cafile(
    ca: trustme.CA, tmp_path: Path, loop: str
) -> None:
    leaf = ca.issue_cert("localhost")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    async with tcp_server(echo) as port, bridge(
        "--loop", loop, "--listen", "wss://127.0.0.1:0", "--to", f"tcp://127.0.0.1:{port}",
        "--cert", str(tmp_path / "cert.pem"), "--key", str(tmp_path / "key.pem"),
    ) as far, bridge(
        "--loop", loop, "--listen", "tcp://127.0.0.1:0", "--to", f"wss://localhost:{far.port}",
        "--cafile", str(tmp_path / "ca.pem"),
    ) as near:
        reader, writer = await asyncio.open_connection("127.0.0.1", near.port)
        writer.write(b"through two bridges over wss")
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 10) == b"through two bridges over wss"
        writer.close()


# The Python API and the command line ------------------------------------------------


async def test_pump_counts_bytes_and_closes_on_idle() -> None:
    async with ws_pair() as (ws_client_side, ws_server_side), tcp_pair() as (tcp_peer, tcp_ours):
        peer_stream = WsStream(ws_client_side)
        running = asyncio.create_task(
            pump(WsStream(ws_server_side), *tcp_ours, idle_timeout=0.3)
        )
        peer_stream.write(b"to tcp")
        await peer_stream.drain()
        assert await tcp_peer[0].readexactly(6) == b"to tcp"
        tcp_peer[1].write(b"to the websocket")
        assert await peer_stream.readexactly(16) == b"to the websocket"
        result = await asyncio.wait_for(running, 5)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (6, 16)
        assert (result.close_code, result.reason) == (1001, "idle timeout")
        assert await peer_stream.read() == b""
        assert await tcp_peer[0].read() == b""


async def test_pump_cancelled_closes_both_sides() -> None:
    async with ws_pair() as (ws_client_side, ws_server_side), tcp_pair() as (tcp_peer, tcp_ours):
        peer_stream = WsStream(ws_client_side)
        running = asyncio.create_task(pump(WsStream(ws_server_side), *tcp_ours))
        await asyncio.sleep(0.05)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert await asyncio.wait_for(peer_stream.read(), 5) == b""
        assert peer_stream.close_code == 1001
        assert await asyncio.wait_for(tcp_peer[0].read(), 5) == b""


@pytest.mark.parametrize(
    ("listen", "to", "extra", "message"),
    [
        ("localhost:8080", "tcp://127.0.0.1:1", [], "expected tcp://"),
        ("ws://127.0.0.1:0", "tcp://127.0.0.1", [], "no port"),
        ("ws://127.0.0.1:99999", "tcp://127.0.0.1:1", [], "0..65535"),
        ("ws://127.0.0.1:0", "ws://127.0.0.1:1", [], "a bridge joins a WebSocket and TCP"),
        ("tcp://127.0.0.1:0", "tcp://127.0.0.1:1", [], "a bridge joins a WebSocket and TCP"),
        ("wss://127.0.0.1:0", "tcp://127.0.0.1:1", [], "needs --cert"),
        ("ws://127.0.0.1:0", "tcp://127.0.0.1:1", ["--insecure"], "wss:// --to"),
        ("ws://127.0.0.1:0", "tcp://127.0.0.1:1", ["--cert", "x.pem"], "wss:// --listen"),
    ],
)
async def test_bad_options_give_one_line_and_exit_2(
    listen: str, to: str, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_command(bridge_args("--listen", listen, "--to", to, *extra)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("wsframed bridge: error: ")
    assert message in err


async def test_bad_url_in_a_process_exits_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsframed.bridge", "--listen", "http://x:1", "--to", "tcp://y:2",
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert err.decode().count("\n") == 1
    assert "http://x:1" in err.decode()


@pytest.mark.parametrize("listen", ["ws://127.0.0.1:0", "tcp://127.0.0.1:0"])
async def test_port_and_url_keep_the_bound_port_after_close(listen: str) -> None:
    async with tcp_server(echo) as port, ws_echo_server() as ws_url:
        to = f"tcp://127.0.0.1:{port}" if listen.startswith("ws") else ws_url
        server = await serve_bridge(listen, to)
        bound = server.sockets[0].getsockname()[1]
        assert server.port == bound
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)
        assert server.sockets == ()
        assert server.port == bound
        assert server.url == f"{listen[:-1]}{bound}"


def test_parse_endpoint() -> None:
    assert str(parse_endpoint("ws://[::1]:80/a?b=1")) == "ws://[::1]:80/a?b=1"
    assert parse_endpoint("wss://example.com/x").port == 443
    assert parse_endpoint("TCP://h:1").scheme == "tcp"
    with pytest.raises(ValueError, match="no path"):
        parse_endpoint("tcp://h:1/x")


async def test_a_half_close_marker_sent_before_the_pump_starts_is_not_missed() -> None:
    # The far end of a tunnel sends its bytes and its end-of-bytes marker as soon as the
    # WebSocket opens, before this side's pump has started (it may still be dialling
    # its TCP target). The marker must still end the WebSocket-to-TCP direction after
    # every byte ahead of it: the TCP peer gets the bytes, then EOF. (The pump used to
    # watch events for it; events are reported on arrival, so this one was missed and
    # the tunnel hung until the bridge stopped.)
    async with ws_pair() as (ws_client_side, ws_server_side), tcp_pair() as (tcp_peer, tcp_ours):
        await ws_client_side.send(b"bytes ahead of the marker")
        await ws_client_side.send("EOF")
        stream = WsStream(ws_server_side, text="ignore")
        await asyncio.sleep(0.05)  # both messages have arrived before the pump starts
        running = asyncio.create_task(pump(stream, *tcp_ours, half_close=True))
        received = await asyncio.wait_for(tcp_peer[0].read(), 5)
        assert received == b"bytes ahead of the marker"
        tcp_peer[1].write(b"reply")
        tcp_peer[1].write_eof()
        assert await asyncio.wait_for(ws_client_side.recv(), 5) == b"reply"
        assert await asyncio.wait_for(ws_client_side.recv(), 5) == "EOF"
        await ws_client_side.close()
        result = await asyncio.wait_for(running, 5)
        assert (result.ws_to_tcp, result.tcp_to_ws) == (25, 5)
