"""``wsframed serve`` and ``connect`` print every frame a codec accepts, and keep going.

A real ``serve`` (in-process, so it is cheap; one subprocess test for the process as a
user starts it) receives hostile frames from a real websockets client: each one prints
exactly one line, on stdout (its JSON) or, for a frame that cannot be shown, on stderr
(one bounded line), and the connection still echoes the next frame.
"""

from __future__ import annotations

import asyncio
import math
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from importlib.metadata import version

import cbor2
import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect

from wsframed import cli
from wsframed.cli.frames import _write, format_frame, json_text, parse_input_line
from wsframed.cli.serve import _describe, _run_serve

from .test_cli import LINGER, run, serving
from .test_codec_cbor import CBOR2_5

TIMEOUT = 20

# The frame sent after each hostile one: the connection must still echo it.
NEXT = {"msgpack": msgpack.packb("next"), "cbor": cbor2.dumps("next"), "jsonl": b'"next"\n'}
DEEP = 900
BIG = 2**20000
BIG_HEX = "0x1" + "0" * 5000


# An in-process serve ---------------------------------------------------------------


@dataclass
class Output:
    """What the in-process command printed so far, line by line."""

    capsys: pytest.CaptureFixture[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def poll(self) -> None:
        captured = self.capsys.readouterr()
        self.out += captured.out.splitlines()
        self.err += captured.err.splitlines()

    async def wait_err(self, pattern: str) -> re.Match[str]:
        async with asyncio.timeout(TIMEOUT):
            while True:
                self.poll()
                for line in self.err:
                    if match := re.search(pattern, line):
                        return match
                await asyncio.sleep(0.01)


@asynccontextmanager
async def serve_in_process(
    capsys: pytest.CaptureFixture[str], *argv: str
) -> AsyncIterator[tuple[str, Output]]:
    """Run ``wsframed serve --port 0 ARGV`` as a task; yield its URL and its output."""
    args = cli.build_parser().parse_args(["serve", "--port", "0", *argv])
    task = asyncio.create_task(_run_serve(args))
    output = Output(capsys)
    try:
        url = (await output.wait_err(r"^listening on (ws://\S+)$")).group(1)
        yield url, output
    finally:
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), TIMEOUT)
        output.poll()


async def receive_bytes(client: ClientConnection, size: int) -> bytes:
    """The next ``size`` bytes from ``client`` (WebSocket message boundaries mean nothing)."""
    data = b""
    async with asyncio.timeout(TIMEOUT):
        while len(data) < size:
            message = await client.recv()
            assert isinstance(message, bytes)
            data += message
    return data


@dataclass(frozen=True)
class Hostile:
    """One frame, the line serve prints for it, and whether it is echoed as sent."""

    name: str
    frame: bytes
    line: str  # on stdout, or on stderr after "PEER: " when ``printed`` is False
    echoed: bool = True
    printed: bool = True
    echo_error: str = ""  # the stderr line (after "PEER: ") when the echo fails


