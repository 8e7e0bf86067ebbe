"""Sans-I/O codecs: bytes in, items out; items in, bytes out.

Every codec enforces ``max_frame_size`` when encoding (nothing is written) and when
decoding (before an oversized frame is buffered in full). Codecs never import asyncio
or websockets; see [`wsframed.codecs.base`][wsframed.codecs.base] for the protocols a codec of your
own implements.
"""

from .base import Buffer, Codec, Decoder
from .bytes import BytesCodec
from .cbor import CborCodec
from .jsonl import JsonLinesCodec
from .length import LengthPrefixedCodec
from .lines import LinesCodec
from .msgpack import MsgpackCodec

__all__ = [
    "Buffer",
    "BytesCodec",
    "CborCodec",
    "Codec",
    "Decoder",
    "JsonLinesCodec",
    "LengthPrefixedCodec",
    "LinesCodec",
    "MsgpackCodec",
]
