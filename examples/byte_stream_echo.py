"""WsStream: a WebSocket as a byte stream, with its events, in one process."""

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from wsframed import WsStream


async def echo_lines(connection):  # the server: a line protocol over a byte stream
    stream = WsStream(connection)
    while line := await stream.readline():
        stream.write(line.upper())
        await stream.drain()


async def watch(stream):  # events travel out of band
    async for event in stream.events():
        print("event:", event)


async def main():
    async with serve(echo_lines, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            stream = WsStream(ws)
            watcher = asyncio.create_task(watch(stream))
            stream.write(b"hello\nbyte ")  # message boundaries mean nothing:
            await stream.drain()
            stream.write(b"stream\n")  # the second line spans two messages
            await stream.drain()
            print(await stream.readline())  # b'HELLO\n'
            print(await stream.readline())  # b'BYTE STREAM\n'
            print(f"round trip: {await stream.ping() * 1000:.2f} ms")
            await stream.aclose()  # the close handshake, bounded by close_timeout
            await watcher  # ends after the Closed event
            print("closed with", stream.close_code)


if __name__ == "__main__":
    asyncio.run(main())
