"""msgpack-RPC peers over any [`Framed`][wsframed.Framed] whose codec carries arrays.

Wire format (the msgpack-RPC specification; nothing of wsframed's own)::

    request       [0, msgid, method, params]    msgid: uint32, method: str, params: array
    response      [1, msgid, error, result]     error: nil on success, any object otherwise
    notification  [2, method, params]           no response

Errors this module sends are strings, ``"<TypeName>: <message>"``
(``"ZeroDivisionError: division by zero"``, ``"NoMethodError: no method named 'x'"``), the
shape most msgpack-RPC implementations send and every one can display. Any error object
is accepted from the peer and kept as [`RemoteError.error`][wsframed.rpc.RemoteError.error].
A handler that raises [`RemoteError`][wsframed.rpc.RemoteError] sends its ``error``
object unchanged (a Neovim-style ``[code, message]`` array, a map, ...).

How it works
------------
One reader task takes every decoded message the Framed holds and places them in order
(``core.py``): a response resolves the future of the call waiting for its msgid (in any
order; one for a call that timed out is dropped); a request or notification runs its
handler, a sync one right there in the reader, an async one as a task. At most
``max_concurrency`` handlers run at once; further requests wait in a queue, in arrival
order. Every bound is finite and holds per message:

* the queue: ``max_concurrency`` requests, then the reader stops reading (backpressure);
  ``16 * max_concurrency`` while calls of this side are in flight (their responses may
  sit behind the peer's requests), then ``"BusyError: ..."`` refusals;
* this side's calls: ``max_pending`` in flight (1024), each waiting at most its
  ``timeout`` (``request_timeout``, 60 s) for a slot and its response;
* the log: at most 10 records of each kind per connection, then one summary with the
  count when it ends (``logs.py``).

Errors::

    WsFramedError
    ├── RemoteError          the peer answered a call with an error (this module)
    ├── ConnectionClosed     the connection ended while calls were pending, or was gone
    └── ClosedStreamError    this side closed the peer (aclose()) and then used it
    TimeoutError             no free slot or no response within the timeout (builtin)
"""

from .errors import NOTIFICATION, REQUEST, RESPONSE, RemoteError
from .logs import LOG_FIRST
from .peer import DEFAULT_MAX_PENDING, DEFAULT_REQUEST_TIMEOUT, RpcPeer

__all__ = [
    "DEFAULT_MAX_PENDING",
    "DEFAULT_REQUEST_TIMEOUT",
    "LOG_FIRST",
    "NOTIFICATION",
    "REQUEST",
    "RESPONSE",
    "RemoteError",
    "RpcPeer",
]
