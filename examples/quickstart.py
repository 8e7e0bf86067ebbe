import asyncio

import wsframed
from wsframed.codecs import MsgpackCodec


async def handler(framed):  # one per connection: frames in, frames out
    async for request in framed:
        await framed.send({"id": request["id"], "result": sum(request["params"])})


async def main():
    async with wsframed.serve(handler, "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with wsframed.connect(url, MsgpackCodec()) as framed:
            await framed.send({"id": 1, "params": [1, 2]})
            print(await framed.recv())  # {'id': 1, 'result': 3}


if __name__ == "__main__":
    asyncio.run(main())
