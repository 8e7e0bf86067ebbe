"""Sans-I/O codecs: bytes in, items out; items in, bytes out.

Every codec enforces ``max_frame_size`` when encoding (nothing is written) and when
decoding (before an oversized frame is buffered in full). Codecs never import asyncio
or websockets; see [`wsframed.codecs.base`][wsframed.codecs.base] for the protocols a codec of your
own implements.

[`MsgspecCodec`][wsframed.codecs.MsgspecCodec] (typed msgpack or JSON frames) needs
msgspec (``pip install 'wsframed[msgspec]'``); it is imported when first used.
"""

from typing import TYPE_CHECKING, Any

from .base import Buffer, Codec, Decoder
from .bytes import BytesCodec
from .cbor import CborCodec
from .jsonl import JsonLinesCodec
from .length import LengthPrefixedCodec
from .lines import LinesCodec
from .msgpack import MsgpackCodec

if TYPE_CHECKING:
    from .msgspec_codec import InvalidFrame as InvalidFrame
    from .msgspec_codec import MsgspecCodec as MsgspecCodec
    from .msgspec_codec import MsgspecDecoder as MsgspecDecoder

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

# Imported on first use, and left out of __all__ so that ``import *`` works without
# the extra.
_OPTIONAL = frozenset({"InvalidFrame", "MsgspecCodec", "MsgspecDecoder"})


def __getattr__(name: str) -> Any:
    """Import the codecs that need an optional dependency when first asked for."""
    if name in _OPTIONAL:
        from . import msgspec_codec  # ImportError naming the extra without msgspec

        return getattr(msgspec_codec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
