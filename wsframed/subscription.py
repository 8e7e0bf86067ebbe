"""EventSubscription: one observer of a [`WsStream`][wsframed.WsStream]'s events."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Self

from .checkpoint import Budget, checkpoint
from .events import Closed, Event
from .loops import Waiter

__all__ = ["EventSubscription"]


class EventSubscription:
    """One observer of a stream's events: an async iterator with a bounded queue.

    The stream never waits for an observer. When the queue is full the oldest event
    is dropped and counted in [`dropped`][wsframed.EventSubscription.dropped], so the newest
    events, and the final [`Closed`][wsframed.events.Closed], always arrive. Iteration ends after
    ``Closed``.
    """

    def __init__(self, maxlen: int, on_close: Any, create_waiter: Callable[[], Waiter]):
        self._queue: deque[Event] = deque()
        self._maxlen = maxlen
        self._waiter: Waiter | None = None
        self._create_waiter = create_waiter
        self._finished = False
        self._on_close = on_close
        self._budget = Budget()
        self.dropped = 0
        """How many events were dropped because this observer fell behind."""

    def _push(self, event: Event) -> None:
        if self._finished:
            return
        queue = self._queue
        if len(queue) >= self._maxlen:
            queue.popleft()
            self.dropped += 1
        queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pending(self) -> int:
        """Return how many events are queued and not yet read."""
        return len(self._queue)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self._budget.spend():
            await checkpoint()  # before taking the event: a cancellation loses none
        while not self._queue:
            if self._finished:
                await checkpoint()  # a loop polling an ended subscription lets others run
                raise StopAsyncIteration
            self._waiter = self._create_waiter()
            try:
                await self._waiter
            finally:
                self._waiter = None
        event = self._queue.popleft()
        if isinstance(event, Closed):
            self.close()
        return event

    def close(self) -> None:
        """Unsubscribe: no further events are queued; queued ones can still be read."""
        if not self._finished:
            self._finished = True
            self._on_close(self)
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
