"""Shared by backends whose messages wait in an inbox of their own.

The aiohttp and ASGI backends fill it from a pump task (``_pump``), the browser
backend from the ``WebSocket``'s listeners. Either way the reader takes messages in
order, the end is recorded once (the first call wins) and wakes every waiter, and the
end shows to ``peek_end()`` only once no message is left before it.
"""

from __future__ import annotations

import asyncio
from collections import deque

from . import BackendClosed

__all__ = ["InboxBackend"]


class InboxBackend:
    """Base class: an inbox of received messages and the recorded end.

    Subclasses put messages in with ``_queue`` and record the end with ``_finish``;
    ``_taken`` (a message left the inbox) and ``_ended`` (the end was recorded) are
    their hooks.
    """

    def __init__(self) -> None:
        self._inbox: deque[bytes | str] = deque()
        self._inbox_size = 0
        self._ready = asyncio.Event()  # a message is waiting, or the end is known
        self._done = asyncio.Event()
        self._final: BackendClosed | None = None

    def _queue(self, message: bytes | str, size: int) -> None:
        self._inbox.append(message)
        self._inbox_size += size
        self._ready.set()

    def _taken(self) -> None:
        """Hook: a message left the inbox while the connection is open."""

    def _finish(self, code: int, reason: str, *, clean: bool) -> None:
        """Record how the connection ended (first call wins) and wake every waiter."""
        if self._final is None:
            self._final = BackendClosed(code, reason, clean=clean)
            self._ready.set()
            self._done.set()
            self._ended()

    def _ended(self) -> None:
        """Hook: the end was just recorded."""

    def _closed_error(self) -> BackendClosed:
        final = self._final
        if final is None:
            return BackendClosed(1006, "", clean=False)
        return BackendClosed(final.code, final.reason, clean=final.clean)

    async def receive(self) -> bytes | str:
        while not self._inbox:
            if self._final is not None:
                raise self._closed_error()
            await self._ready.wait()
        message = self._inbox.popleft()
        self._inbox_size -= len(message)
        if self._final is None:
            if not self._inbox:
                self._ready.clear()
            self._taken()
        return message

    async def wait_closed(self) -> None:
        await self._done.wait()

    def ended(self) -> BackendClosed | None:
        return None if self._final is None else self._closed_error()

    def peek_end(self) -> BackendClosed | None:
        if self._inbox or self._final is None:
            return None
        return self._closed_error()

    def closed_with(self) -> tuple[int, str] | None:
        final = self._final
        return None if final is None else (final.code, final.reason)
