"""Unit-test protocol code without a socket: wsframed.testing.framed_pair.

The protocol: a key-value store speaking JSON Lines. The handler below is what a
``serve()`` would run; the test drives it through an in-memory pair, with the same
close codes and errors a network connection gives.
"""

import asyncio

from wsframed import ConnectionClosed, Framed
from wsframed.codecs import JsonLinesCodec
from wsframed.testing import framed_pair


async def key_value_store(framed: Framed[object]) -> None:
    """Serve ["set", key, value] and ["get", key]; close with 4000 on anything else."""
    store: dict[str, object] = {}
    async for request in framed:
        match request:
            case ["set", str(key), value]:
                store[key] = value
                await framed.send({"ok": True})
            case ["get", str(key)]:
                await framed.send({"value": store.get(key)})
            case _:
                await framed.stream.aclose(4000, "unknown request")
                return


async def test_key_value_store() -> None:
    client, server = framed_pair(JsonLinesCodec())
    handler = asyncio.create_task(key_value_store(server))
    async with client:
        await client.send(["set", "colour", "blue"])
        assert await client.recv() == {"ok": True}
        await client.send(["get", "colour"])
        assert await client.recv() == {"value": "blue"}
        await client.send(["drop", "colour"])
        try:
            answer = await client.recv()
        except ConnectionClosed as exc:
            refusal = (exc.code, exc.reason)
        else:
            raise AssertionError(f"answered {answer!r} to an unknown request")
        assert refusal == (4000, "unknown request")
        print(f"refused with {refusal[0]} ({refusal[1]})")
    await asyncio.wait_for(handler, 5)
    print("key_value_store: 3 requests, 2 answers, 1 refusal")


if __name__ == "__main__":
    asyncio.run(test_key_value_store())
