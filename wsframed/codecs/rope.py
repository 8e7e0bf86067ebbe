"""Collecting the chunks of one large frame without copying them, cut once complete.

A decoder that appends every received chunk to one growing buffer copies a frame of
n bytes fed in chunks of k bytes about n/k times over (each growth may reallocate).
Once a decoder knows that a large frame is still to come (a length header, a long
line, a long string), it collects the chunks in a ``Rope`` instead and joins or
feeds them once: linear time, one copy.
"""

from __future__ import annotations

from .base import Buffer

__all__ = ["Rope"]


class Rope:
    """The chunks fed since a large frame started, and their total size."""

    __slots__ = ("chunks", "size")

    def __init__(self, first: bytes = b"") -> None:
        self.chunks: list[bytes] = [first] if first else []
        self.size = len(first)

    def append(self, data: Buffer) -> None:
        """Keep ``data`` (a ``bytes`` chunk as it is, any other buffer copied once)."""
        chunk = data if type(data) is bytes else memoryview(data).cast("B").tobytes()
        if chunk:
            self.chunks.append(chunk)
            self.size += len(chunk)

    def split(self, n: int) -> tuple[list[bytes | memoryview], list[bytes]]:
        """Cut after the first ``n`` bytes: the pieces before the cut, and those after.

        A chunk the cut falls in is shared, not copied, by the piece before it (a
        ``memoryview``); the piece after it is copied.
        """
        head: list[bytes | memoryview] = []
        chunks = self.chunks
        total = 0
        for index, chunk in enumerate(chunks):
            if total + len(chunk) <= n:
                head.append(chunk)
                total += len(chunk)
                continue
            cut = n - total
            if cut:
                head.append(memoryview(chunk)[:cut])
            return head, [chunk[cut:], *chunks[index + 1 :]]
        return head, []
