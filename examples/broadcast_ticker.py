"""broadcast(): a ticker sent to every client; a client that stops reading misses ticks."""

import asyncio

import wsframed
from wsframed.codecs import JsonLinesCodec
from wsframed.testing import framed_pair


async def main():
    # Three connections in memory (wsframed.testing); on a server, the Framed
    # objects your handler received. The first client stops reading.
    pairs = [framed_pair(JsonLinesCodec(), max_queue=1) for _ in range(3)]
    servers = [server for _, server in pairs]
    (stalled, _), *readers = pairs

    async def read(client, name):
        async for tick in client:
            if tick["n"] == 5:
                print(f"{name} got all 6 ticks")

    tasks = [asyncio.create_task(read(c, f"reader {i}")) for i, (c, _) in enumerate(readers)]
    for n in range(6):
        result = wsframed.broadcast(servers, {"n": n}, max_backlog=30)
        print(f"tick {n}: sent to {result.sent}, slow {len(result.slow)}")
        await asyncio.sleep(0.01)
    # The stalled client reads again: its backlog arrives, then the close.
    got = []
    tasks.append(asyncio.create_task(read_into(stalled, got)))
    await asyncio.gather(*(server.aclose() for server in servers))
    await asyncio.gather(*tasks)
    print(f"the stalled client got ticks {got}")


async def read_into(client, got):
    async for tick in client:
        got.append(tick["n"])


if __name__ == "__main__":
    asyncio.run(main())
