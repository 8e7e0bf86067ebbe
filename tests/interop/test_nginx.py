"""wsframed behind nginx: frames and the close handshake pass the proxy intact.

nginx runs as a subprocess (``daemon off``) with a configuration generated into a
temporary directory: pid file, logs and temp paths there, listening on a free port on
127.0.0.1, so no root and no system configuration is involved. The ``location`` block
is the one docs/deploy.md recommends (checked by ``test_deploy_doc_has_the_tested_config``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import wsframed
from wsframed import ConnectionClosed, EndOfStream, Framed
from wsframed.codecs import LengthPrefixedCodec, MsgpackCodec

from .conftest import REPO_ROOT, Tap, free_port

pytestmark = pytest.mark.timeout(30)

# What docs/deploy.md tells users to put in front of wsframed (the test adds the paths).
PROXY_LOCATION = """\
        location /ws/ {
            proxy_pass http://wsframed;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 5s;
            proxy_read_timeout %(timeout)s;
            proxy_send_timeout %(timeout)s;
        }
"""
CONNECTION_MAP = """\
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
"""

CONFIG = """\
daemon off;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log info;
events {
    worker_connections 256;
}
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/client_body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;

%(map)s
    upstream wsframed {
        least_conn;
%(servers)s
    }
    server {
        listen 127.0.0.1:%(port)d;
%(location)s
    }
}
"""


class Nginx:
    def __init__(self, directory: Path, port: int):
        self.directory = directory
        self.port = port
        self.access_log = ""
        """The access log, read once nginx has stopped (requests are logged at their end)."""

    def url(self, path: str = "/ws/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def run_nginx(
    executable: str, upstream_ports: list[int], *, timeout: str = "1h"
) -> AsyncIterator[Nginx]:
    """Run nginx in front of ``upstream_ports``; yield it once it accepts connections."""
    with tempfile.TemporaryDirectory(prefix="wsframed-nginx-") as tmp:
        directory = Path(tmp)
        for attempt in range(3):  # a free port can be taken between choosing and binding
            port = free_port()
            (directory / "nginx.conf").write_text(
                CONFIG
                % {
                    "dir": directory,
                    "port": port,
                    "map": CONNECTION_MAP,
                    "servers": "".join(f"        server 127.0.0.1:{p};\n" for p in upstream_ports),
                    "location": PROXY_LOCATION % {"timeout": timeout},
                }
            )
            process = await asyncio.create_subprocess_exec(
                executable, "-p", str(directory), "-c", str(directory / "nginx.conf"),
                "-e", str(directory / "error.log"),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                async with asyncio.timeout(10):
                    while not await _listening(port):
                        if process.returncode is not None:
                            break
                        await asyncio.sleep(0.02)
                if process.returncode is None:
                    break
                error = (directory / "error.log").read_text() if attempt < 2 else ""
                if "Address already in use" not in error:
                    stderr = (await process.communicate())[1].decode(errors="replace")
                    raise RuntimeError(f"nginx exited ({process.returncode}):\n{stderr}\n{error}")
            except BaseException:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                raise
        else:
            raise RuntimeError("nginx found no free port in 3 attempts")
        proxy = Nginx(directory, port)
        try:
            yield proxy
        finally:
            # SIGTERM: fast shutdown, open (upgraded) connections are closed at once.
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
            with contextlib.suppress(FileNotFoundError):
                proxy.access_log = (directory / "access.log").read_text()


def make_items(codec_name: str, count: int = 400) -> list[Any]:
    if codec_name == "length":
        return [hashlib.sha256(b"%d" % i).digest() * (i % 37) for i in range(count)]
    return [
        {"i": i, "blob": hashlib.sha256(b"%d" % i).digest() * (i % 37), "text": "✓" * (i % 50)}
        for i in range(count)
    ]


CODECS = {"length": LengthPrefixedCodec(), "msgpack": MsgpackCodec()}


@pytest.mark.parametrize("codec_name", list(CODECS))
@pytest.mark.parametrize("closer", ["server-1000", "server-4001", "client-4000"])
async def test_frames_and_close_through_nginx(nginx: str, codec_name: str, closer: str) -> None:
    """Frames cut into small messages both ways, then each kind of close, via nginx."""
    codec = CODECS[codec_name]
    items = make_items(codec_name)
    seen: dict[str, Any] = {}

    async def handler(framed: Framed[Any]) -> None:
        connection = framed.get_extra_info("connection")
        seen["path"] = connection.request.path
        seen["forwarded_for"] = connection.request.headers.get("X-Forwarded-For")
        tap = Tap(framed.stream)
        seen["tap"] = tap
        tapped = Framed(tap, codec)
        received: list[Any] = []
        seen["received"] = received
        try:
            while len(received) < len(items):
                batch = await tapped.recv_many()
                received += batch
                for item in batch:  # echo, transformed, several frames per flush
                    tapped.feed(item[::-1] if codec_name == "length" else {"echo": item})
                await tapped.flush()
            if closer == "server-4001":
                await framed.stream.aclose(4001, "server says bye")
            elif closer == "client-4000":
                await tapped.recv()  # until the client's close
        except ConnectionClosed as exc:  # the client's 4000: not a clean end for the reader
            seen["closed"] = (exc.code, exc.reason)

    async with (
        wsframed.serve(handler, "127.0.0.1", 0, codec=codec, write_chunk_size=61) as server,
        run_nginx(nginx, [server.port]) as proxy,
    ):
        framed = await wsframed.connect(proxy.url("/ws/echo"), codec, write_chunk_size=13)
        stream = framed.stream
        tap = Tap(stream)
        client = Framed(tap, codec)
        await client.send_all(items)
        replies = [await client.recv() for _ in items]
        if closer == "client-4000":
            await stream.aclose(4000, "client is done")
            async with asyncio.timeout(5):  # until the server's handler has recorded it
                while "closed" not in seen:
                    await asyncio.sleep(0.01)
            assert seen["closed"] == (4000, "client is done")
        else:
            with pytest.raises(
                EndOfStream if closer == "server-1000" else ConnectionClosed
            ) as end:
                await client.recv()
            if closer == "server-4001":
                assert (end.value.code, end.value.reason) == (4001, "server says bye")
            await stream.aclose()

    expected_close = {
        "server-1000": (1000, ""),
        "server-4001": (4001, "server says bye"),
        "client-4000": (4000, "client is done"),
    }[closer]
    assert (stream.close_code, stream.close_reason) == expected_close
    if codec_name == "length":
        assert replies == [item[::-1] for item in items]
    else:
        assert replies == [{"echo": item} for item in items]
    server_tap: Tap = seen["tap"]
    assert seen["received"] == items
    # Byte-exact both ways through the proxy.
    assert (tap.written_digest.length, tap.written_digest.hexdigest) == (
        server_tap.read_digest.length,
        server_tap.read_digest.hexdigest,
    )
    assert (server_tap.written_digest.length, server_tap.written_digest.hexdigest) == (
        tap.read_digest.length,
        tap.read_digest.hexdigest,
    )
    # It really went through nginx.
    assert seen["path"] == "/ws/echo"
    assert seen["forwarded_for"] == "127.0.0.1"
    assert '"GET /ws/echo HTTP/1.1" 101' in proxy.access_log


async def test_idle_connection_needs_pings_under_proxy_read_timeout(nginx: str) -> None:
    """nginx drops a connection idle past proxy_read_timeout; WebSocket pings keep it."""

    async def echo(framed: Framed[Any]) -> None:
        async for item in framed:
            await framed.send(item)

    codec = MsgpackCodec()
    async with (
        wsframed.serve(echo, "127.0.0.1", 0, codec=codec, ping_interval=None) as server,
        run_nginx(nginx, [server.port], timeout="1s") as proxy,
    ):
        silent = await wsframed.connect(proxy.url(), codec, ping_interval=None)
        pinging = await wsframed.connect(proxy.url(), codec, ping_interval=0.3)
        for framed in (silent, pinging):
            await framed.send("hello")
            assert await framed.recv() == "hello"
        await asyncio.sleep(2)
        await pinging.send("still here")
        assert await pinging.recv() == "still here"
        with pytest.raises(ConnectionClosed) as closed:
            await silent.recv()
        assert closed.value.code == 1006  # nginx closed the TCP connection, no close frame
        await pinging.aclose()
        await silent.aclose()


async def test_scale_out_across_server_processes(nginx: str) -> None:
    """Two servers behind one upstream (least_conn): connections spread over both."""
    codec = MsgpackCodec()
    servers = []

    def named(name: str) -> Any:
        async def handler(framed: Framed[Any]) -> None:
            async for _ in framed:
                await framed.send(name)

        return handler

    async with contextlib.AsyncExitStack() as stack:
        for name in ("a", "b"):
            servers.append(
                await stack.enter_async_context(
                    wsframed.serve(named(name), "127.0.0.1", 0, codec=codec)
                )
            )
        proxy = await stack.enter_async_context(run_nginx(nginx, [s.port for s in servers]))
        clients = [await wsframed.connect(proxy.url(), codec) for _ in range(6)]
        names = []
        for client in clients:
            await client.send("who?")
            names.append(await client.recv())
        for client in clients:
            await client.aclose()
    assert sorted(names) == ["a", "a", "a", "b", "b", "b"]


def test_deploy_doc_has_the_tested_config() -> None:
    """docs/deploy.md shows the map and location blocks these tests run with."""
    doc = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for block in (CONNECTION_MAP, PROXY_LOCATION % {"timeout": "1h"}):
        for line in block.splitlines():
            assert line.strip() in doc, f"docs/deploy.md lacks {line.strip()!r}"
