"""Request/response over msgpack with request ids, using the split halves.

The server answers each request in its own task, so slow requests do not hold up
fast ones and replies come back out of order. The client sends from any task through
the sending half; one reader task owns the receiving half and hands every reply to the
caller waiting for its ``id``.

    python examples/msgpack_request_response.py
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import wsframed
from wsframed import Framed, FramedSink, FramedStream
from wsframed.codecs import MsgpackCodec


async def slow_add(a: int, b: int, delay: float) -> int:
    await asyncio.sleep(delay)
    return a + b


async def upper(text: str) -> str:
    return text.upper()


METHODS = {"slow_add": slow_add, "upper": upper}


async def server(framed: Framed[Any]) -> None:
    """Answer every request ``{"id", "method", "params"}`` in its own task."""
    sink, stream = framed.split()
    pending: set[asyncio.Task[None]] = set()

    async def answer(request: dict[str, Any]) -> None:
        method = METHODS.get(request["method"])
        if method is None:
            await sink.send({"id": request["id"], "error": f"no method {request['method']!r}"})
            return
        result = await method(*request["params"])
        await sink.send({"id": request["id"], "result": result})

    async for request in stream:
        task = asyncio.create_task(answer(request))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)


class Client:
    """Calls methods by id: any task may call; one reader task routes the replies."""

    def __init__(self, framed: Framed[Any]) -> None:
        self._sink: FramedSink[Any]
        self._stream: FramedStream[Any]
        self._sink, self._stream = framed.split()
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader = asyncio.create_task(self._read_replies())
        self.started = time.monotonic()

    async def _read_replies(self) -> None:
        async for reply in self._stream:
            future = self._waiting.pop(reply["id"], None)
            if future is None or future.done():
                continue  # a caller that gave up
            if "error" in reply:
                future.set_exception(RuntimeError(reply["error"]))
            else:
                future.set_result(reply["result"])
        for future in self._waiting.values():
            future.set_exception(ConnectionError("the connection ended"))

    async def call(self, method: str, *params: Any) -> Any:
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        print(f"  -> id={request_id} {method}({', '.join(map(repr, params))})")
        await self._sink.send({"id": request_id, "method": method, "params": params})
        reply = await future
        print(f"  <- id={request_id} {reply!r} after {time.monotonic() - self.started:.2f} s")
        return reply

    async def close(self) -> None:
        # Every reply is in (the callers returned): close the sending half; the
        # reader sees the end of stream once the server has answered the close.
        await self._sink.close()
        await self._reader


async def main() -> None:
    async with wsframed.serve(server, "127.0.0.1", 0, codec=MsgpackCodec()) as ws_server:
        framed = await wsframed.connect(f"ws://127.0.0.1:{ws_server.port}", MsgpackCodec())
        client = Client(framed)
        # Four calls in flight at once; each task waits for the reply with its id.
        results = await asyncio.gather(
            client.call("slow_add", 1, 2, 0.3),
            client.call("slow_add", 10, 20, 0.2),
            client.call("upper", "fast"),
            client.call("slow_add", 100, 200, 0.1),
        )
        try:
            await client.call("nope")
        except RuntimeError as exc:
            print(f"  <- error: {exc}")
        await client.close()
        print(f"results in request order: {results}")
        print(f"close code {framed.stream.close_code}")


if __name__ == "__main__":
    asyncio.run(main())
