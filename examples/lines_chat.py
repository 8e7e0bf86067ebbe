"""A broadcast line chat: every line a member sends goes to every member.

    python examples/lines_chat.py              # a server and three scripted members
    python examples/lines_chat.py --port 8765  # only the server, until Ctrl-C

With the server running, chat from a terminal (the first line you type is your name):

    wsframed connect ws://127.0.0.1:8765 --codec lines
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import wsframed
from wsframed import Framed, FramedSink
from wsframed.codecs import LinesCodec


class ChatRoom:
    """The members' sending halves, and broadcasting to them."""

    def __init__(self) -> None:
        self.members: dict[str, FramedSink[str]] = {}

    async def broadcast(self, line: str) -> None:
        # Sends run concurrently, so one slow member delays a broadcast only as long
        # as its own transport takes; a member that is gone is skipped.
        async def send(sink: FramedSink[str]) -> None:
            with contextlib.suppress(wsframed.WsFramedError, ConnectionError):
                await sink.send(line)

        await asyncio.gather(*(send(sink) for sink in list(self.members.values())))

    async def handle(self, framed: Framed[str]) -> None:
        """One member's connection: the first line is the name, then chat lines."""
        name = await framed.recv()
        if not name or name in self.members:
            await framed.send(f"* the name {name!r} is taken or empty; bye")
            return
        sink, stream = framed.split()
        await self.broadcast(f"* {name} joined")
        self.members[name] = sink
        await sink.send(f"* welcome {name}; here: {', '.join(sorted(self.members))}")
        try:
            async for line in stream:
                await self.broadcast(f"{name}: {line}")
        finally:
            del self.members[name]
            await self.broadcast(f"* {name} left")


async def member(url: str, name: str, says: str, everyone: list[str],
                 welcomed: asyncio.Event, all_joined: asyncio.Barrier) -> None:
    """A scripted member: join, say one line, leave once everyone's line arrived."""
    async with wsframed.connect(url, LinesCodec()) as framed:
        await framed.send(name)
        print(f"[{name}] {await framed.recv()}")  # the welcome
        welcomed.set()
        await all_joined.wait()
        await framed.send(says)
        waiting_for = {f"{other}: " for other in everyone}
        async for line in framed:
            print(f"[{name}] {line}")
            waiting_for = {prefix for prefix in waiting_for if not line.startswith(prefix)}
            if not waiting_for:
                break
    print(f"[{name}] left")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="run only the server, on this port")
    args = parser.parse_args()
    room = ChatRoom()
    if args.port is not None:
        async with wsframed.serve(
            room.handle, "127.0.0.1", args.port, codec=LinesCodec()
        ) as server:
            print(f"chat server on ws://127.0.0.1:{server.port}; Ctrl-C stops it")
            await asyncio.Future()  # forever
    async with wsframed.serve(room.handle, "127.0.0.1", 0, codec=LinesCodec()) as server:
        url = f"ws://127.0.0.1:{server.port}"
        print(f"chat server on {url}")
        script = {"alice": "hi all", "bob": "hello alice", "carol": "hey, what's up?"}
        all_joined = asyncio.Barrier(len(script))
        # Join one after the other, so the welcome lines are predictable.
        members = []
        for name, says in script.items():
            welcomed = asyncio.Event()
            members.append(asyncio.create_task(
                member(url, name, says, list(script), welcomed, all_joined)
            ))
            await welcomed.wait()
        await asyncio.gather(*members)
    print("chat over: 3 members, 3 lines, each delivered to everyone")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
