"""Logging that a peer cannot flood: the first records of each kind, then a count.

Every record [`RpcPeer`][wsframed.rpc.RpcPeer] writes about something the peer sent (a
malformed message, a notification of an unknown method, a request refused while the
queue is full, a handler's exception, a late response) goes through one
``ConnectionLog`` per connection. The first ``LOG_FIRST`` records of each kind are
written as they happen; the rest are only counted, and one summary record per kind
gives the count when the connection ends. Whatever the peer sends, a connection writes
at most ``LOG_FIRST + 1`` records of each kind: 1 MiB of malformed messages costs
eleven log lines, not a million.
"""

from __future__ import annotations

import logging
import reprlib
from typing import Any

__all__ = ["LOG_FIRST", "ConnectionLog", "brief", "logger"]

logger = logging.getLogger("wsframed.rpc")

LOG_FIRST = 10
"""Records of one kind written per connection before the rest are only counted."""


class _BriefRepr(reprlib.Repr):
    """A repr of bounded size and depth: a peer's deeply nested object would make the
    builtin ``repr()`` raise ``RecursionError``, and a huge one cost its whole size."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = 60
        self.maxother = 60

    def repr_bytes(self, value: bytes, level: int) -> str:
        text = repr(value[: self.maxstring])
        return text if len(value) <= self.maxstring else f"{text}..."

    def repr_int(self, value: int, level: int) -> str:
        if value.bit_length() > 128:  # repr() of a 4,300-digit int raises ValueError
            return f"<int of {value.bit_length()} bits>"
        return repr(value)

    def repr_bytearray(self, value: bytearray, level: int) -> str:
        return self.repr_bytes(bytes(value[: self.maxstring + 1]), level)


_brief = _BriefRepr()


def brief(value: Any) -> str:
    """A short repr of a value the peer sent, safe for any depth and size."""
    return _brief.repr(value)


class ConnectionLog:
    """Writes the first ``LOG_FIRST`` records of each kind, counts the rest.

    A kind is a plural noun phrase ("malformed messages from the peer"); it names the
    kind in the summary that ``summarize`` writes.
    """

    __slots__ = ("_counts", "_levels")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._levels: dict[str, int] = {}

    def log(
        self,
        kind: str,
        level: int,
        message: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> None:
        """Write one record of ``kind``, or only count it past the first ones."""
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        if count <= LOG_FIRST:
            self._levels[kind] = level
            logger.log(level, message, *args, exc_info=exc_info, stacklevel=2)

    def count(self, kind: str) -> int:
        """How many records of ``kind`` were asked for since the last summary."""
        return self._counts.get(kind, 0)

    def summarize(self) -> None:
        """Write one record per kind that had records left out, with the counts.

        Called when the connection ends; the counts start again from zero.
        """
        counts, self._counts = self._counts, {}
        for kind, count in counts.items():
            if count > LOG_FIRST:
                logger.log(
                    self._levels[kind],
                    "%d %s on this connection; %d of them were not logged",
                    count,
                    kind,
                    count - LOG_FIRST,
                )
