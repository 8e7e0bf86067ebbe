"""Node.js peers (``ws`` + ``@msgpack/msgpack`` / ``cbor-x`` / JSON) against ``wsframed.serve``.

``node/peer.mjs`` encodes frames with the JavaScript library for the codec and sends
the byte stream cut at random offsets (empty, 1-byte, small and large messages). The
server here frames it with wsframed's codec, answers every frame, reports what it
received, then sends items of its own, all through a :class:`Tap` that digests the
raw bytes. The test checks both directions byte for byte (length and SHA-256 of the
stream each side sent against what the other side read) and item by item.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import cbor2
import pytest

import wsframed
from wsframed import Framed
from wsframed.codecs import CborCodec, JsonLinesCodec, LengthPrefixedCodec, MsgpackCodec

from .conftest import INTEROP_DIR, Tap

PEER = INTEROP_DIR / "node" / "peer.mjs"
END_MARKER = b"wsframed-interop:end"
SEED = 20240611
COUNT = 1000
WRITE_CHUNK_SIZE = 997  # wsframed's messages cut its frames at arbitrary offsets too
PATTERN = bytes(i % 251 for i in range(100000))

pytestmark = pytest.mark.timeout(30)


def uint8_array_as_bytes(value: bytes, immutable: bool) -> bytes:
    """cbor2 semantic decoder for tag 64 (RFC 8746 uint8 typed array, cbor-x's Uint8Array).

    cbor2 6 calls semantic decoders, and ``tag_hook``, as ``(value or tag, immutable)``;
    its docstring still shows cbor2 5's ``(decoder, tag)``.
    """
    return value


@dataclass(frozen=True)
class Variant:
    codec: str  # what peer.mjs speaks
    server_codec: Any
    node_options: dict[str, Any] = field(default_factory=dict)


VARIANTS = {
    "length": Variant("length", LengthPrefixedCodec()),
    "msgpack": Variant("msgpack", MsgpackCodec()),
    # cbor-x's defaults on Node: a Uint8Array goes out as tag 64 (a Buffer as a plain
    # byte string); CborCodec decodes tag 64 as bytes by default.
    "cbor": Variant("cbor", CborCodec()),
    # The two fixes: tagUint8Array: false in JavaScript, or a semantic decoder in Python.
    "cbor-untagged": Variant("cbor", CborCodec(), {"tagUint8Array": False}),
    "cbor-tag64-as-bytes": Variant(
        "cbor", CborCodec(semantic_decoders={64: uint8_array_as_bytes})
    ),
    # JSON.stringify + "\n" one way, JSON.parse per line the other.
    "jsonl": Variant("jsonl", JsonLinesCodec()),
}

# Every JSON escape, and characters neither side escapes.
ESCAPES = '"\\/\b\f\n\r\t\x00\x1f\x7f\u2028\u2029'


def server_items(codec: str) -> list[Any]:
    """What the server sends of its own after the replies."""
    if codec == "length":
        return [b"", b"\x00", bytes(range(256)), b"\xff" * 70000, PATTERN]
    if codec == "jsonl":  # JavaScript Numbers: integers within the safe range
        return [
            None, True, False, 0, -1, 2**31, 2**53 - 1, -(2**53 - 1), 1.5, -0.25, 0.1,
            1e300, 1e-07, 1e16, "", "héllo ✓ 😀", "y" * 60000, ESCAPES,
            [], [1, [2, [3]]], {}, {"k": [None, "é"]}, {"a": 1, "b": {"c": [1.5, "d"]}},
        ]  # fmt: skip
    items: list[Any] = [
        None, True, False, 0, -1, 23, 24, 127, 128, 255, 256, 65535, 65536,
        -32, -33, -128, -129, -32768, -32769, 2**31, 2**32, 2**53 + 1,
        2**63 - 1, 2**64 - 1, -(2**63), 1.5, -0.25, 1e300,
        "", "héllo ✓ 😀", "y" * 70000, b"", bytes(range(256)), b"\xab" * 100000,
        [], [1, [2, [3]]], {}, {"k": [b"v", None]}, {"a": 1, "b": {"c": [1.5, "d"]}},
    ]  # fmt: skip
    if codec == "cbor":
        items += [cbor2.CBORTag(64, b"\x00\x01"), 2**64, -(2**64) - 1]
    return items


def from_json(value: Any, u8: Any) -> Any:
    """Rebuild a Python value from peer.mjs's tagged JSON (``u8`` maps ``$u8`` bytes)."""
    if isinstance(value, list):
        return [from_json(v, u8) for v in value]
    if isinstance(value, dict):
        if "$bytes" in value:
            return bytes.fromhex(value["$bytes"])
        if "$u8" in value:
            return u8(bytes.fromhex(value["$u8"]))
        if "$bigint" in value:
            return int(value["$bigint"])
        if "$tag" in value:
            return cbor2.CBORTag(value["$tag"], from_json(value["value"], u8))
        return {k: from_json(v, u8) for k, v in value.items()}
    return value


def reply(codec: str, index: int, item: Any) -> Any:
    if codec == "length":
        return hashlib.sha256(item).digest() + item[::-1]
    return ["echo", index, item]


def is_end(codec: str, item: Any) -> bool:
    if codec == "length":
        return bool(item == END_MARKER)
    return isinstance(item, dict) and item.get("wsframed-interop") == "end"


async def run_peer(node: str, config: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node, str(PEER), json.dumps(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=INTEROP_DIR,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"peer.mjs failed:\n{stderr.decode(errors='replace')}"
    result: dict[str, Any] = json.loads(stdout)
    return result


@pytest.mark.parametrize("name", list(VARIANTS))
async def test_node_peer_frames_both_ways(node: str, name: str) -> None:
    variant = VARIANTS[name]
    codec = variant.codec
    ours = server_items(codec)
    state: dict[str, Any] = {}

    async def handler(framed: Framed[Any]) -> None:
        tap = Tap(framed.stream)
        state["tap"] = tap
        tapped = Framed(tap, framed.codec)
        received: list[Any] = []
        state["received"] = received
        try:
            done = False
            while not done:
                for item in await tapped.recv_many():
                    if is_end(codec, item):
                        done = True
                        break
                    tapped.feed(reply(codec, len(received), item))
                    received.append(item)
                await tapped.flush()
            read = tap.read_digest
            summary = {"received": len(received), "length": read.length, "sha256": read.hexdigest}
            tapped.feed(json.dumps(summary).encode() if codec == "length" else summary)
            await tapped.send_all(ours)
        except BaseException as exc:
            state["error"] = exc
            raise

    async with wsframed.serve(
        handler, "127.0.0.1", 0, codec=variant.server_codec, write_chunk_size=WRITE_CHUNK_SIZE
    ) as server:
        config = {
            "url": f"ws://127.0.0.1:{server.port}/",
            "codec": codec,
            "seed": SEED,
            "count": COUNT,
            **variant.node_options,
        }
        result = await run_peer(node, config)

    assert "error" not in state, state.get("error")
    tap: Tap = state["tap"]
    received = state["received"]

    # The byte stream was cut at random offsets: frames split across messages, messages
    # holding several frames, empty messages.
    assert result["frames_split"] > 20
    assert result["messages_with_several_frames"] > 20
    assert result["empty_messages"] > 0

    # JavaScript -> wsframed: byte-exact, frame by frame.
    assert result["sent"] == {
        "length": tap.read_digest.length,
        "sha256": tap.read_digest.hexdigest,
    }
    assert result["summary"] == {
        "received": len(received),
        "length": result["sent"]["length"],
        "sha256": result["sent"]["sha256"],
    }
    assert received == from_json(result["items_sent"], bytes)
    assert_known_items(codec, variant, received)

    # wsframed -> JavaScript: byte-exact, and every reply decoded as sent.
    written = tap.written_digest
    assert result["received"] == {"length": written.length, "sha256": written.hexdigest}
    assert result["replies"] == len(received)
    assert result["mismatch_count"] == 0, result["mismatches"]
    assert from_json(result["received_items"], lambda b: cbor2.CBORTag(64, b)) == ours

    # The handler returned: a clean close with 1000, seen by ws.
    assert result["close"] == {"code": 1000, "reason": ""}


def assert_known_items(codec: str, variant: Variant, received: list[Any]) -> None:
    """The fixed items at the head of peer.mjs's stream, as Python decoded them."""
    if codec == "length":
        assert received[:4] == [b"", b"\x00", bytes(range(256)), PATTERN]
        return
    if codec == "jsonl":
        assert received[:6] == ["héllo ✓ 😀", -129, 2**53 - 1, -(2**53 - 1), 1.5, 0.1]
        assert [type(value) for value in received[:6]] == [str, int, int, int, float, float]
        assert received[6:8] == [1e-07, 1e21]  # written 1e-7 and 1e+21 by JavaScript
        assert [type(value) for value in received[6:8]] == [float, float]
        assert received[8:11] == [[], {}, {"nested": [1, [2, [3, {"deep": True}]]]}]
        assert received[11] == "x" * 60000
        assert received[12:16] == [None, True, False, ESCAPES]
        # Pitfall: a JavaScript Number with an integer value (2.0) is written "2" by
        # JSON.stringify: Python reads an int.
        assert received[16] == 2
        assert type(received[16]) is int
        return
    assert received[0] == "héllo ✓ 😀"
    assert received[1] == -129
    # Pitfall: cbor-x, and @msgpack/msgpack with useBigInt64 (needed to decode 64-bit
    # integers exactly), encode a Number past 32 bits as a float64; a BigInt stays an
    # integer.
    assert received[2] == 2**32
    assert type(received[2]) is float
    assert received[15] == 2**32
    assert type(received[15]) is int
    assert received[3] == 2**64 - 1
    assert received[4] == -(2**63)
    assert received[5] == 1.5
    assert received[6] == b"\x00\x01\x02\xff"  # a Buffer (cbor) or a Uint8Array (msgpack)
    assert type(received[6]) is bytes
    assert received[7:10] == [[], {}, {"nested": [1, [2, [3, {"deep": True}]]]}]
    assert received[10] == PATTERN
    assert received[11] == "x" * 70000
    assert received[12:15] == [None, True, False]
    if codec == "cbor":
        # Pitfall: on Node, cbor-x sends a plain Uint8Array with tag 64; CborCodec
        # unwraps it (plain cbor2 would give CBORTag(64, ...)).
        assert received[16] == b"\x00\x01\x02\xff"
        assert type(received[16]) is bytes


async def test_cbor_x_records_are_not_plain_cbor(node: str) -> None:
    """Pitfall: ``new Encoder()`` in cbor-x writes objects as records (its own extension).

    A record is tag 57343 around a structure definition and the values, which cbor2
    leaves as a ``CBORTag`` (and, in longer streams, a record that refers to an earlier
    definition fails to decode). ``useRecords: false`` gives CBOR maps; cbor-x's
    module-level ``encode()`` already uses it.
    """
    script = (
        "import { Encoder } from 'cbor-x';"
        "const items = [{ a: 1, b: [2] }, { a: 3, b: [4] }];"
        "for (const options of [{}, { useRecords: false }]) {"
        "  const encoder = new Encoder(options);"
        "  console.log(Buffer.concat(items.map((i) => encoder.encode(i))).toString('hex'));"
        "}"
    )
    process = await asyncio.create_subprocess_exec(
        node, "--input-type=module", "-e", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=INTEROP_DIR,
    )  # fmt: skip
    async with asyncio.timeout(15):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode(errors="replace")
    with_records, plain = (bytes.fromhex(line) for line in stdout.decode().split())

    decoder = CborCodec().decoder()
    decoder.feed(with_records)
    records = list(decoder)
    assert [type(r) for r in records] == [cbor2.CBORTag, cbor2.CBORTag]
    assert [r.tag for r in records] == [57343, 57343]

    decoder = CborCodec().decoder()
    decoder.feed(plain)
    assert list(decoder) == [{"a": 1, "b": [2]}, {"a": 3, "b": [4]}]
