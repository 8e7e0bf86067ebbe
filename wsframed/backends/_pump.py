"""Shared machinery for backends whose library reports everything through ``receive()``.

aiohttp and ASGI servers (Starlette, FastAPI) have no protocol layer that a stream can
watch: control frames, the peer's close and the end of the TCP connection surface only
as the result of a receive call. ``PumpedBackend`` therefore runs that call in
its own task, the *pump*:

- it reads ahead of the reader until ``READ_AHEAD`` bytes are waiting (the last
  message may take it past), so a reader that stops reading stops the pump, the
  library's bounded queue fills up and backpressure reaches the peer's TCP socket, as
  with the websockets backend and its ``max_queue``;
- it handles control messages as they come (events, pong waiters, the close), so
  ``wait_closed()`` and the ``Closed`` event need no reader;
- a cancelled ``WsStream`` read never cancels a library receive call (aiohttp's
  client marks the connection as failed when one is cancelled): the message it
  was waiting for stays in the inbox for the next read.
"""

from __future__ import annotations

import asyncio

from ..events import TextMessage
from . import EventSink
from ._inbox import InboxBackend

__all__ = ["NORMAL_CLOSE_CODES", "READ_AHEAD", "PumpedBackend"]

READ_AHEAD = 64 * 1024
"""The pump stops taking messages once the unread ones reach this many bytes."""

# Codes after which a peer-initiated close counts as a normal end of stream. 1005
# means the close frame carried no code, which RFC 6455 section 7.1.5 treats as normal.
NORMAL_CLOSE_CODES = frozenset({1000, 1001, 1005})


class PumpedBackend(InboxBackend):
    """Base class: a pump task feeds a bounded inbox; subclasses take messages.

    Subclasses implement ``_receive_one``, which awaits one library message and
    calls ``_deliver`` (a data message), ``_finish`` (the end) or neither (a
    control message it handled).
    """

    def __init__(self, on_event: EventSink):
        super().__init__()
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Event()  # the inbox is under READ_AHEAD: the pump may go on
        self._room.set()
        self._pump_task = self._loop.create_task(self._pump())

    async def _receive_one(self) -> None:
        raise NotImplementedError

    async def _pump(self) -> None:
        try:
            while self._final is None:
                await self._room.wait()
                if self._final is None:
                    await self._receive_one()
        except asyncio.CancelledError:
            self._finish(1006, "", clean=False)
            raise
        except Exception as exc:  # the library failed: the connection is over
            self._finish(1006, f"{type(exc).__name__}: {exc}", clean=False)
        finally:
            self._finish(1006, "", clean=False)

    def _deliver(self, message: bytes | str) -> None:
        if self._final is None:
            if isinstance(message, str):
                # Reported as it arrives, in order with the control frames (and so
                # before the Closed event), not when a reader reaches it.
                self._on_event(TextMessage(len(message.encode())))
            self._queue(message, len(message))
            if self._inbox_size >= READ_AHEAD:
                self._room.clear()

    def _taken(self) -> None:
        if self._inbox_size < READ_AHEAD:
            self._room.set()

    def _ended(self) -> None:
        self._room.set()
        self._on_finish()

    def _on_finish(self) -> None:
        """Hook for subclasses: fail their own waiters (pings)."""
