"""Typed frames: three request kinds, each decoded into its own Struct, validated.

Needs msgspec: pip install 'wsframed[msgspec]'.
"""

import asyncio

import msgspec

import wsframed
from wsframed.codecs import InvalidFrame, MsgspecCodec


# What the client may send: a tagged union, told apart by its "type" field.
class Add(msgspec.Struct, tag="add"):
    id: int
    numbers: list[float]


class Upper(msgspec.Struct, tag="upper"):
    id: int
    text: str


class Bye(msgspec.Struct, tag="bye"):
    pass


# What the server answers.
class Result(msgspec.Struct, tag="result"):
    id: int
    value: float | str


class Refused(msgspec.Struct, tag="refused"):
    path: str | None  # where in the frame: "$.numbers[1]"
    offset: int | None  # where the frame starts in the stream


async def handler(framed):  # frames arrive as Add, Upper or Bye, already validated
    while True:
        try:
            request = await framed.recv()
        except InvalidFrame as exc:  # JSON Lines: the next line is read as usual
            await framed.send(Refused(exc.path, exc.offset))
            continue
        match request:
            case Add(id=id, numbers=numbers):
                await framed.send(Result(id, sum(numbers)))
            case Upper(id=id, text=text):
                await framed.send(Result(id, text.upper()))
            case Bye():
                return


async def main():
    server_codec = MsgspecCodec(Add | Upper | Bye, "json")
    client_codec = MsgspecCodec(Result | Refused, "json")  # the type of what is received
    async with wsframed.serve(handler, "127.0.0.1", 0, codec=server_codec) as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with wsframed.connect(url, client_codec) as framed:
            await framed.send_all([Add(1, [1, 2.5]), Upper(2, "typed")])
            await framed.send({"type": "add", "id": 3, "numbers": [1, "two"]})  # refused
            await framed.send(Add(4, [40, 2]))
            for _ in range(4):
                print(await framed.recv())
            await framed.send(Bye())
            print(f"wire: {server_codec.encode(Upper(2, 'typed'))!r}")


if __name__ == "__main__":
    asyncio.run(main())
