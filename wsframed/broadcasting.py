"""broadcast(): one frame to many connections, encoded once, waiting for none of them.

As websockets' ``broadcast()`` does for messages, [`broadcast`][wsframed.broadcast]
is a plain function: it encodes the item once per codec, writes the bytes to every
connection's send buffer and returns at once; each connection is then flushed by a
background task of its own, so a slow client delays nobody, the caller included.

What happens to a connection that cannot keep up (the policy): each connection has a
*backlog*, the bytes broadcast to it and not yet flushed. A frame that would take the
backlog over ``max_backlog`` is not written to that connection: with ``on_slow="skip"``
(the default) the connection just misses that frame, and with ``on_slow="close"`` it is
closed (1008, "too slow: ..."), for protocols where a missing frame would corrupt the
peer's state. Either way the connection is listed in the returned
[`BroadcastResult`][wsframed.BroadcastResult], and memory stays bounded by
``max_backlog`` per connection. A connection whose sending side is closed, or whose
background flush failed (the peer left), is listed as closed and skipped.

A burst of broadcasts with no await between them counts in full in every backlog: size
``max_backlog`` above the largest burst, or let the loop run between broadcasts.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .framed import Framed
from .stream import WsStream

__all__ = ["BroadcastResult", "broadcast"]

T = TypeVar("T")

_POLICY_VIOLATION = 1008  # RFC 6455 section 7.4.1


@dataclass
class BroadcastResult:
    """What one [`broadcast`][wsframed.broadcast] did with each connection."""

    sent: int = 0
    """Connections the frame was written to (it leaves with their background flush)."""
    slow: list[Framed[Any]] = field(default_factory=list)
    """Connections whose backlog was too large: skipped, or closed with ``on_slow="close"``."""
    closed: list[Framed[Any]] = field(default_factory=list)
    """Connections already closed for sending, or whose earlier flush failed: skipped."""


class _Backlog:
    """One connection's bytes broadcast and not yet flushed, and the task flushing them."""

    __slots__ = ("failed", "size", "task")

    def __init__(self) -> None:
        self.size = 0
        self.task: asyncio.Task[None] | None = None
        self.failed = False


_backlogs: weakref.WeakKeyDictionary[Framed[Any], _Backlog] = weakref.WeakKeyDictionary()


async def _flush(framed: Framed[Any], backlog: _Backlog) -> None:
    try:
        while backlog.size:
            # flush() sends everything written before it returns (later writes
            # included, over a WsStream): what is left after it is new.
            written = backlog.size
            await framed.flush()
            backlog.size -= written
    except Exception:  # the peer left or the stream failed: its reader will see why
        backlog.failed = True
        backlog.size = 0
    finally:
        backlog.task = None


def broadcast(
    connections: Iterable[Framed[T]],
    item: T,
    *,
    max_backlog: int = 1024 * 1024,
    on_slow: Literal["skip", "close"] = "skip",
) -> BroadcastResult:
    """Send ``item`` to every connection in ``connections`` without waiting for any.

    The item is encoded once per distinct codec (an encoding error, such as
    [`FrameTooLarge`][wsframed.errors.FrameTooLarge], is raised before anything is
    written to anyone). Each connection's bytes are flushed by a background task; a
    connection with more than ``max_backlog`` bytes unflushed misses the frame or, with
    ``on_slow="close"``, is closed with 1008 (see the module docstring for the whole
    policy). Call it from inside the event loop. Frames broadcast to one connection
    arrive in order, and never interleave with frames sent to it otherwise.
    """
    if max_backlog <= 0:
        raise ValueError(f"max_backlog must be a positive number of bytes, not {max_backlog}")
    if on_slow not in ("skip", "close"):
        raise ValueError(f"on_slow must be 'skip' or 'close', not {on_slow!r}")
    loop = asyncio.get_running_loop()
    targets = list(connections)
    encoded: dict[int, bytes] = {}
    for framed in targets:
        key = id(framed.codec)
        if key not in encoded:
            encoded[key] = framed.codec.encode(item)
    result = BroadcastResult()
    for framed in targets:
        backlog = _backlogs.get(framed)
        if backlog is None:
            backlog = _backlogs[framed] = _Backlog()
        data = encoded[id(framed.codec)]
        if backlog.failed or framed._send_closed:
            result.closed.append(framed)
            continue
        if backlog.size + len(data) > max_backlog:
            result.slow.append(framed)
            if on_slow == "close":
                _close_slow(framed, backlog, loop, max_backlog)
            continue
        try:
            framed._write(data)
        except Exception:  # the stream closed its write side (ClosedStreamError)
            result.closed.append(framed)
            continue
        backlog.size += len(data)
        result.sent += 1
        if backlog.task is None:
            backlog.task = _spawn(loop, _flush(framed, backlog))
    return result


def _close_slow(
    framed: Framed[Any], backlog: _Backlog, loop: asyncio.AbstractEventLoop, limit: int
) -> None:
    backlog.failed = True  # no more frames for it
    stream = framed.stream
    if isinstance(stream, WsStream):
        reason = f"too slow: {backlog.size} bytes not sent (limit {limit})"
        closing = stream.aclose(_POLICY_VIOLATION, reason)
    else:
        closing = framed.aclose()
    _spawn(loop, closing)


def _spawn(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Start ``coro``, holding the task until it is done (the loop holds tasks weakly)."""
    task = loop.create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


_tasks: set[asyncio.Task[None]] = set()
