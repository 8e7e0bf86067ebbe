# Runs inside Pyodide (run.mjs): wsframed from its wheel, over the JavaScript WebSocket,
# against the servers of tests/interop/test_pyodide.py (their URLs in ARGS).
# Each scenario returns what the client saw; main() returns them as one JSON string.
import asyncio
import dataclasses
import functools
import json
import sys

import wsframed
from wsframed import ConnectionClosed, Framed, WsStream, connect
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
LONGER = {"many_connections": 150, "drain_waits_for_buffered_amount": 120}  # else 30 s
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


async def wrap_js_websocket():
    """WsStream over JavaScript WebSockets the program made itself."""
    import js

    out = []
    # Wrapped right after it is made, before its open event: send() waits for it.
    websocket = js.WebSocket.new(ARGS["urls"]["lines"])
    stream = WsStream(websocket)
    framed = Framed(stream, LinesCodec())
    await framed.send("sent before open")
    out.append(await framed.recv())
    out.append(stream.get_extra_info("url") == ARGS["urls"]["lines"] + "/")
    await stream.aclose(4100, "done")
    out.append([stream.close_code, stream.close_reason, websocket.readyState])
    # Wrapped once open (the readyState is looked at when it is wrapped).
    websocket = js.WebSocket.new(ARGS["urls"]["lines"])
    while websocket.readyState == 0:
        await asyncio.sleep(0.01)
    framed = Framed(WsStream(websocket), LinesCodec())
    await framed.send("sent once open")
    out.append(await framed.recv())
    await framed.aclose()
    out.append(framed.close_code)
    # Wrapped once closed: the stream ends at once, as a connection lost (its close
    # event is gone). Closed once open: Node's WebSocket closed while connecting may
    # stay CLOSING.
    websocket = js.WebSocket.new(ARGS["urls"]["lines"])
    while websocket.readyState == 0:
        await asyncio.sleep(0.01)
    websocket.close()
    while websocket.readyState != 3:
        await asyncio.sleep(0.01)
    stream = WsStream(websocket)
    try:
        await stream.read()
        out.append("no error")
    except ConnectionClosed as exc:
        out.append([type(exc).__name__, exc.code])
    out.append(browser._live_proxies)
    return out


async def drain_waits_for_buffered_amount():
    """drain() returns only once bufferedAmount is at most high_water."""
    high_water = 256 * 1024
    framed = await connect(
        ARGS["urls"]["hold"], BytesCodec(), high_water=high_water, write_chunk_size=64 * 1024
    )
    stream = framed.stream
    websocket = framed.get_extra_info("connection")
    piece = b"d" * MIB
    written = 0
    drain = None
    blocked = None  # bufferedAmount while a drain waits
    while written < 256 * MIB:
        stream.write(piece)
        written += MIB
        drain = asyncio.ensure_future(stream.drain())
        while not drain.done():
            await asyncio.wait({drain}, timeout=1)
            if not drain.done() and websocket.bufferedAmount > high_water:
                blocked = int(websocket.bufferedAmount)
                break
        if blocked is not None:
            break
    if blocked is None:
        return f"drain never waited: {written} bytes written, the server reads nothing"
    await asyncio.wait({drain}, timeout=1)  # a second more: it waits for the server
    still_waiting = not drain.done()
    async with connect(ARGS["urls"]["release"], LinesCodec()) as control:
        await control.send("read now")
        released = await control.recv()
    await asyncio.wait_for(drain, 60)
    after = int(websocket.bufferedAmount)
    await stream.aclose()  # the server reads to the end
    return [written, still_waiting, blocked > high_water, after <= high_water, released]


def describe(event):
    """An event as JSON: its class name and fields (an exception by type and text)."""
    values = [getattr(event, field.name) for field in dataclasses.fields(event)]
    return [type(event).__name__] + [
        [type(v).__name__, str(v)] if isinstance(v, BaseException) else v for v in values
    ]


async def events_in_wire_order(policy):
    """A binary line, a text message and the server's close right behind: the events
    come in that order, Closed last, and nothing is lost."""
    framed = await connect(ARGS["urls"]["text_then_close"], LinesCodec(), text=policy)
    events = framed.stream.events()
    await framed.send(policy)
    await framed.stream.wait_closed()  # nobody reads until the connection is over
    got = [describe(event) async for event in events]  # ends with Closed
    lines = []
    try:
        async for line in framed:
            lines.append(line)
    except Exception as exc:
        lines.append(type(exc).__name__)
    return [got, lines]


async def reconnect():
    """The reconnecting loop: the server ends the first connection, the loop opens a
    second one; a refused URL is retried with the delays given, then raised."""
    seen = []
    attempts = []

    def retried(exc):  # the default decision, recorded
        attempts.append(type(exc).__name__)
        return browser.process_exception(exc)

    async for framed in connect(
        ARGS["urls"]["restart"], LinesCodec(), reconnect_delays=lambda: iter([0.01] * 5)
    ):
        try:
            async for line in framed:
                seen.append(line)
                if line == "connection 2":
                    break
        except ConnectionClosed as exc:
            seen.append([exc.code, exc.reason])
            continue
        await framed.aclose()
        break
    try:
        async for _ in connect(
            ARGS["refused"],
            LinesCodec(),
            reconnect_delays=lambda: iter([0.01, 0.02]),
            process_exception=retried,
        ):
            seen.append("connected")
    except ConnectionRefusedError as exc:
        seen.append(str(exc)[:26])
    try:
        async for _ in connect("http://[bad", LinesCodec(), process_exception=retried):
            seen.append("connected")
    except ValueError as exc:
        seen.append(type(exc).__name__)
    return [seen, attempts]


async def cbor_nesting():
    """cbor2 5 (pure Python) at CborCodec's default max_depth: 256 levels decode, 257
    are refused by the codec, and encoding stops near 170 with a ValueError."""
    from wsframed import DecodeError

    out = []
    for depth in (256, 257):
        decoder = CborCodec().decoder()
        decoder.feed(b"\x81" * depth + b"\x00")
        try:
            (item,) = list(decoder)
            for _ in range(depth):
                (item,) = item
            out.append(item)
        except DecodeError as exc:
            out.append(str(exc)[:40])
    for depth in (150, 200):
        item = 0
        for _ in range(depth):
            item = [item]
        try:
            out.append(len(CborCodec().encode(item)))
        except ValueError as exc:
            out.append(str(exc)[:50])
    return out


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
        wrap_js_websocket=functools.partial(wrap_js_websocket),
        drain_waits_for_buffered_amount=functools.partial(drain_waits_for_buffered_amount),
        events_reject=functools.partial(events_in_wire_order, "reject"),
        events_bytes=functools.partial(events_in_wire_order, "bytes"),
        events_ignore=functools.partial(events_in_wire_order, "ignore"),
        reconnect=functools.partial(reconnect),
        cbor_nesting=functools.partial(cbor_nesting),
    )
    only = args.get("only")  # a subset, to debug one scenario
    for name, scenario in scenarios.items():
        if only and name not in only:
            continue
        try:
            # Bounded, so that one hanging scenario leaves time for the others.
            results[name] = await asyncio.wait_for(scenario(), LONGER.get(name, 30))
        except BaseException as exc:  # reported, not raised: the others still run
            results[name] = f"error: {type(exc).__name__}: {exc}"
    results["live_proxies"] = browser._live_proxies
    results["version"] = wsframed.__version__
    return json.dumps(results)
