"""Bridge TCP and WebSockets: any TCP protocol across a WebSocket, in either direction.

Theory of operation
-------------------
[`pump`][wsframed.bridge.pump] joins one [`WsStream`][wsframed.WsStream] and one asyncio TCP
connection with two loops, each "read a chunk, write it, wait for the other side's backpressure":

- *up*: ``ws.read()`` -> ``writer.write()`` -> ``await writer.drain()``;
- *down*: ``reader.read()`` -> ``ws.write()`` -> ``await ws.drain()``.

Neither loop reads more until the chunk in hand was accepted, so a slow side pauses
the other all the way to its socket, and the bridge holds a bounded number of bytes
per connection (the chunk, asyncio's and websockets' bounded buffers) whatever the
volumes. A supervisor watches both loops and maps every ending to both sides:

- the target sent EOF: flush, close the WebSocket with 1000; bytes the client sent
  before its close reply still reach the target;
- the WebSocket closed cleanly: ``write_eof()`` on TCP (the last bytes are not cut
  off by a reset), then read and drop what the target still sends until its EOF, for
  at most ``close_timeout``;
- a text message under ``text="reject"``: close 1003 (as websockify), close TCP;
- the WebSocket failed (1006, 1011, ...): close TCP;
- TCP failed (reset, broken pipe): close the WebSocket with 1011, reset TCP;
- no byte either way for ``idle_timeout``, or the server shutting down: close the
  WebSocket with 1001, close TCP.

A WebSocket close is not a TCP half-close: RFC 6455 section 5.5.1 has the receiver
of a close frame answer "as soon as practical", after which neither side may send
data. So the close handshake carries the *end* of a connection, and what the target
answers after a client's close is lost. Between two wsframed bridges the
``wsframed.halfclose`` subprotocol carries a real half-close: binary messages are the
bytes, and a text message means "no more bytes from me" (``write_eof()`` on the
other side); the WebSocket closes with 1000 once both directions have ended.

[`serve_bridge`][wsframed.bridge.serve_bridge] runs a server in either direction: ``ws://`` (or
``wss://``) in, ``tcp://`` out, each WebSocket client getting its own TCP connection, dialled after
the WebSocket was accepted; or ``tcp://`` in, ``ws://``/``wss://`` out, so that two
bridges make a tunnel. ``add_arguments`` and ``run_command`` are the
``wsframed bridge`` command; ``python -m wsframed.bridge`` runs it too.

One module per layer: ``wsframed.bridge.pumping`` (one connection pair),
``wsframed.bridge.admission`` (``max_connections``, counted from the TCP accept),
``wsframed.bridge.server`` (endpoints and bridge servers) and
``wsframed.bridge.command`` (the command line).
"""

from .command import _ssl_contexts as _ssl_contexts
from .command import add_arguments, run_command
from .pumping import HALF_CLOSE_SUBPROTOCOL, PumpResult, pump
from .server import (
    BINARY_SUBPROTOCOL,
    DEFAULT_MAX_CONNECTIONS,
    BridgeServer,
    Endpoint,
    parse_endpoint,
    serve_bridge,
)
from .server import logger as logger

__all__ = [
    "BINARY_SUBPROTOCOL",
    "DEFAULT_MAX_CONNECTIONS",
    "HALF_CLOSE_SUBPROTOCOL",
    "BridgeServer",
    "Endpoint",
    "PumpResult",
    "add_arguments",
    "parse_endpoint",
    "pump",
    "run_command",
    "serve_bridge",
]
