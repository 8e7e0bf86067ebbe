"""A msgpack-RPC server over WebSockets with ``wsframed.rpc.RpcPeer``.

    python examples/rpc_server.py --port 8765   # serve on ws://127.0.0.1:8765 until Ctrl-C
    python examples/rpc_server.py               # self-contained: serve on a free port, run
                                                # examples/rpc_client.py's calls, exit

Each connection gets its own RpcPeer. ``greet`` shows the server calling the client back
over the same connection while the client's call is in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from wsframed import Framed, serve
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer


# --8<-- [start:server]
def make_peer(framed: Framed[Any]) -> RpcPeer:
    """Return an RpcPeer offering this server's methods over ``framed``."""
    peer = RpcPeer(framed, max_concurrency=32)

    @peer.method
    def add(a: int, b: int) -> int:
        return a + b

    @peer.method("divide")  # served as "divide"
    def true_division(a: float, b: float) -> float:
        return a / b  # divide(1, 0): the client gets "ZeroDivisionError: division by zero"

    @peer.method
    async def slow_echo(value: Any, delay: float) -> Any:
        await asyncio.sleep(delay)
        return value

    @peer.method
    async def greet() -> str:
        name = await peer.call("name", timeout=5)  # a call back into the client
        return f"hello, {name}"

    @peer.method
    def log(message: str) -> None:  # called as a notification: no response
        print(f"server log: {message}", flush=True)

    return peer


async def handle(framed: Framed[Any]) -> None:
    """Serve one connection until the client goes."""
    await make_peer(framed).serve()
# --8<-- [end:server]


@contextlib.asynccontextmanager
async def serving(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run the server while the block runs; yield its ``ws://`` URL."""
    async with serve(handle, host, port, codec=MsgpackCodec()) as server:
        yield f"ws://{host}:{server.port}"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="msgpack-RPC server over WebSockets")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="serve until interrupted (0: a free port)")
    args = parser.parse_args(argv)
    if args.port is None:
        from rpc_client import run  # this directory is on sys.path when run as a script

        async with serving(args.host) as url:
            print(f"serving msgpack-RPC on {url} (self-contained run)", flush=True)
            await run(url)
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(signum, stop.set)
    async with serving(args.host, args.port) as url:
        print(f"serving msgpack-RPC on {url}; Ctrl-C to stop", flush=True)
        await stop.wait()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main()))
