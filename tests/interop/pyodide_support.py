"""What the Pyodide tests share: the wheels Pyodide installs and the wsframed servers.

The wheels: micropip and packaging (Pyodide's npm package ships its core only, no
packages), msgpack built pure Python (``MSGPACK_PUREPYTHON=1``), cbor2 5's pure wheel
(cbor2 6 is Rust only), all fetched by ``.ci/install-interop`` into
``tests/interop/pyodide/wheels``; and wsframed's, built from this checkout per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from wsframed import ConnectionClosed, Framed, serve
from wsframed.codecs import (
    BytesCodec,
    CborCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)
from wsframed.rpc import RpcPeer

from .conftest import INTEROP_DIR, NODE_MODULES, REPO_ROOT, require

WHEEL_DIR = INTEROP_DIR / "pyodide" / "wheels"
WHEELS = ("micropip", "packaging", "msgpack", "cbor2")
INSTALL = ".ci/install-interop (npm ci in tests/interop; the Pyodide wheels)"
MIB = 1024 * 1024


def require_pyodide() -> None:
    """Skip (fail under CI=true) unless the npm pyodide package and the wheels are there."""
    require(
        "the npm package pyodide in tests/interop/node_modules",
        (NODE_MODULES / "pyodide" / "pyodide.asm.wasm").exists(),
        "cd tests/interop && npm ci --omit=optional --ignore-scripts",
    )
    present = [w.name for w in WHEEL_DIR.glob("*.whl")] if WHEEL_DIR.exists() else []
    missing = [name for name in WHEELS if not any(w.startswith(name + "-") for w in present)]
    require(f"the Pyodide wheels {', '.join(missing)} in {WHEEL_DIR}", not missing, INSTALL)


def build_wheels(into: Path) -> Path:
    """Copy the fetched wheels into ``into`` and build wsframed's wheel there."""
    require_pyodide()
    into.mkdir(parents=True, exist_ok=True)
    for wheel in WHEEL_DIR.glob("*.whl"):
        shutil.copy(wheel, into)
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(into), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return into


class Servers:
    """The servers the Pyodide programs talk to, and what they saw."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.seen: dict[str, Any] = {}


async def _echo(framed: Framed[Any]) -> None:
    async for item in framed:
        await framed.send(item)


async def _close_as_asked(framed: Framed[str]) -> None:
    code, _, reason = (await framed.recv()).partition(" ")
    await framed.stream.aclose(int(code), reason)


@contextlib.asynccontextmanager
async def running_servers() -> AsyncIterator[Servers]:
    servers = Servers()

    async def record_close(framed: Framed[str]) -> None:
        name = await framed.recv()
        with contextlib.suppress(ConnectionClosed):
            async for _ in framed:
                pass
        servers.seen[name] = [framed.close_code, framed.close_reason]

    async def send_text(framed: Framed[str]) -> None:
        connection = framed.get_extra_info("connection")
        with contextlib.suppress(ConnectionClosed, Exception):
            await connection.send("text\n")  # a text message
            await framed.send("after")  # then a binary one
            await asyncio.sleep(0.5)
        await framed.stream.aclose(1000)
        servers.seen.setdefault("text", []).append(framed.close_code)

    async def flood(key: str, framed: Framed[bytes]) -> None:
        sent = 0
        try:
            for _ in range(128):
                await framed.send(b"f" * (64 * 1024))
                sent += 64 * 1024
        except ConnectionClosed as exc:
            servers.seen[key] = [sent, exc.code, exc.reason]
            return
        await framed.stream.wait_closed()
        servers.seen[key] = [sent, framed.close_code, framed.close_reason]

    released = asyncio.Event()

    async def hold(framed: Framed[bytes]) -> None:
        # Reads nothing until the client says so on "release": the client's writes
        # fill websockets' queue (max_queue=1), the TCP buffers, then bufferedAmount.
        await asyncio.wait_for(released.wait(), 120)
        received = 0
        async for chunk in framed:
            received += len(chunk)
        servers.seen["hold"] = [received, framed.close_code]

    async def release(framed: Framed[str]) -> None:
        await framed.recv()
        released.set()
        await framed.send("released")
        await framed.stream.wait_closed()

    async def text_then_close(framed: Framed[str]) -> None:
        # A binary line, a text message, and a close right behind it.
        policy = await framed.recv()
        connection = framed.get_extra_info("connection")
        await connection.send(b"before\n")
        await connection.send("hello\n")
        await framed.stream.aclose(1000)
        servers.seen.setdefault("text_then_close", {})[policy] = framed.close_code

    connections = 0

    async def restart(framed: Framed[str]) -> None:
        # The first connection ends at once with 1011, the second one stays.
        nonlocal connections
        connections += 1
        number = connections
        await framed.send(f"connection {number}")
        if number == 1:
            await framed.stream.aclose(1011, "restarting")
            return
        with contextlib.suppress(ConnectionClosed):
            async for _ in framed:
                pass
        servers.seen["restart"] = [connections, framed.close_code]

    async def rpc(framed: Framed[Any]) -> None:
        peer = RpcPeer(framed)

        @peer.method("add")
        def add(a: int, b: int) -> int:
            return a + b

        @peer.method("ask_back")
        async def ask_back(a: int, b: int) -> Any:
            return await peer.call("mul", a, b, timeout=30)

        async with peer:
            await peer.serve()

    chunked = {"write_chunk_size": 1000}
    plan: dict[str, tuple[Any, Any, dict[str, Any]]] = {
        "lines": (_echo, LinesCodec(), chunked),
        "jsonl": (_echo, JsonLinesCodec(), chunked),
        "msgpack": (_echo, MsgpackCodec(), chunked),
        "cbor": (_echo, CborCodec(), chunked),
        "length": (_echo, LengthPrefixedCodec(max_frame_size=8 * MIB), {}),
        "close": (_close_as_asked, LinesCodec(), {}),
        "record": (record_close, LinesCodec(), {}),
        "text": (send_text, LinesCodec(), {}),
        "flood": (functools.partial(flood, "flood"), BytesCodec(), {}),
        "flood_early": (functools.partial(flood, "flood_early"), BytesCodec(), {}),
        "rpc": (rpc, MsgpackCodec(), {}),
        "hold": (hold, BytesCodec(), {"max_queue": 1}),
        "release": (release, LinesCodec(), {}),
        "text_then_close": (text_then_close, LinesCodec(), {}),
        "restart": (restart, LinesCodec(), {}),
    }
    async with contextlib.AsyncExitStack() as stack:
        for name, (handler, codec, options) in plan.items():
            server = await stack.enter_async_context(
                serve(handler, "127.0.0.1", 0, codec, close_timeout=5, **options)
            )
            port = server.sockets[0].getsockname()[1]
            servers.urls[name] = f"ws://127.0.0.1:{port}"
        yield servers
