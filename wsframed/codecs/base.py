"""The codec protocols: what a codec and its decoder must provide.

A codec is immutable configuration; it may serve many connections at once. All the
state of one connection lives in the [`Decoder`][wsframed.codecs.base.Decoder] that
[`Codec.decoder`][wsframed.codecs.base.Codec.decoder] returns. Neither ever performs I/O: bytes go
in, items come out, and back.

A decoder is driven like this (this is all [`wsframed.Framed`][wsframed.Framed] does)::

    decoder = codec.decoder()
    while chunk := await read_some():
        decoder.feed(chunk)
        for item in decoder:        # every complete frame; stops when bytes run out
            handle(item)
    decoder.feed_eof()              # IncompleteFrame if a frame was cut short

Errors surface from iteration at the exact frame where they occur; the frames before
it were already yielded. A decoder that cannot resynchronise re-raises the same error
on every later iteration.

A codec may also define ``encode_many(items: Sequence[T]) -> bytes``: the frames of
``items`` one after the other, exactly ``b"".join(map(codec.encode, items))``, raising
what ``encode`` raises for the first item it refuses (nothing returned then).
[`Framed.send_all`][wsframed.Framed.send_all] hands it slices of a list or tuple, which
saves a call and a buffer per item; the built-in codecs define it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeVar

__all__ = ["Buffer", "Codec", "Decoder"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

Buffer = bytes | bytearray | memoryview
"""The byte-like types a decoder accepts."""


class Decoder(Protocol[T_co]):
    """Per-connection decoding state of a codec."""

    def feed(self, data: Buffer) -> None:
        """Append received bytes. May raise the stored error of a failed decoder."""
        ...

    def __iter__(self) -> Iterator[T_co]:
        """Yield every complete frame buffered so far; stop when more bytes are needed.

        Raises ``DecodeError`` or ``FrameTooLarge`` at the frame where the stream goes
        wrong, after yielding the frames before it.
        """
        ...

    def feed_eof(self) -> None:
        """Mark the end of the stream; raise ``IncompleteFrame`` if a frame is cut short.

        Call it after iterating every complete frame.
        """
        ...


class Codec(Protocol[T]):
    """Encodes items to bytes and makes decoders that turn bytes back into items."""

    @property
    def max_frame_size(self) -> int:
        """The largest frame payload, in bytes, accepted on encode and on decode."""
        ...

    def encode(self, item: T) -> bytes:
        """Return the wire bytes of one frame.

        Raises ``FrameTooLarge`` (with ``local=True``) when the payload exceeds
        ``max_frame_size``, and ``ValueError`` or ``TypeError`` when the item cannot be
        encoded. Nothing is written in either case.
        """
        ...

    def decoder(self) -> Decoder[T]:
        """Return a fresh decoder for one connection."""
        ...
