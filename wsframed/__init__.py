"""wsframed: a WebSocket connection as an asyncio byte stream, framed by codecs.

Layers, bottom up: [`WsStream`][wsframed.WsStream] (messages in, one byte stream out, and back),
the sans-I/O codecs in ``wsframed.codecs``, and [`Framed`][wsframed.Framed] (a codec over any
byte stream).
"""

from . import events
from .broadcasting import BroadcastResult, broadcast
from .client import connect
from .errors import (
    ClosedStreamError,
    ConnectionClosed,
    DecodeError,
    EndOfStream,
    FrameTooLarge,
    IncompleteFrame,
    ProtocolError,
    WsFramedError,
)
from .framed import Framed, FramedSink, FramedStream
from .negotiation import CodecMismatch
from .request import Request
from .server import FramedServer, serve
from .stream import EventSubscription, TextPolicy, WsStream

__version__ = "0.1.0"

__all__ = [
    "BroadcastResult",
    "ClosedStreamError",
    "CodecMismatch",
    "ConnectionClosed",
    "DecodeError",
    "EndOfStream",
    "EventSubscription",
    "FrameTooLarge",
    "Framed",
    "FramedServer",
    "FramedSink",
    "FramedStream",
    "IncompleteFrame",
    "ProtocolError",
    "Request",
    "TextPolicy",
    "WsFramedError",
    "WsStream",
    "__version__",
    "broadcast",
    "connect",
    "events",
    "serve",
]
