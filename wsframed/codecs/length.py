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
# Frames at least this long are copied out of the buffer through a memoryview (one
# copy instead of two); below it, slicing the bytearray is cheaper.
_VIEW_MIN = 8192
# A body at least this long that has not fully arrived collects its chunks in a list
# and is joined once, when complete: growing a bytearray chunk by chunk to many MiB
# reallocates (and may copy) it again and again.
_ROPE_MIN = 128 * 1024
# Frames cut per batch before they are yielded (see LengthPrefixedDecoder.__iter__).
_BATCH = 256
_BATCH_RANGE = range(_BATCH)


class _Config:
    """Validated settings shared by a codec and its decoders."""

    __slots__ = ("byteorder", "header", "includes_header", "length_size", "max_frame_size")

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
        if (
            not c.includes_header
            and set(map(type, items)) == {bytes}  # so a length is a size in bytes
            and max(map(len, items)) <= c.max_frame_size
        ):
            headers = map(c.header.pack, map(len, items))
            return b"".join(chain.from_iterable(zip(headers, items, strict=True)))
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
    Bytes are appended to one ``bytearray``; consumed frames are dropped once per
    iteration pass, not per frame. A body of 128 KiB or more that is still incomplete
    at the end of a pass is collected as a list of the received chunks instead, and
    joined into the frame in one copy once it is complete, so a large frame arriving
    in small pieces costs linear time and no repeated reallocation.

    Iterate it in one pass at a time: do not start a new pass while an earlier one is
    suspended.
    """

    __slots__ = ("_base", "_buf", "_config", "_error", "_need", "_pos", "_ready", "_rope")

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
        self._buf = bytearray()
        self._pos = 0  # start of the next header, or of the body in state body(n)
        self._need = _HEAD  # _HEAD, or n in state body(n)
        self._base = 0  # stream offset of _buf[0]
        # Collecting a large body: its chunks so far (the first at stream offset
        # _base; _buf is empty meanwhile), or None.
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
        self._buf += data

    def __iter__(self) -> Iterator[bytes]:
        """Yield every complete frame buffered so far; stop when more bytes are needed.

        Raises:
            FrameTooLarge: A header declares more than ``max_frame_size`` (the decoder
                is failed).
            DecodeError: A header declares less than itself, with
                ``length_includes_header=True`` (the decoder is failed).
        """
        # The frames come in batches (lists) flattened by chain in C: taking one costs
        # no Python code; a batch's generator runs once per up to 256 frames.
        return chain.from_iterable(self._batches())

    def _batches(self) -> Iterator[Iterator[bytes]]:
        """The frames of ``__iter__``, as iterators over batches of them."""
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        ready = self._ready
        if ready is not None:  # frames cut by an earlier pass and not yet taken
            yield ready
            self._ready = None
        if self._rope is not None:  # collecting a large body
            if self._rope.size < self._need:
                return
            frame = self._join_rope()
            yield iter((frame,))
        buf = self._buf
        pos = self._pos
        if pos:
            self._compact(pos)
            pos = 0
        c = self._config
        hsize = c.length_size
        unpack_from = c.header.unpack_from
        limit = c.max_frame_size
        adjust = hsize if c.includes_header else 0
        end = len(buf)
        need = self._need
        # Small frames are cut from one bytes copy of the buffer (one object each
        # instead of two), taken once the first frame is known complete: then every
        # byte is copied at most twice, whatever the peer sends. A pass that starts
        # with a large frame cuts from the buffer itself (one copy per frame).
        copy: bytes | None = None
        if need < 0 and end - pos >= hsize:
            first = unpack_from(buf, pos)[0] - adjust
            if 0 <= first < _VIEW_MIN and pos + hsize + first <= end:
                copy = bytes(buf)
        data = buf if copy is None else copy
        while True:
            # Cut up to _BATCH frames in a tight loop, then yield them: no generator
            # switch per frame. The batch waits in _ready while it is being taken, so
            # a pass abandoned part-way loses none of it.
            batch: list[bytes] = []
            append = batch.append
            if copy is not None and need < 0 and not adjust:
                # The usual case, with the fewest steps per frame: whole frames within
                # the limit. Anything else stops it; the loop below handles it.
                for _ in _BATCH_RANGE:
                    head = pos + hsize
                    if head > end:
                        break
                    stop = head + unpack_from(copy, pos)[0]
                    if stop > end or stop - head > limit:
                        break
                    append(copy[head:stop])
                    pos = stop
            for _ in range(_BATCH - len(batch)):
                if need < 0:  # head
                    if end - pos < hsize:
                        break
                    need = unpack_from(data, pos)[0] - adjust
                    if need > limit or need < 0:
                        if batch:  # raised by the next round, after these frames
                            need = _HEAD
                            break
                        self._need = _HEAD
                        self._fail(need, pos)
                    pos += hsize
                stop = pos + need
                if stop > end:  # body(need) still incomplete
                    break
                if copy is not None:
                    append(copy[pos:stop])
                elif need < _VIEW_MIN:
                    append(bytes(buf[pos:stop]))
                else:
                    append(bytes(memoryview(buf)[pos:stop]))
                pos = stop
                need = _HEAD
            self._pos = pos
            self._need = need
            if not batch:
                break
            ready = self._ready = iter(batch)
            yield ready  # chain takes its frames; a pass abandoned part-way leaves the rest
            self._ready = None
        self._need = need
        if pos:
            self._compact(pos)
        if need >= _ROPE_MIN:  # a large body is incomplete: collect the rest as a list
            self._rope = Rope(bytes(buf))
            buf.clear()  # _base stays: the offset of the body's first byte

    def _join_rope(self) -> bytes:
        """Return the collected body, complete; what follows it goes back to ``_buf``."""
        rope = self._rope
        assert rope is not None
        need = self._need
        body, rest = rope.split(need)
        frame = b"".join(body)
        buf = self._buf
        for piece in rest:
            buf += piece
        self._rope = None
        self._base += need
        self._pos = 0
        self._need = _HEAD
        return frame

    def _compact(self, pos: int) -> None:
        """Drop the consumed ``_buf[:pos]``."""
        del self._buf[:pos]
        self._base += pos
        self._pos = 0

    def _fail(self, need: int, pos: int) -> NoReturn:
        """Fail the decoder for the header at ``pos`` that declared ``need`` bytes."""
        c = self._config
        offset = self._base + pos
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
        self._buf = bytearray()  # release the memory for good
        self._ready = None
        self._rope = None
        self._pos = 0
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
        pending = len(self._buf) - self._pos + (self._rope.size if self._rope else 0)
        if self._need >= 0:
            pending += self._config.length_size
        if pending:
            start = self._base + self._pos
            if self._need >= 0:
                start -= self._config.length_size
            raise IncompleteFrame(pending, offset=start)
