"""MsgspecCodec against the Node.js peers of test_node.py (``@msgpack/msgpack``, JSON).

The same conversation as ``test_node_peer_frames_both_ways``, with the server's codec
replaced by ``MsgspecCodec()`` (untyped msgpack decoded and encoded by msgspec) or
``MsgspecCodec(Any, "json")`` (JSON Lines): every frame the peer sent cut at random
offsets decoded as msgpack-python (``json``) decodes it, every reply and item of the
server's decoded by the JavaScript library (``JSON.parse``) as sent, and the bytes each
way checked by length and SHA-256.
"""

from __future__ import annotations

from typing import Any

import pytest

from wsframed.codecs import MsgspecCodec

from . import test_node

pytestmark = pytest.mark.timeout(30)


async def test_node_msgpack_peer_against_msgspec_codec(
    node: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variant = test_node.Variant("msgpack", MsgspecCodec())
    monkeypatch.setitem(test_node.VARIANTS, "msgspec-msgpack", variant)
    await test_node.test_node_peer_frames_both_ways(node, "msgspec-msgpack")


async def test_node_json_lines_peer_against_msgspec_codec(
    node: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variant = test_node.Variant("jsonl", MsgspecCodec(Any, "json"))
    monkeypatch.setitem(test_node.VARIANTS, "msgspec-json", variant)
    await test_node.test_node_peer_frames_both_ways(node, "msgspec-json")
