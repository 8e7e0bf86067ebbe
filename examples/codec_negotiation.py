"""Two ends agree on a codec through the WebSocket subprotocol, or fail at the handshake."""

import asyncio

import wsframed
from wsframed.codecs import CborCodec, JsonLinesCodec, MsgpackCodec


async def handler(framed):
    # framed.codec is the codec the client asked for (the first one, for a client
    # that does not negotiate); framed.subprotocol its name.
    await framed.send({"you speak": framed.subprotocol})


async def main():
    codecs = [MsgpackCodec(), JsonLinesCodec()]
    async with wsframed.serve(handler, "127.0.0.1", 0, codecs) as server:
        url = f"ws://127.0.0.1:{server.port}"
        for codec in (JsonLinesCodec(), MsgpackCodec()):
            async with wsframed.connect(url, codec, negotiate=True) as framed:
                print(await framed.recv())
        try:
            await wsframed.connect(url, CborCodec(), negotiate=True)
        except wsframed.CodecMismatch as exc:
            print(f"refused: {exc}".replace(url, "URL"))


if __name__ == "__main__":
    asyncio.run(main())