HOSTILE = {
    "msgpack": [
        Hostile("array nested 900 deep", b"\x91" * DEEP + b"\x01", "[" * DEEP + "1" + "]" * DEEP),
        Hostile("map nested 900 deep", b"\x81\xa1k" * DEEP + b"\x02",
                '{"k":' * DEEP + "2" + "}" * DEEP),
        Hostile("NaN and the infinities",
                msgpack.packb({"x": math.nan, "y": [math.inf, -math.inf]}),
                '{"x":{"$float":"NaN"},"y":[{"$float":"Infinity"},{"$float":"-Infinity"}]}'),
        Hostile("an extension type", msgpack.packb(msgpack.ExtType(5, b"ab")),
                '{"$ext":5,"data":"6162"}'),
        Hostile("a timestamp", bytes.fromhex("d6ff00000001"),
                '"Timestamp(seconds=1, nanoseconds=0)"'),
        Hostile("a byte string key", msgpack.packb({b"k": b"\x00", "k": None}),
                '{"6b":{"$bytes":"00"},"k":null}'),
        Hostile("a 512 KiB string", msgpack.packb("\x00" * 512 * 1024),
                '"' + "\\u0000" * 512 * 1024 + '"'),
    ],
    "cbor": [
        Hostile("an integer of 20,001 bits", cbor2.dumps(BIG), f'{{"$int":"{BIG_HEX}"}}'),
        Hostile("its negative", cbor2.dumps(-BIG), f'{{"$int":"-{BIG_HEX}"}}'),
        Hostile("an integer of 4,300 digits", cbor2.dumps(10**4300 - 1), "9" * 4300),
        Hostile("an integer of 4,301 digits", cbor2.dumps(-(10**4300)),
                f'{{"$int":"{hex(-(10**4300))}"}}'),
        Hostile("the infinities and NaN", cbor2.dumps([math.inf, -math.inf, math.nan]),
                '[{"$float":"Infinity"},{"$float":"-Infinity"},{"$float":"NaN"}]'),
        Hostile("an unknown tag", bytes.fromhex("d9ffff820102"), '{"$tag":65535,"value":[1,2]}'),
        Hostile("a set", bytes.fromhex("d9010283010203"), '{"$set":[1,2,3]}'),
    ] + ([
        Hostile("undefined and simple values", bytes.fromhex("82f7f0"),
                '["undefined","CBORSimpleValue(16)"]'),
        Hostile("nested 250 deep", b"\x81" * 250 + b"\x01", "[" * 250 + "1" + "]" * 250),
    ] if not CBOR2_5 else [
        # cbor2 5 (Pyodide's; .ci/run runs this on it too): a simple value's repr names
        # its field, and the pure-Python encoder stops near 170 levels of nesting.
        Hostile("undefined and simple values", bytes.fromhex("82f7f0"),
                '["undefined","CBORSimpleValue(value=16)"]'),
        Hostile("nested 250 deep", b"\x81" * 250 + b"\x01", "[" * 250 + "1" + "]" * 250,
                echoed=False, echo_error="could not echo a frame: ValueError: cannot encode "
                f"an item nested this deep with cbor2 {version('cbor2')}: its pure-Python "
                "encoder stops at Python's recursion limit (about 170 levels)"),
    ]),
    "jsonl": [
        Hostile("NaN and the infinities", b"[NaN,Infinity,-Infinity]\n",
                '[{"$float":"NaN"},{"$float":"Infinity"},{"$float":"-Infinity"}]'),
        Hostile("a lone surrogate", b'"\\ud800"\n', '"\\ud800"', echoed=False,
                echo_error="could not echo a frame: UnicodeEncodeError: 'utf-8' codec can't "
                "encode character '\\ud800' in position 1: surrogates not allowed"),
        Hostile("control characters", b'"a\\nb\\u001b[2J"\n', '"a\\nb\\u001b[2J"'),
    ],
}


