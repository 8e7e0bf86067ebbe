# Runs inside Pyodide (run.mjs): wsframed from its wheel, over the JavaScript WebSocket,
# against the servers of tests/interop/test_pyodide.py (their URLs in ARGS).
# Each scenario returns what the client saw; main() returns them as one JSON string.
import asyncio
import functools
import json
import sys

import wsframed
from wsframed import ConnectionClosed, connect
from wsframed.backends import browser
from wsframed.codecs import (
    BytesCodec,
    CborCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)
from wsframed.rpc import RpcPeer

MIB = 1024 * 1024
ARGS: dict = {}  # the servers' URLs, set by main()
CODECS = {
    "lines": (lambda: LinesCodec(), [f"line {i} " + "é" * i for i in range(200)]),
    "jsonl": (lambda: JsonLinesCodec(), [{"n": i, "s": "x" * i} for i in range(200)]),
    "msgpack": (lambda: MsgpackCodec(), [[i, "m" * i, {"k": i}] for i in range(200)]),
    "cbor": (lambda: CborCodec(), [[i, "c" * i, {"k": i}] for i in range(200)]),
    "length": (
        lambda: LengthPrefixedCodec(max_frame_size=8 * MIB),
        [bytes([i]) * (i * 7) for i in range(200)],
    ),
}
# Frames of 0 to 1,400 bytes in messages of at most 1,000 bytes (both sides' write
# chunk size): most frames straddle a message boundary.
CHUNK = 1000


async def echo_codec(name):
    make, items = CODECS[name]
    async with connect(ARGS["urls"][name], make(), write_chunk_size=CHUNK) as framed:
        for item in items:
            framed.feed(item)
        await framed.flush()
        back = [await framed.recv() for _ in items]
    return back == items


async def big_frame():
    frame = bytes(range(256)) * (4 * MIB // 256)  # 4 MiB
    async with connect(
        ARGS["urls"]["length"], LengthPrefixedCodec(max_frame_size=8 * MIB)
    ) as framed:
        await framed.send(frame)
        back = await framed.recv()
    return [len(back), back == frame]


async def server_closes(code, reason):
    framed = await connect(ARGS["urls"]["close"], LinesCodec())
    await framed.send(f"{code} {reason}")
    try:
        async for _ in framed:
            pass
        outcome = "end of stream"
    except ConnectionClosed as exc:
        outcome = [exc.code, exc.reason]
    await framed.aclose()
    return [outcome, framed.close_code, framed.close_reason]


async def client_closes(code, reason):
    framed = await connect(ARGS["urls"]["record"], LinesCodec())
    await framed.send(f"closing {code}")
    await framed.stream.aclose(code, reason)
    return [framed.close_code, framed.close_reason]


async def text(policy):
    framed = await connect(ARGS["urls"]["text"], LinesCodec(), text=policy)
    try:
        got = [line async for line in framed]
    except Exception as exc:
        got = [type(exc).__name__, getattr(exc, "code", None)]
    await framed.aclose()
    return [got, framed.close_code]


async def slow_reader():
    framed = await connect(ARGS["urls"]["flood"], BytesCodec(), max_queue=MIB)
    # No read until the connection ends: the server sends 8 MiB meanwhile.
    await framed.stream.wait_closed()
    received = 0
    try:
        async for chunk in framed:
            received += len(chunk)
        outcome = "end of stream"
    except ConnectionClosed as exc:
        outcome = [exc.code, exc.reason]
    return [received, outcome]


# A WebSocket whose "open" event ends with 300 ms in which the JavaScript thread does
# nothing else: the listener is added by a microtask, after wsframed's own (added while
# the Python call that created the WebSocket runs), so the server's first messages are
# all waiting when wsframed's task would resume, and arrive first.
SLOW_OPEN_WEBSOCKET = """
class SlowOpenWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    queueMicrotask(() => this.addEventListener("open", () => {
      const end = Date.now() + 300;
      while (Date.now() < end) {}
    }));
  }
}
SlowOpenWebSocket
"""


async def flood_before_open_returns():
    """The receive queue overflows before connect() resumes: the connection opened,
    so connect() returns it and the stream reports the 1009 (not a refused connect)."""
    import js
    from pyodide.code import run_js

    original = js.WebSocket
    js.WebSocket = run_js(SLOW_OPEN_WEBSOCKET)
    try:
        framed = await connect(ARGS["urls"]["flood_early"], BytesCodec(), max_queue=128 * 1024)
    finally:
        js.WebSocket = original
    received = 0
    try:
        async for chunk in framed:
            received += len(chunk)
        outcome = "end of stream"
    except ConnectionClosed as exc:
        outcome = [exc.code, exc.reason]
    return [received, outcome]


async def rpc():
    framed = await connect(ARGS["urls"]["rpc"], MsgpackCodec())
    async with RpcPeer(framed, handlers={"mul": lambda a, b: a * b}) as peer:
        here = await peer.call("add", 2, 3)
        there = await peer.call("ask_back", 6, 7)  # the server calls "mul" on us
    return [here, there]


async def many_connections(count):
    for _ in range(count):
        framed = await connect(ARGS["urls"]["lines"], LinesCodec())
        await framed.send("x")
        await framed.recv()
        await framed.aclose()
    return browser._live_proxies


async def ping():
    async with connect(ARGS["urls"]["lines"], LinesCodec()) as framed:
        try:
            await framed.stream.ping()
        except NotImplementedError as exc:
            return str(exc)
    return "no error"


async def refused():
    try:
        await connect(ARGS["refused"], LinesCodec())
    except ConnectionRefusedError as exc:
        return str(exc)
    return "connected"


async def main(args):
    ARGS.update(args)
    results = {"platform": sys.platform, "websockets_imported": "websockets" in sys.modules}
    scenarios = {f"echo_{name}": functools.partial(echo_codec, name) for name in CODECS}
    scenarios.update(
        big_frame=functools.partial(big_frame),
        server_closes_4000=functools.partial(server_closes, 4000, "server says bye"),
        server_closes_1000=functools.partial(server_closes, 1000, "done"),
        client_closes_4321=functools.partial(client_closes, 4321, "client says bye"),
        client_closes_1011=functools.partial(client_closes, 1011, "oops"),
        text_reject=functools.partial(text, "reject"),
        text_bytes=functools.partial(text, "bytes"),
        text_ignore=functools.partial(text, "ignore"),
        slow_reader=functools.partial(slow_reader),
        flood_before_open_returns=functools.partial(flood_before_open_returns),
        rpc=functools.partial(rpc),
        many_connections=functools.partial(many_connections, ARGS["many"]),
        ping=functools.partial(ping),
        refused=functools.partial(refused),
    )
    only = args.get("only")  # a subset, to debug one scenario
    for name, scenario in scenarios.items():
        if only and name not in only:
            continue
        try:
            # Bounded, so that one hanging scenario leaves time for the others.
            results[name] = await asyncio.wait_for(
                scenario(), 150 if name == "many_connections" else 30
            )
        except BaseException as exc:  # reported, not raised: the others still run
            results[name] = f"error: {type(exc).__name__}: {exc}"
    results["live_proxies"] = browser._live_proxies
    results["version"] = wsframed.__version__
    return json.dumps(results)
