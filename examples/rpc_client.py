"""Call the example msgpack-RPC server (``examples/rpc_server.py``) with ``RpcPeer``.

    python examples/rpc_client.py --port 8765   # call a server started with --port 8765
    python examples/rpc_client.py               # self-contained: start one in this process
"""

from __future__ import annotations

# --8<-- [start:example]
import asyncio

from wsframed import connect
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RemoteError, RpcPeer


async def run(url: str) -> None:
    async with connect(url, MsgpackCodec()) as framed, RpcPeer(framed) as peer:

        @peer.method  # the server calls this back while it handles greet()
        def name() -> str:
            return "rpc_client.py"

        print("add(1, 2) =", await peer.call("add", 1, 2))
        results = await asyncio.gather(*(peer.call("add", i, i) for i in range(5)))
        print("5 calls in flight:", results)
        print("greet() =", await peer.call("greet"))
        try:
            await peer.call("divide", 1, 0)
        except RemoteError as exc:
            print("error:", exc)
        try:
            await peer.call("slow_echo", "late", 1.0, timeout=0.1)
        except TimeoutError as exc:
            print("timeout:", exc)
        await peer.notify("log", "client done")
# --8<-- [end:example]


async def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="msgpack-RPC client over WebSockets")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="the server's port (default: start one here)")
    args = parser.parse_args(argv)
    if args.port is not None:
        await run(f"ws://{args.host}:{args.port}")
        return 0
    from rpc_server import serving  # this directory is on sys.path when run as a script

    async with serving(args.host) as url:
        await run(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