@pytest.mark.parametrize("codec", sorted(HOSTILE))
async def test_serve_prints_each_hostile_frame_and_keeps_echoing(
    codec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = HOSTILE[codec]
    next_frame = NEXT[codec]
    async with serve_in_process(capsys, "--codec", codec, "--echo") as (url, output):
        async with connect(url, compression=None, max_size=None, open_timeout=10) as client:
            local = client.local_address
            who = f"{local[0]}:{local[1]}"
            for case in cases:
                await client.send(case.frame)
                await client.send(next_frame)
                expected = (case.frame if case.echoed else b"") + next_frame
                got = await receive_bytes(client, len(expected))
                assert got == expected, case.name
        await output.wait_err(rf"^{re.escape(who)} disconnected \(close code 1000\)$")
    stdout = []
    stderr = [f"{who} connected"]
    for case in cases:
        if case.printed:
            stdout.append(case.line)
        else:
            stderr.append(f"{who}: {case.line}")
        if case.echo_error:
            stderr.append(f"{who}: {case.echo_error}")
        stdout.append('"next"')
    stderr.append(f"{who} disconnected (close code 1000)")
    assert output.out == stdout
    assert [line for line in output.err if line.startswith(who)] == stderr


async def test_serve_reports_a_frame_it_cannot_print_and_keeps_echoing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # CborCodec refuses array and map keys and bignums over 1024 bytes in a fraction
    # (issue 14), so the frame that cannot be printed is a fraction CborCodec accepts,
    # printed under a lower int-to-str limit (as a process may set one).
    numerator = 2**8000 + 1  # 1,001 bytes, 2,409 digits
    frame = bytes.fromhex("d81e82") + cbor2.dumps(numerator) + cbor2.dumps(3)
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        async with serve_in_process(capsys, "--codec", "cbor", "--echo") as (url, output):
            async with connect(url, compression=None, open_timeout=10) as client:
                local = client.local_address
                who = f"{local[0]}:{local[1]}"
                await client.send(frame)
                await client.send(NEXT["cbor"])
                expected = frame + NEXT["cbor"]
                assert await receive_bytes(client, len(expected)) == expected
            await output.wait_err(rf"^{re.escape(who)} disconnected \(close code 1000\)$")
    finally:
        sys.set_int_max_str_digits(limit)
    assert output.out == ['"next"']
    assert [line for line in output.err if line.startswith(who)] == [
        f"{who} connected",
        f"{who}: cannot print a frame: ValueError: Exceeds the limit (640 digits) for "
        "integer string conversion; use sys.set_int_max_str_digits() to increase the limit",
        f"{who} disconnected (close code 1000)",
    ]


def test_serve_process_prints_json_nested_900_deep_and_keeps_the_connection() -> None:
    """As a user runs it: the JSON Lines frame nested 900 deep that closed with 1011."""
    deep = b"[" * DEEP + b"1" + b"]" * DEEP + b"\n"
    with serving("--codec", "jsonl", "--echo") as (proc, url, log):
        from websockets.sync.client import connect as sync_connect

        with sync_connect(url, open_timeout=10, max_size=None) as ws:
            ws.send(deep)
            ws.send(b'{"x":NaN}\n')
            data = b""
            while not data.endswith(b'{"x":NaN}\n'):
                data += ws.recv(timeout=10)  # type: ignore[operator]
        log.wait_for(r"disconnected \(close code 1000\)$")
        assert proc.stdout is not None
    out = proc.stdout.read()
    assert out.splitlines() == [deep.decode().strip(), '{"x":{"$float":"NaN"}}']
    assert data in (deep + b'{"x":NaN}\n', b'{"x":NaN}\n')
    assert not [line for line in log.rest() if "Traceback" in line]


# connect: the same printing, and printed frames can be sent back ---------------------


def test_connect_prints_nan_as_json_and_sends_it_back() -> None:
    lines = '{"x":{"$float":"NaN"},"i":{"$int":"-0x10"},"b":{"$bytes":"00ff"}}\n'
    with serving("--codec", "msgpack", "--echo") as (_, url, _):
        result = run("connect", url, "--codec", "msgpack", "--linger", LINGER, input=lines)
    assert result.returncode == 0, result.stderr
    assert result.stdout == '{"x":{"$float":"NaN"},"i":-16,"b":{"$bytes":"00ff"}}\n'


# The printer and the parser, in-process -----------------------------------------------


def test_json_text_exact_forms() -> None:
    assert json_text({"a": [1, 2.5, None, True, "é"]}) == '{"a":[1,2.5,null,true,"é"]}'
    assert json_text({2: "a", 1.5: "b", None: "c", True: "d", b"\x01": "e"}) == (
        '{"2":"a","1.5":"b","null":"c","true":"d","01":"e"}'
    )
    assert json_text({math.inf: 1, 10**4300: 2}) == f'{{"Infinity":1,"{hex(10**4300)}":2}}'
    assert json_text({10**4300 - 1: [10**4300 - 1]}) == f'{{"{"9" * 4300}":[{"9" * 4300}]}}'
    assert json_text([-(10**4300 - 1), 10**4300]) == (
        f'[-{"9" * 4300},{{"$int":"{hex(10**4300)}"}}]'
    )
    assert json_text({(1,): 2, "x": 3}) == '{"$map":[[[1],2],["x",3]]}'
    assert json_text(cbor2.CBORTag(1000, cbor2.CBORTag(1001, b"\x02"))) == (
        '{"$tag":1000,"value":{"$tag":1001,"value":{"$bytes":"02"}}}'
    )
    assert json_text([bytearray(b"\x01"), memoryview(b"\x02"), frozenset()]) == (
        '[{"$bytes":"01"},{"$bytes":"02"},{"$set":[]}]'
    )
    assert json_text(Fraction(1, 3)) == '"Fraction(1, 3)"'
    assert json_text([[], {}, (), [[]], {"a": {}}]) == '[[],{},[],[[]],{"a":{}}]'
    looped: list[object] = [1]
    looped.append(looped)
    with pytest.raises(ValueError, match=r"^the frame contains itself \(a shared reference\)$"):
        json_text({"x": looped})
    deep: list[object] = []
    for _ in range(100_000):  # far deeper than any recursion limit
        deep = [deep]
    assert json_text(deep) == "[" * 100_001 + "]" * 100_001
    assert format_frame("cbor", "\ud800x") == '"\\ud800x"'


SCALARS = st.none() | st.booleans() | st.floats() | st.text() | st.integers()
KEYS = st.none() | st.booleans() | st.floats() | st.text() | st.integers()
VALUES = st.recursive(
    SCALARS | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


@given(VALUES)
def test_json_fast_path_prints_what_the_printer_prints(value: object) -> None:
    """json's encoder, tried first, agrees with the printer wherever it succeeds."""
    assert json_text(value) == _write(value)


@pytest.mark.parametrize("digits", [4300, 4301])
@pytest.mark.parametrize("sign", [1, -1])
def test_json_fast_path_and_printer_agree_on_the_digit_limit(digits: int, sign: int) -> None:
    number = sign * (10**digits - 1)
    value = {number: [number, (number,)], "x": number}
    assert json_text(value) == _write(value)


def test_parse_input_line_reads_the_printed_forms_back() -> None:
    line = b'[{"$float":"NaN"},{"$float":"-Infinity"},{"$int":"0x10"},{"$bytes":"00"}]\n'
    value = parse_input_line("cbor", line)
    assert math.isnan(value[0])
    assert value[1:] == [-math.inf, 16, b"\x00"]
    assert parse_input_line("jsonl", b'{"$int":"0x10"}') == {"$int": "0x10"}
    assert parse_input_line("msgpack", b'{"$float":1,"$int":2}') == {"$float": 1, "$int": 2}
    for bad, message in [
        (b'{"$float":"nan"}', 'a {"$float": ...} value must be "NaN", "Infinity" or "-Infinity"'),
        (b'{"$int":"0xzz"}', 'a {"$int": ...} value is not a hex integer ("0x...")'),
        (b'{"$bytes":"0"}', 'a {"$bytes": ...} value is not valid hex'),
        (b"[" * 100_000, "nested too deeply for the JSON parser"),
    ]:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            parse_input_line("msgpack", bad)


def test_describe_is_one_bounded_line() -> None:
    assert _describe(ValueError("x" * 10_000)) == "x" * 197 + "..."
    assert _describe(ValueError("first\nsecond")) == "first"
    assert _describe(ValueError("")) == "ValueError"
    assert _describe(ValueError("y" * 200)) == "y" * 200

