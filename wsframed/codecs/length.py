"""Length-prefixed frames: a fixed-size unsigned length header, then the payload.

Wire format
-----------
With the defaults (``length_size=4``, ``byteorder="big"``, the length counts the
payload only)::

    +----- u32 length ----+-------- payload --------+
    |  00 00 00 0b  (11)  |  h e l l o   w o r l d  |
    +---------------------+-------------------------+

    encode(b"hello world")  ->  b"\\x00\\x00\\x00\\x0bhello world"

This is the default format of tokio-util's ``LengthDelimitedCodec``, of Netty's
``LengthFieldPrepender(4)`` / ``LengthFieldBasedFrameDecoder(max, 0, 4, 0, 4)`` and of
Twisted's ``Int32StringReceiver``, so those peers interoperate unchanged. The header
may be 1, 2, 4 or 8 bytes (``length_size``), big- or little-endian (``byteorder``), and
may count itself (``length_includes_header=True``, as Netty's
``LengthFieldPrepender(4, true)``). Items are ``bytes``;
[`encode`][wsframed.codecs.LengthPrefixedCodec.encode] accepts any bytes-like object.

Limits
------
``max_frame_size`` (default 1 MiB) counts the payload, without the header. A header can
declare up to 4 GiB (``length_size=4``) or 16 EiB (8): trusting it lets a peer make
the reader reserve or wait for that much memory with a few bytes. The decoder checks
the declared length as soon as the header is complete and refuses an oversized frame
before a single byte of its body is buffered. ``max_frame_size`` larger than the
header can express is clamped to that maximum (255 bytes for ``length_size=1``, 65535
for 2, less the header with ``length_includes_header``), so the defaults work with any
header size; the [`max_frame_size`][wsframed.codecs.LengthPrefixedCodec.max_frame_size] property
reports the clamped value.

Errors
------
A length-prefixed stream cannot resynchronise: once a header is wrong, no later byte
can be trusted to start a frame. So after [`FrameTooLarge`][wsframed.errors.FrameTooLarge]
(declared length over the limit) or [`DecodeError`][wsframed.errors.DecodeError] (with
``length_includes_header=True``, a declared length smaller than the header itself) the
decoder is failed for good: every later ``feed``, iteration
and ``feed_eof`` raises the same error object, at constant
cost (its traceback is reset each time, so a loop retrying a failed decoder does not
grow it). End of stream inside a header or a body raises
[`IncompleteFrame`][wsframed.errors.IncompleteFrame].

Cost: linear in the bytes received for any input. The costliest input per byte is a
flood of empty frames (a header alone, 4 bytes, per frame): each costs one item.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Literal, NoReturn

from ..errors import DecodeError, FrameTooLarge, IncompleteFrame, WsFramedError
from .base import Buffer
from .rope import Rope

__all__ = ["ByteOrder", "LengthPrefixedCodec", "LengthPrefixedDecoder"]

ByteOrder = Literal["big", "little"]
"""Byte order of the length header."""

_DEFAULT_MAX_FRAME_SIZE = 1024 * 1024
_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}
_HEAD = -1  # decoder state: waiting for a header (otherwise: body of that many bytes)
# A body at least this long that has not fully arrived collects its chunks in a list
# and is joined once, when complete: growing a bytearray chunk by chunk to many MiB
# reallocates (and may copy) it again and again.
_ROPE_MIN = 128 * 1024
# Frames are cut in batches: those that start in the next window of this many bytes
# of a chunk (see LengthPrefixedDecoder._batches). A batch holds at most 4096 frames
# (one-byte headers, empty frames: the one b"" object each) and bounds the memory a
# flood of tiny frames takes at once.
_WINDOW = 4096


class _Config:
    """Validated settings shared by a codec and its decoders."""

    __slots__ = (
        "byteorder",
        "header",
        "includes_header",
        "length_size",
        "max_frame_size",
        "unlimited",
    )

    def __init__(
        self,
        length_size: int,
        byteorder: ByteOrder,
        max_frame_size: int,
        includes_header: bool,
    ) -> None:
        if isinstance(length_size, bool) or length_size not in _FORMATS:
            raise ValueError(f"length_size must be 1, 2, 4 or 8, not {length_size!r}")
        if byteorder not in ("big", "little"):
            raise ValueError(f"byteorder must be 'big' or 'little', not {byteorder!r}")
        if isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int):
            raise TypeError(f"max_frame_size must be an int, not {type(max_frame_size).__name__}")
        if max_frame_size < 0:
            raise ValueError(f"max_frame_size must not be negative, got {max_frame_size}")
        expressible = (1 << (8 * length_size)) - 1
        if includes_header:
            expressible -= length_size
        self.length_size = length_size
        self.byteorder: ByteOrder = byteorder
        self.max_frame_size = min(max_frame_size, expressible)
        # No header can declare more than the limit.
        self.unlimited = max_frame_size >= expressible
        self.includes_header = bool(includes_header)
        self.header = struct.Struct((">" if byteorder == "big" else "<") + _FORMATS[length_size])


class LengthPrefixedCodec:
    """Frames are a length header followed by that many payload bytes; see the module docs.

    Args:
        length_size: Size of the header in bytes: 1, 2, 4 or 8, else ``ValueError``.
        byteorder: ``"big"`` (network order, the default) or ``"little"``.
        max_frame_size: The largest payload in bytes, header excluded, on encode and on
            decode; clamped to what the header can express.
        length_includes_header: Whether the declared length counts the header too.

    The codec is immutable and may serve any number of connections.
    """

    __slots__ = ("_config",)

    def __init__(
        self,
        length_size: int = 4,
        byteorder: ByteOrder = "big",
        max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE,
        *,
        length_includes_header: bool = False,
    ) -> None:
        self._config = _Config(length_size, byteorder, max_frame_size, length_includes_header)

    @property
    def length_size(self) -> int:
        """Size of the length header in bytes (read-only)."""
        return self._config.length_size

    @property
    def byteorder(self) -> ByteOrder:
        """Byte order of the length header (read-only)."""
        return self._config.byteorder

    @property
    def max_frame_size(self) -> int:
        """The largest payload in bytes, after clamping (read-only)."""
        return self._config.max_frame_size

    @property
    def length_includes_header(self) -> bool:
        """Whether the declared length counts the header (read-only)."""
        return self._config.includes_header

    def __repr__(self) -> str:
        c = self._config
        return (
            f"LengthPrefixedCodec(length_size={c.length_size}, byteorder={c.byteorder!r},"
            f" max_frame_size={c.max_frame_size},"
            f" length_includes_header={c.includes_header})"
        )

    def encode(self, item: Buffer) -> bytes:
        """Return the header followed by ``item``.

        Accepts ``bytes``, ``bytearray`` or a C-contiguous ``memoryview``.

        Raises:
            FrameTooLarge: ``item`` exceeds ``max_frame_size`` (``local=True``).
            TypeError: ``item`` is not a bytes-like object.
        """
        c = self._config
        if type(item) is not bytes:
            item = memoryview(item).cast("B")
        size = len(item)
        if size > c.max_frame_size:
            raise FrameTooLarge(size, c.max_frame_size, local=True)
        if c.includes_header:
            return c.header.pack(size + c.length_size) + item
        return c.header.pack(size) + item

    def encode_many(self, items: Sequence[Buffer]) -> bytes:
        """Return the frames of ``items``, one after the other: ``b"".join(map(encode, items))``.

        Raises what [`encode`][wsframed.codecs.LengthPrefixedCodec.encode] raises for the
        first item it refuses; nothing is returned then.
        """
        c = self._config
        if not c.includes_header and set(map(type, items)) == {bytes}:  # len() is a size
            sizes = list(map(len, items))
            if max(sizes) <= c.max_frame_size:
                # Headers and bodies alternate: the list filled by two slice assignments
                # (C loops, no tuple per item as zip() would make).
                parts = [*items, *items]
                parts[::2] = map(c.header.pack, sizes)
                parts[1::2] = items
                return b"".join(parts)
        encode = self.encode
        return b"".join([encode(item) for item in items])

    def decoder(self) -> LengthPrefixedDecoder:
        """Return a fresh ``LengthPrefixedDecoder``."""
        return LengthPrefixedDecoder(_config=self._config)


class LengthPrefixedDecoder:
    """Decoding state of a [`LengthPrefixedCodec`][wsframed.codecs.LengthPrefixedCodec] for one
    connection.

    States, as in tokio-util's ``DecodeState``: *head* (waiting for a complete header),
    *body(n)* (the header said ``n`` payload bytes; the body is awaited without
    rescanning anything) and *failed* (a stored error, raised by every later call).
    Frames are cut straight from the chunk fed (a ``bytes`` chunk is kept as it is,
    any other buffer copied once); only a frame cut short by the chunk's end is copied
    to a small buffer, to be completed from the next chunk. A body of 128 KiB or more
    still incomplete at the end of a chunk is collected as a list of the received
    chunks instead, and joined into the frame in one copy once it is complete, so a
    large frame arriving in small pieces costs linear time and no repeated
    reallocation.

    Iterate it in one pass at a time: do not start a new pass while an earlier one is
    suspended.
    """

    __slots__ = (
        "_base",
        "_buf",
        "_chunk",
        "_config",
        "_error",
        "_more",
        "_need",
        "_pos",
        "_ready",
        "_rope",
        "_start",
    )

    def __init__(
        self,
        length_size: int = 4,
        byteorder: ByteOrder = "big",
        max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE,
        *,
        length_includes_header: bool = False,
        _config: _Config | None = None,
    ) -> None:
        if _config is None:
            _config = _Config(length_size, byteorder, max_frame_size, length_includes_header)
        self._config = _config
        # The chunk being cut: frames are sliced from it from _pos on. _base is the
        # stream offset of its first byte.
        self._chunk = b""
        self._pos = 0
        self._base = 0
        # Bytes fed while _chunk still had bytes to cut: the next chunk.
        self._more = bytearray()
        # The frame that an earlier chunk cut short, started at stream offset _start:
        # the header bytes received (state head), or the body bytes (state body(n)).
        self._buf = bytearray()
        self._start = 0
        self._need = _HEAD  # _HEAD, or n in state body(n)
        # Collecting a large body: its chunks so far (_buf, _chunk and _more are empty
        # meanwhile), or None.
        self._rope: Rope | None = None
        # The frames of the batch being yielded (see __iter__), or None.
        self._ready: Iterator[bytes] | None = None
        self._error: WsFramedError | None = None

    def feed(self, data: Buffer) -> None:
        """Append received bytes; raises the stored error of a failed decoder."""
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        rope = self._rope
        if rope is not None:
            rope.append(data)
            return
        if type(data) is not bytes:
            data = memoryview(data).cast("B").tobytes()  # the caller may reuse its buffer
        if not data:
            return
        if self._more or self._pos < len(self._chunk):  # _chunk is not cut through yet
            self._more += data
        else:
            self._base += len(self._chunk)
            self._chunk = data
            self._pos = 0

    def __iter__(self) -> Iterator[bytes]:
        """Yield every complete frame buffered so far; stop when more bytes are needed.

        Raises:
            FrameTooLarge: A header declares more than ``max_frame_size`` (the decoder
                is failed).
            DecodeError: A header declares less than itself, with
                ``length_includes_header=True`` (the decoder is failed).
        """
        # The frames come in batches (lists) flattened by chain in C: taking one costs
        # no Python code; a batch's generator step runs once per _WINDOW bytes.
        return chain.from_iterable(self._batches())

    def _batches(self) -> Iterator[Iterator[bytes]]:
        """The frames of ``__iter__``, as iterators over batches of them."""
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        ready = self._ready
        if ready is not None:  # frames cut by an earlier pass and not yet taken
            yield ready
            self._ready = None
        c = self._config
        hsize = c.length_size
        unpack_from = c.header.unpack_from
        limit = c.max_frame_size
        adjust = hsize if c.includes_header else 0
        buf = self._buf
        # Each round cuts the frames that start in the next _WINDOW bytes of the chunk
        # into a batch, then yields it: no generator step per frame, and at most a
        # window's worth of frames held at once. The batch waits in _ready while it
        # is being taken, so a pass abandoned part-way loses none of it. Every round
        # reads the state afresh: bytes fed while the pass was suspended are seen.
        while True:
            if self._rope is not None:  # collecting a large body
                if self._rope.size < self._need:
                    return
                ready = self._ready = iter((self._join_rope(),))
                yield ready
                self._ready = None
            data = self._chunk
            pos = self._pos
            end = len(data)
            if pos >= end:  # cut through: let it go (an idle connection keeps no chunk)
                self._base += end
                self._pos = pos = 0
                more = self._more
                if not more:
                    self._chunk = b""
                    return
                self._chunk = data = bytes(more)
                end = len(data)
                more.clear()
            batch: list[bytes] = []
            append = batch.append
            if buf or self._need >= 0:  # a frame cut short by the previous chunk
                frame = self._resume()
                if frame is None:  # still incomplete: the chunk went into it
                    continue
                append(frame)
                pos = self._pos
            wend = pos + _WINDOW
            if not adjust and (limit >= end or c.unlimited):
                # The usual case, with the fewest steps per frame: a frame complete in
                # the chunk is within the limit (the chunk is not longer than it). The
                # first header that is cut short, or whose frame is, stops it (struct
                # raises for the former); the loop below handles it.
                try:
                    while pos < wend:
                        head = pos + hsize
                        stop = head + unpack_from(data, pos)[0]
                        if stop > end:
                            break
                        append(data[head:stop])
                        pos = stop
                except struct.error:
                    pass
            while pos < wend:
                if end - pos < hsize:  # the chunk ends inside a header
                    if pos < end:
                        self._start = self._base + pos
                        buf += data[pos:end]
                        pos = end
                    break
                need = unpack_from(data, pos)[0] - adjust
                if need > limit or need < 0:
                    if batch:  # raised by the next round, after these frames
                        break
                    self._pos = pos
                    self._fail(need, self._base + pos)
                stop = pos + hsize + need
                if stop > end:  # the chunk ends inside this body
                    self._start = self._base + pos
                    self._need = need
                    self._keep_body(memoryview(data)[pos + hsize :])
                    pos = end
                    break
                append(data[pos + hsize : stop])
                pos = stop
            self._pos = pos
            if batch:
                ready = self._ready = iter(batch)
                yield ready  # chain takes its frames; a pass abandoned part-way leaves the rest
                self._ready = None

    def _resume(self) -> bytes | None:
        """Complete the frame in ``_buf`` with bytes of ``_chunk``: the frame, or None
        when the chunk ends before it (the chunk's bytes are kept for it then)."""
        c = self._config
        buf = self._buf
        data = self._chunk
        pos = self._pos
        end = len(data)
        need = self._need
        if need < 0:  # head: complete the header first
            hsize = c.length_size
            stop = min(pos + hsize - len(buf), end)
            buf += data[pos:stop]
            self._pos = pos = stop
            if len(buf) < hsize:
                return None
            need = c.header.unpack(buf)[0] - (hsize if c.includes_header else 0)
            if need > c.max_frame_size or need < 0:
                self._fail(need, self._start)
            buf.clear()
            self._need = need
        stop = pos + need - len(buf)
        if stop > end:
            self._pos = end
            self._keep_body(memoryview(data)[pos:])
            return None
        self._pos = stop
        self._need = _HEAD
        if not buf:
            return data[pos:stop]
        frame = b"".join((buf, memoryview(data)[pos:stop]))
        buf.clear()
        return frame

    def _keep_body(self, piece: memoryview) -> None:
        """Keep ``piece``, the part of the incomplete body in state body(n) that the
        chunk holds: in ``_buf``, or in a rope for a large body (with ``_more``)."""
        if self._need < _ROPE_MIN:
            self._buf += piece
            return
        rope = self._rope = Rope(bytes(self._buf) + piece)
        self._buf.clear()
        more = self._more
        if more:
            rope.append(bytes(more))
            more.clear()

    def _join_rope(self) -> bytes:
        """Return the collected body, complete; what follows it becomes ``_chunk``."""
        rope = self._rope
        assert rope is not None
        need = self._need
        body, rest = rope.split(need)
        self._rope = None
        self._need = _HEAD
        self._base = self._start + self._config.length_size + need
        self._chunk = rest[0] if len(rest) == 1 else b"".join(rest)
        self._pos = 0
        return b"".join(body)

    def _fail(self, need: int, offset: int) -> NoReturn:
        """Fail the decoder for the header at stream ``offset`` that declared ``need``
        bytes."""
        c = self._config
        exc: WsFramedError
        if need < 0:
            exc = DecodeError(
                f"declared length {need + c.length_size} is smaller than the"
                f" {c.length_size}-byte header that includes it",
                offset=offset,
            )
        else:
            exc = FrameTooLarge(need, c.max_frame_size, offset=offset)
        self._error = exc
        # Release the memory for good.
        self._buf = bytearray()
        self._more = bytearray()
        self._chunk = b""
        self._ready = None
        self._rope = None
        self._pos = 0
        self._need = _HEAD
        raise exc

    def feed_eof(self) -> None:
        """Mark the end of the stream.

        Call it after iterating every complete frame: any byte still buffered then is
        part of a cut-short header or body.

        Raises:
            IncompleteFrame: The stream ended inside a frame (``pending`` counts the
                bytes of it received, header included).
            FrameTooLarge, DecodeError: The decoder failed earlier.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        rope = self._rope
        pending = len(self._chunk) - self._pos + len(self._more) + len(self._buf)
        pending += rope.size if rope is not None else 0
        started = bool(self._buf) or self._need >= 0
        if self._need >= 0:
            pending += self._config.length_size
        if pending:
            start = self._start if started else self._base + self._pos
            raise IncompleteFrame(pending, offset=start)
