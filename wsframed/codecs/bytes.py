"""Raw bytes: no framing at all.

A frame is whatever chunk of bytes the transport delivered. Nothing is added on the
wire and nothing is removed::

    encode(b"hello")  ->  | h e l l o |

    feed(b"hel"); feed(b"lo")  ->  b"hel", b"lo"

Use it when the application has its own framing (or none), or to pass an opaque
stream through [`wsframed.Framed`][wsframed.Framed] unchanged. Chunk boundaries carry no meaning:
the peer's ``b"hello"`` may arrive as ``b"hel"`` and ``b"lo"``, or merged with the
next write. Over a WebSocket a chunk is usually one message, but do not rely on it.

Limits
------
``max_frame_size`` (default 1 MiB) bounds every item in both directions:

* [`BytesCodec.encode`][wsframed.codecs.BytesCodec.encode] refuses a larger item with
  [`FrameTooLarge`][wsframed.errors.FrameTooLarge] (``local=True``); nothing is written.
* The decoder never refuses input, because there is no frame to refuse: a chunk larger
  than ``max_frame_size`` is split into pieces of at most ``max_frame_size`` bytes, in
  order. Code that handles one item at a time therefore never sees more than the limit,
  even when the transport hands over a larger read.

Errors
------
The decoder raises nothing: every byte sequence is valid, and
``BytesDecoder.feed_eof`` never raises because no frame can be cut short.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from ..errors import FrameTooLarge
from .base import Buffer

__all__ = ["BytesCodec", "BytesDecoder"]

_DEFAULT_MAX_FRAME_SIZE = 1024 * 1024


def _check_max_frame_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_frame_size must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"max_frame_size must be at least 1, got {value}")
    return value


class BytesCodec:
    """Pass bytes through unframed; see the module documentation.

    Args:
        max_frame_size: The largest item, in bytes, that
            [`encode`][wsframed.codecs.BytesCodec.encode] accepts and that the decoder yields
            (larger received chunks are split). Must be at least 1.

    The codec is immutable and may serve any number of connections.
    """

    __slots__ = ("_max_frame_size",)

    def __init__(self, max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE) -> None:
        self._max_frame_size = _check_max_frame_size(max_frame_size)

    @property
    def max_frame_size(self) -> int:
        """The largest item in bytes (read-only)."""
        return self._max_frame_size

    def __repr__(self) -> str:
        return f"BytesCodec(max_frame_size={self._max_frame_size})"

    def encode(self, item: Buffer) -> bytes:
        """Return ``item`` as ``bytes``, unchanged.

        Accepts ``bytes``, ``bytearray`` or a C-contiguous ``memoryview``.

        Raises:
            FrameTooLarge: ``item`` exceeds ``max_frame_size`` (``local=True``); send
                smaller pieces, which the peer cannot tell apart anyway.
            TypeError: ``item`` is not a bytes-like object.
        """
        if type(item) is bytes:
            if len(item) > self._max_frame_size:
                raise FrameTooLarge(len(item), self._max_frame_size, local=True)
            return item
        view = memoryview(item).cast("B")
        if len(view) > self._max_frame_size:
            raise FrameTooLarge(len(view), self._max_frame_size, local=True)
        return view.tobytes()

    def decoder(self) -> BytesDecoder:
        """Return a fresh ``BytesDecoder``."""
        return BytesDecoder(self._max_frame_size)


class BytesDecoder:
    """Yields each fed chunk as ``bytes``, in order.

    Empty chunks are skipped. A chunk longer than ``max_frame_size`` is yielded as
    consecutive pieces of at most ``max_frame_size`` bytes. ``bytes`` chunks are
    yielded as the very same objects (no copy); ``bytearray`` and ``memoryview``
    chunks are copied once, at ``feed``, so the caller may reuse its buffer.

    Unlike the framing decoders this one keeps a queue of chunks rather than a byte
    buffer: with no frame boundaries to find, joining chunks would only add copies.
    """

    __slots__ = ("_chunks", "_max_frame_size")

    def __init__(self, max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE) -> None:
        self._max_frame_size = _check_max_frame_size(max_frame_size)
        # The chunks fed and not yet yielded; made by the first one, so that an idle
        # connection holds no queue.
        self._chunks: deque[bytes] | None = None

    def feed(self, data: Buffer) -> None:
        """Queue ``data`` (skipped when empty, split when over ``max_frame_size``)."""
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = deque()
        if type(data) is not bytes:
            view = memoryview(data).cast("B")
            if not view:
                return
            if len(view) <= self._max_frame_size:
                chunks.append(view.tobytes())
                return
        elif not data:
            return
        elif len(data) <= self._max_frame_size:
            chunks.append(data)
            return
        else:
            view = memoryview(data)
        step = self._max_frame_size
        append = chunks.append
        for start in range(0, len(view), step):
            append(view[start : start + step].tobytes())

    def __iter__(self) -> Iterator[bytes]:
        """Yield every queued chunk; stop when the queue is empty."""
        chunks = self._chunks
        if chunks:
            pop = chunks.popleft
            while chunks:
                yield pop()

    def feed_eof(self) -> None:
        """Mark the end of the stream. Never raises: no frame can be cut short."""
