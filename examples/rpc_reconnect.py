"""msgpack-RPC over a reconnecting client: one RpcPeer per connection.

The server is dropped while a call is in flight, then comes back on the same port.
The call in flight fails with ConnectionClosed: the client cannot know whether the
server ran it. ``square`` is idempotent, so the client calls it again on the next
connection; a call that is not idempotent would need an id the server deduplicates.
"""

import asyncio
import itertools

import wsframed
from wsframed import ConnectionClosed
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer

started = asyncio.Event()  # the server has begun a call (the moment to drop it)


async def handler(framed):
    peer = RpcPeer(framed)

    @peer.method
    async def square(n):
        started.set()
        await asyncio.sleep(0.05)
        return n * n

    await peer.serve()


def quick_retries():
    return (0.05 for _ in itertools.count())  # websockets' default starts at up to 5 s


async def squares(url, numbers):
    """Square every number, reconnecting and calling again after a drop."""
    results = {}
    connections = 0
    async for framed in wsframed.connect(url, MsgpackCodec(), reconnect_delays=quick_retries):
        connections += 1
        async with RpcPeer(framed) as peer:  # a new peer for each connection
            try:
                for n in numbers:
                    if n not in results:
                        results[n] = await peer.call("square", n, timeout=5)
            except ConnectionClosed as exc:
                print(f"connection {connections} lost ({exc.code}) with a call in flight")
                continue  # connect again; the loop calls the missing ones again
        await framed.aclose()
        break
    return results, connections


async def main():
    codec = MsgpackCodec()
    server = await wsframed.serve(handler, "127.0.0.1", 0, codec)
    port = server.port
    client = asyncio.create_task(squares(f"ws://127.0.0.1:{port}", [1, 2, 3, 4]))
    await started.wait()
    server.close()  # open connections are closed with 1001 (going away)
    await server.wait_closed()
    print("server dropped")
    await asyncio.sleep(0.2)  # the client retries meanwhile, and fails
    server = await wsframed.serve(handler, "127.0.0.1", port, codec)
    print("server back")
    results, connections = await asyncio.wait_for(client, 10)
    print(f"results {results} over {connections} connections")
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
