"""Typed frames: msgspec codecs against untyped codecs and hand validation, same run.

Run on demand from a checkout (nothing here runs in the test suite; needs msgspec,
``pip install 'wsframed[msgspec]'``)::

    python benchmarks/typed_frames.py                 # 20,000 items, 9 rounds
    python benchmarks/typed_frames.py --items 5000 --repeat 3
    python benchmarks/typed_frames.py --group json    # one table only
    python benchmarks/typed_frames.py --group json --case "JsonLinesCodec()" --repeat 15

Every transfer sends small RPC-like requests from a websockets client to a
websockets server on 127.0.0.1 (compression off), in the running event loop, and
counts the CPU time of this process (``time.process_time()``, kernel time included)
from the first send to the last item received: both ends run here, so that is what
each path costs, and it holds still on a shared machine where wall-clock rates swing
by 2x or more. The rows:

``naive``
    one websockets message per item, ``packb``/``unpackb`` (``json.dumps``/
    ``json.loads``) per message: the baseline every ratio is against.
``X + hand validation``
    codec ``X`` with ``send_all`` and ``recv_many``; the receiver checks each
    decoded dict field by field and builds the request object, as users write it
    today without a schema library.
``MsgspecCodec(Request...)``
    typed: the receiver gets validated ``Request`` Structs straight from the codec.

Every row is measured between two runs of its table's naive loop (naive, A, naive,
B, naive...), and its ratio to the naive loop is taken against those two runs, with
the CPU time per item summed over the rounds. The naive loop spends most of its time
in one ``send`` system call and a few Python frames per item, the codecs in Python
and C code per batch: the load of a shared machine (the other core busy or not)
moves the two differently, by up to 1.5x from one run to the next, so a single
round's ratio can be off by a third; over 9 to 15 rounds the ratio holds within
about 10%. Both sides run with the collector on, their items frozen out of it. The
naive loop is given the best it could use: a prebuilt compact ``JSONEncoder``
(``json.dumps`` with arguments builds one per call) and ``send`` of bytes; its cost
per item does not depend on the item count (5,000 or 20,000 give the same rate).

A second column measures the codec alone (encode the items, cut the bytes into 64
KiB pieces, decode and validate them), which bounds what any transport can reach.
Targets (issue 16): typed and validated at least as fast as the untyped
``MsgpackCodec``; JSON Lines with ``send_all`` + ``recv_many`` at least 10x the naive
loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import msgpack  # type: ignore[import-untyped]
import msgspec
import orjson

from wsframed import Framed, WsStream
from wsframed.bench.workloads import ws_pair
from wsframed.codecs import JsonLinesCodec, MsgpackCodec, MsgspecCodec

CHUNK = 64 * 1024


class Request(msgspec.Struct):
    """What the msgpack rows send (about 30 bytes on the wire)."""

    id: int
    method: str
    params: list[int]


class Note(msgspec.Struct):
    """What the JSON rows send (about 100 bytes on the wire)."""

    id: int
    method: str
    params: list[int]
    note: str


def request(i: int) -> Request:
    return Request(i, "add", [1, 2])


def note(i: int) -> Note:
    return Note(i, "add", [1, 2], "x" * (48 - len(str(i))))


def as_dict(item: Any) -> dict[str, Any]:
    return {f: getattr(item, f) for f in item.__struct_fields__}


def validate_request(value: Any) -> Request:
    """Hand validation: what a user writes without a schema library."""
    if type(value) is not dict:
        raise ValueError("a request must be a map")
    id_, method, params = value["id"], value["method"], value["params"]
    if type(id_) is not int or type(method) is not str or type(params) is not list:
        raise ValueError("bad request fields")
    for param in params:
        if type(param) is not int:
            raise ValueError("params must be integers")
    return Request(id_, method, params)


def validate_note(value: Any) -> Note:
    request = validate_request(value)
    text = value["note"]
    if type(text) is not str:
        raise ValueError("note must be a string")
    return Note(request.id, request.method, request.params, text)


@dataclass(frozen=True)
class Case:
    """One row: how items are sent, received, validated."""

    name: str
    group: str  # "msgpack" or "json"
    items: Callable[[int], list[Any]]
    codec: Callable[[], Any] | None  # None: the naive baseline
    validate: Callable[[Any], Any] | None = None
    dumps: Callable[[Any], bytes] | None = None  # naive only
    loads: Callable[[bytes], Any] | None = None  # naive only
    one_by_one: bool = False  # send_all() of a generator: the codec's encode() per item


def _requests(count: int) -> list[Any]:
    return [as_dict(request(i)) for i in range(count)]


def _notes(count: int) -> list[Any]:
    return [as_dict(note(i)) for i in range(count)]


_json_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

_msgspec_dumps = msgspec.json.Encoder().encode

CASES = [
    Case(
        "naive: msgpack message per item",
        "msgpack",
        _requests,
        None,
        None,
        msgpack.packb,
        msgpack.unpackb,
    ),
    Case(
        "naive (msgpack) + hand validation",
        "msgpack",
        _requests,
        None,
        validate_request,
        msgpack.packb,
        msgpack.unpackb,
    ),
    Case("MsgpackCodec, untyped", "msgpack", _requests, MsgpackCodec),
    Case("MsgpackCodec + hand validation", "msgpack", _requests, MsgpackCodec, validate_request),
    Case("MsgspecCodec(Any), untyped", "msgpack", _requests, MsgspecCodec),
    Case(
        "MsgspecCodec(Request): typed, validated",
        "msgpack",
        lambda n: [request(i) for i in range(n)],
        lambda: MsgspecCodec(Request),
    ),
    Case(
        "naive: JSON message per item",
        "json",
        _notes,
        None,
        None,
        lambda item: _json_dumps(item).encode(),
        json.loads,
    ),
    Case(
        "naive (JSON) + hand validation",
        "json",
        _notes,
        None,
        validate_note,
        lambda item: _json_dumps(item).encode(),
        json.loads,
    ),
    Case(
        "JsonLinesCodec(parser='json'): the stdlib alone",
        "json",
        _notes,
        lambda: JsonLinesCodec(parser="json"),
    ),
    Case("JsonLinesCodec(): msgspec parser", "json", _notes, JsonLinesCodec),
    Case(
        "JsonLinesCodec(), send_all(generator)",
        "json",
        _notes,
        JsonLinesCodec,
        one_by_one=True,
    ),
    Case(
        "JsonLinesCodec(dumps=orjson.dumps)",
        "json",
        _notes,
        lambda: JsonLinesCodec(dumps=orjson.dumps),
    ),
    Case(
        "JsonLinesCodec(dumps=msgspec.json.encode)",
        "json",
        _notes,
        lambda: JsonLinesCodec(dumps=_msgspec_dumps),
    ),
    Case("JsonLinesCodec() + hand validation", "json", _notes, JsonLinesCodec, validate_note),
    Case(
        "MsgspecCodec(Note, 'json'): typed, validated",
        "json",
        lambda n: [note(i) for i in range(n)],
        lambda: MsgspecCodec(Note, "json"),
    ),
]


async def over_websocket(case: Case, items: list[Any]) -> float:
    """Send ``items`` client to server; the seconds until the last one is received."""
    count = len(items)
    validate = case.validate
    async with ws_pair() as (client, server):
        if case.codec is None:
            assert case.dumps is not None
            assert case.loads is not None
            dumps, loads = case.dumps, case.loads

            async def send_each() -> None:
                for item in items:
                    await client.send(dumps(item))

            async def receive_each() -> None:
                for _ in range(count):
                    value = loads(await server.recv())
                    if validate is not None:
                        validate(value)

            return await _timed(send_each(), receive_each())
        sender = Framed(WsStream(client), case.codec())
        receiver = Framed(WsStream(server), case.codec())

        async def receive_many() -> None:
            received = 0
            while received < count:
                batch = await receiver.recv_many()
                if validate is not None:
                    for value in batch:
                        validate(value)
                received += len(batch)

        sent = (item for item in items) if case.one_by_one else items
        return await _timed(sender.send_all(sent), receive_many())


def codec_only(case: Case, items: list[Any]) -> float:
    """Encode, cut in 64 KiB pieces, decode (and validate): no I/O."""
    if case.codec is None:
        assert case.dumps is not None
        assert case.loads is not None
        start = time.process_time()
        messages = [case.dumps(item) for item in items]
        values = [case.loads(message) for message in messages]
        if case.validate is not None:
            values = [case.validate(value) for value in values]
        return time.process_time() - start
    codec = case.codec()
    validate = case.validate
    start = time.process_time()
    encode_many = getattr(codec, "encode_many", None)
    if case.one_by_one or encode_many is None:
        data = b"".join([codec.encode(item) for item in items])
    else:  # in slices, as send_all() of a list does
        data = b"".join([encode_many(items[i : i + 64]) for i in range(0, len(items), 64)])
    decoder = codec.decoder()
    received = 0
    for offset in range(0, len(data), CHUNK):
        decoder.feed(data[offset : offset + CHUNK])
        values = list(decoder)
        if validate is not None:
            values = [validate(value) for value in values]
        received += len(values)
    elapsed = time.process_time() - start
    if received != len(items):
        raise AssertionError(f"decoded {received} of {len(items)} items")
    return elapsed


def halves(count: int, repeat: int) -> str:
    """CPU µs per item of each half of the JSON codecs alone: what bounds the WebSocket rows.

    Encoding: ``encode_many`` in slices of 64 (as ``send_all`` of a list), and the
    encoders themselves; decoding: 64 KiB chunks fed and iterated.
    """
    notes = _notes(count)
    typed = [note(i) for i in range(count)]
    codecs: list[tuple[str, Any, list[Any]]] = [
        ("JsonLinesCodec(parser='json')", JsonLinesCodec(parser="json"), notes),
        ("JsonLinesCodec()", JsonLinesCodec(), notes),
        ("MsgspecCodec(Note, 'json')", MsgspecCodec(Note, "json"), typed),
    ]
    encoder = msgspec.json.Encoder()
    slices = [notes[i : i + 64] for i in range(0, count, 64)]
    encoders: list[tuple[str, Callable[[], object]]] = [
        ("json.JSONEncoder.encode per item", lambda: [_json_dumps(n) for n in notes]),
        ("msgspec encode per item (other bytes)", lambda: [encoder.encode(n) for n in notes]),
        ("msgspec encode_lines (other bytes)", lambda: [encoder.encode_lines(s) for s in slices]),
    ]

    def best(run: Callable[[], object]) -> float:
        times = []
        for _ in range(repeat):
            start = time.process_time()
            run()
            times.append(time.process_time() - start)
        return min(times) / count * 1e6

    lines = ["| JSON, codec alone | encode µs/item | decode µs/item |", "|---|---|---|"]
    for name, codec, items in codecs:
        data = b"".join([codec.encode_many(items[i : i + 64]) for i in range(0, count, 64)])

        def decode(codec: Any = codec, data: bytes = data) -> None:
            decoder = codec.decoder()
            for offset in range(0, len(data), CHUNK):
                decoder.feed(data[offset : offset + CHUNK])
                for _ in decoder:
                    pass

        def encode(codec: Any = codec, items: list[Any] = items) -> None:
            for i in range(0, count, 64):
                codec.encode_many(items[i : i + 64])

        lines.append(f"| {name} | {best(encode):.2f} | {best(decode):.2f} |")
    for name, run in encoders:
        lines.append(f"| {name} | {best(run):.2f} | |")
    return "\n".join(lines) + "\n"


async def _timed(sender: Any, receiver: Any) -> float:
    start = time.process_time()
    await asyncio.gather(sender, receiver)
    return time.process_time() - start


Rounds = dict[str, list[tuple[float, float]]]


async def measure(case: Case, count: int, naive_count: int) -> tuple[float, float]:
    """Items per CPU second of ``case``: (over a WebSocket, codec alone)."""
    n = naive_count if case.codec is None else count
    items = case.items(n)
    gc.collect()
    gc.freeze()  # the items are scaffolding: keep the collector off them
    try:
        seconds = await over_websocket(case, items)
        alone = codec_only(case, case.items(count))
    finally:
        gc.unfreeze()
    sys.stderr.write(f"{case.name:48} {n / seconds:12,.0f} items/s\n")
    return n / seconds, count / alone


async def run(
    count: int, naive_count: int, repeat: int, groups: tuple[str, ...], only: str | None = None
) -> tuple[Rounds, Rounds]:
    """Rates of every case in every round, and of the naive loop around each.

    Returns ``(rounds, naive)``: ``rounds[name]`` the rates of a case, one per round
    (the naive loop's: its first run of the round);
    ``naive[name]`` the naive loop's rate in the same round, the mean of its runs
    right before and right after the case (cases and naive runs alternate:
    naive, A, naive, B, naive...). On a shared machine the cost of the naive loop,
    one system call and a few Python frames per item, follows the load (a
    variation of 1.5x from run to run); measured on both sides of each case, the
    baseline of a ratio is seconds from it, not a round away. ``only`` keeps the
    cases whose name holds it (and each group's naive loop and reference row).
    """
    rounds: Rounds = {}
    naive: Rounds = {}
    for round_ in range(repeat):
        sys.stderr.write(f"round {round_ + 1}/{repeat}\n")
        for group in groups:
            cases = [case for case in CASES if case.group == group]
            base, reference = cases[0], cases[2]
            chosen = [
                case
                for case in cases[1:]
                if only is None or only in case.name or case is reference
            ]
            before = await measure(base, count, naive_count)
            rounds.setdefault(base.name, []).append(before)
            naive.setdefault(base.name, []).append(before)
            for case in chosen:
                rate = await measure(case, count, naive_count)
                after = await measure(base, count, naive_count)
                rounds.setdefault(case.name, []).append(rate)
                naive.setdefault(case.name, []).append(
                    ((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)
                )
                before = after
    return rounds, naive


def _ratio(
    rates: list[tuple[float, float]], bases: list[tuple[float, float]], column: int
) -> float:
    """How many times faster ``rates`` are than ``bases`` over all rounds together.

    The ratio of the CPU time per item summed over the rounds: a round whose
    measurement the load inflated weighs as much on both sides.
    """
    return sum(1 / b[column] for b in bases) / sum(1 / a[column] for a in rates)


def _spread(rates: list[tuple[float, float]], bases: list[tuple[float, float]]) -> str:
    """The lowest and highest ratio of a single round (WebSocket column)."""
    ratios = [a[0] / b[0] for a, b in zip(rates, bases, strict=True)]
    return f"{min(ratios):.1f}-{max(ratios):.1f}"


def markdown(rounds: Rounds, naive: Rounds, count: int, naive_count: int, repeat: int) -> str:
    lines = []
    for group, title in (
        ("msgpack", "msgpack, ~30-byte requests"),
        ("json", "JSON, ~100-byte requests"),
    ):
        cases = [case for case in CASES if case.group == group and case.name in rounds]
        if not cases:
            continue
        base, untyped = cases[0].name, [case for case in CASES if case.group == group][2].name
        lines += [
            f"### {title}",
            "",
            f"| receiver gets | WebSocket items/s | vs naive (min-max) | vs {untyped}"
            f" | codec alone items/s | vs {untyped} |",
            "|---|---|---|---|---|---|",
        ]
        for case in cases:
            name = case.name
            ws = max(rate[0] for rate in rounds[name])
            alone = max(rate[1] for rate in rounds[name])
            vs_naive = "1.0x"
            if name != base:
                vs_naive = (
                    f"{_ratio(rounds[name], naive[name], 0):.1f}x"
                    f" ({_spread(rounds[name], naive[name])})"
                )
            lines.append(
                f"| {name} | {ws:,.0f} | {vs_naive}"
                f" | {_ratio(rounds[name], rounds[untyped], 0):.2f}x | {alone:,.0f}"
                f" | {_ratio(rounds[name], rounds[untyped], 1):.2f}x |"
            )
        lines.append("")
    versions = ", ".join(
        [f"Python {platform.python_version()}"]
        + [f"{lib} {version(lib)}" for lib in ("websockets", "msgpack", "msgspec")]
    )
    lines.append(
        f"{count:,} items per transfer (naive: {naive_count:,}), {repeat} rounds, each case"
        " between two runs of the naive loop: items per CPU second in the best round;"
        " ratios of the CPU time per item summed over the rounds (vs naive: over the naive"
        f" runs on either side of the row's; in brackets, the range of single rounds). {versions}."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000, help="items per transfer")
    parser.add_argument("--naive-items", type=int, default=5_000, help="for the naive rows")
    parser.add_argument("--repeat", type=int, default=9, metavar="N", help="rounds")
    parser.add_argument("--output", metavar="FILE", help="also write the table to FILE")
    parser.add_argument(
        "--group", choices=("msgpack", "json"), help="only the rows of one table (default: both)"
    )
    parser.add_argument(
        "--case", metavar="TEXT", help="only the rows whose name holds TEXT (and the baselines)"
    )
    args = parser.parse_args(argv)
    groups = ("msgpack", "json") if args.group is None else (args.group,)
    rounds, naive = asyncio.run(run(args.items, args.naive_items, args.repeat, groups, args.case))
    table = markdown(rounds, naive, args.items, args.naive_items, args.repeat)
    if "json" in groups and args.case is None:
        table += "\n" + halves(args.items, args.repeat)
    sys.stdout.write(table)
    if args.output:
        Path(args.output).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
