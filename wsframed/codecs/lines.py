r"""Newline-terminated lines, as text or bytes.

Wire format
-----------
Every frame is its payload followed by ``\n``. A ``\r`` right before the ``\n`` is
part of the terminator, so peers that end lines with ``\r\n`` interoperate::

    +----------------------+----+          +----------------------+----+----+
    |  payload (N bytes)   | \n |    or    |  payload (N bytes)   | \r | \n |
    +----------------------+----+          +----------------------+----+----+

    encode("hello")             ->  b"hello\n"
    b"a\r\nb\n" (fed any way)   ->  "a", "b"

By default lines are ``str`` decoded from UTF-8; ``LinesCodec(encoding=None)`` works
on ``bytes`` instead. Any encoding in which ``"\r\n"`` is the bytes ``b"\r\n"`` may be
used (UTF-8, Latin-1, ASCII, ...; not UTF-16).
[`LinesCodec.encode`][wsframed.codecs.LinesCodec.encode] appends ``\n`` and refuses a line that
contains ``\n`` or ends with ``\r`` (the peer would read it back differently), with ``ValueError``.

Limits
------
``max_frame_size`` (default 64 KiB) counts the payload, without its terminator.

Without a limit, a peer that never sends a newline makes the reader buffer forever
and exhausts its memory. The decoder refuses a line as soon as more than
``max_frame_size`` unterminated bytes are buffered (``max_frame_size + 1`` when the
last of them is a ``\r`` that a ``\n`` may still follow), so the memory a line can
hold is bounded by the limit plus one received chunk, whatever the peer sends. The
decoder also remembers how far it has searched (as tokio-util's ``LinesCodec`` does
with its ``next_index``), so each byte is searched for a newline once: a long line
delivered in many small chunks costs linear time, not quadratic, and a line that
turns out too long is never searched past ``max_frame_size + 2`` bytes.

Errors
------
* A line over the limit raises [`FrameTooLarge`][wsframed.errors.FrameTooLarge] (``at_least=True``
  when its end had not arrived yet). With ``on_overflow="error"`` (the default) the
  decoder is then failed: every later ``feed``, iteration and
  ``feed_eof`` raises that same error object. With
  ``on_overflow="discard"`` the error is raised once, then every byte up to and
  including the next ``\n`` is dropped as it arrives (never buffered) and decoding
  resumes with the line after it.
* A line that is not valid in the encoding raises [`DecodeError`][wsframed.errors.DecodeError],
  whose ``__cause__`` is the ``UnicodeDecodeError`` and whose ``offset`` is the line's
  position in the stream. The line is dropped and the next iteration continues with
  the following line: a line protocol resynchronises at the next terminator.
  Skipping bad lines costs time linear in the bytes received however many there are,
  also for a consumer that catches each error and carries on: a batch of lines is
  copied and decoded once, its bad lines marked, and each bad one costs one error.
* Bad lines are tolerated up to a rate: 64, plus one per KiB of stream before the bad
  line. A peer past that rate is not speaking this protocol (a msgpack or TLS client
  talking to a line server, or an attacker buying one exception per two bytes, each
  costing the consumer microseconds where a good byte costs nanoseconds): the error
  raised is then a [`DecodeError`][wsframed.errors.DecodeError] "too many bad lines" (its
  ``__cause__`` the bad line's own error) and the decoder is failed for good. So a
  forgiving consumer pays at most ~64 exceptions plus one per KiB, whatever it is sent.
* A failed decoder re-raises its stored error at constant cost: the traceback is
  reset on each raise, so a loop retrying a failed decoder does not grow it.
* End of stream after an unterminated line makes ``feed_eof`` raise
  [`IncompleteFrame`][wsframed.errors.IncompleteFrame] (``pending`` is the number of bytes of it).
  A line protocol needs its terminators: a last line without one may be a truncated write,
  so it is reported instead of being delivered as if it were complete.
"""

from __future__ import annotations

import codecs
import operator
import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, Generic, Literal, NoReturn, TypeVar, overload

from ..errors import DecodeError, FrameTooLarge, IncompleteFrame, WsFramedError
from .base import Buffer
from .rope import Rope

__all__ = ["LinesCodec", "LinesDecoder", "OnOverflow"]

_T = TypeVar("_T", str, bytes)

OnOverflow = Literal["error", "discard"]
"""What the decoder does after a line over ``max_frame_size``."""

_DEFAULT_MAX_FRAME_SIZE = 64 * 1024
_NL = b"\n"
_CR = 0x0D
# Frames at least this long are copied out of the buffer through a memoryview (one
# copy instead of two); below it, slicing the bytearray is cheaper.
_VIEW_MIN = 8192
# A line still unterminated after this many bytes collects the chunks that follow in
# a list, each searched once, until its b"\n" (or the limit) arrives; they are then
# joined into the buffer in one copy. Growing a bytearray chunk by chunk to many MiB
# reallocates, and may copy, it again and again.
_ROPE_MIN = 128 * 1024
# Stateless encodings in which b"\n" is never part of another character: a batch of
# lines decodes exactly as its lines would one by one (same text, same failures).
_WHOLE_BATCH_ENCODINGS = frozenset({"utf-8", "ascii", "iso8859-1"})
# What an undecodable byte becomes under errors="surrogateescape" in those encodings,
# and never a character of valid text: it marks the bad lines of a batch.
_ESCAPED = re.compile("[\udc80-\udcff]")
# Bad lines a resynchronising decoder tolerates: _BAD_LINES_BURST, plus one per
# _BAD_LINE_BYTES bytes of stream before the bad line (see "Errors" above).
_BAD_LINES_BURST = 64
_BAD_LINE_BYTES = 1024


def _check_max_frame_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_frame_size must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"max_frame_size must not be negative, got {value}")
    return value


def _check_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    name = codecs.lookup(encoding).name  # LookupError for an unknown encoding
    if "\r\n".encode(name) != b"\r\n":
        raise ValueError(f"encoding {encoding!r} does not encode '\\r\\n' as b'\\r\\n'")
    return name


def _check_on_overflow(on_overflow: str) -> bool:
    if on_overflow not in ("error", "discard"):
        raise ValueError(f"on_overflow must be 'error' or 'discard', not {on_overflow!r}")
    return on_overflow == "discard"


class LinesCodec(Generic[_T]):
    r"""Frames are lines terminated by ``\n`` (or ``\r\n``); see the module docs.

    Args:
        encoding: Text encoding of the lines; items are ``str``. ``None`` makes items
            ``bytes`` (a ``LinesCodec[bytes]``). The encoding must encode ``"\r\n"``
            as ``b"\r\n"``, otherwise ``ValueError``.
        max_frame_size: The longest line in bytes, terminator excluded, accepted by
            [`encode`][wsframed.codecs.LinesCodec.encode] and by the decoder.
        on_overflow: ``"error"`` fails the decoder for good on an overlong received
            line; ``"discard"`` raises once, skips that line and carries on.

    The codec is immutable and may serve any number of connections.
    """

    __slots__ = ("_discard", "_encoding", "_max_frame_size")

    @overload
    def __init__(
        self: LinesCodec[str],
        encoding: str = "utf-8",
        max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE,
        on_overflow: OnOverflow = "error",
    ) -> None: ...

    @overload
    def __init__(
        self: LinesCodec[bytes],
        encoding: None,
        max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE,
        on_overflow: OnOverflow = "error",
    ) -> None: ...

    def __init__(
        self,
        encoding: str | None = "utf-8",
        max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE,
        on_overflow: OnOverflow = "error",
    ) -> None:
        self._encoding = _check_encoding(encoding)
        self._max_frame_size = _check_max_frame_size(max_frame_size)
        self._discard = _check_on_overflow(on_overflow)

    @property
    def encoding(self) -> str | None:
        """The normalised encoding name (e.g. ``"utf-8"``), or ``None`` for bytes."""
        return self._encoding

    @property
    def max_frame_size(self) -> int:
        """The longest line in bytes, without its terminator (read-only)."""
        return self._max_frame_size

    @property
    def on_overflow(self) -> OnOverflow:
        """``"error"`` or ``"discard"`` (read-only)."""
        return "discard" if self._discard else "error"

    def __repr__(self) -> str:
        return (
            f"LinesCodec(encoding={self._encoding!r}, max_frame_size={self._max_frame_size},"
            f" on_overflow={self.on_overflow!r})"
        )

    @overload
    def encode(self: LinesCodec[str], item: str) -> bytes: ...

    @overload
    def encode(self: LinesCodec[bytes], item: Buffer) -> bytes: ...

    def encode(self, item: str | Buffer) -> bytes:
        r"""Return ``item`` encoded, followed by ``\n``.

        Text codecs take ``str``; bytes codecs (``encoding=None``) take ``bytes``,
        ``bytearray`` or a C-contiguous ``memoryview``.

        Raises:
            FrameTooLarge: The encoded line exceeds ``max_frame_size`` (``local=True``).
            ValueError: The line contains ``\n`` or ends with ``\r``, or cannot be
                encoded (``UnicodeEncodeError``).
            TypeError: ``item`` is ``bytes`` for a text codec or ``str`` for a bytes
                codec.
        """
        encoding = self._encoding
        if encoding is not None:
            if not isinstance(item, str):
                raise TypeError(f"this LinesCodec encodes str, not {type(item).__name__}")
            data = item.encode(encoding)
        elif isinstance(item, str):
            raise TypeError("this LinesCodec (encoding=None) encodes bytes, not str")
        elif type(item) is bytes:
            data = item
        else:
            data = memoryview(item).cast("B").tobytes()
        if len(data) > self._max_frame_size:
            raise FrameTooLarge(len(data), self._max_frame_size, local=True)
        if 10 in data:  # b"\n" (an int lookup is much faster than a bytes one)
            raise ValueError("a line to encode must not contain '\\n'")
        if data.endswith(b"\r"):
            raise ValueError("a line to encode must not end with '\\r' (it would be stripped)")
        return data + _NL

    def encode_many(self, items: Sequence[Any]) -> bytes:
        r"""Return the lines of ``items``, one after the other: ``b"".join(map(encode, items))``.

        Joins and encodes them at once, then checks the whole: when it holds exactly one
        ``\n`` per item, no ``\r`` before one and no more bytes than ``max_frame_size``
        (plus the terminators), every line is valid. Otherwise encodes them one by one,
        so the error raised (for the first item
        [`encode`][wsframed.codecs.LinesCodec.encode] refuses, nothing returned) is
        exactly what ``encode`` raises.
        """
        encoding = self._encoding
        try:
            if encoding is not None:
                # The empty piece at the end puts the last \n in without another copy.
                data = "\n".join([*items, ""]).encode(encoding)
            elif set(map(type, items)) == {bytes}:
                data = _NL.join([*items, b""])
            else:
                data = b""
        except (TypeError, UnicodeEncodeError):
            data = b""
        if (
            data
            and len(data) - len(items) <= self._max_frame_size
            and data.count(_NL) == len(items)
            # A line ending with \r: looking for a \r first costs a fraction of
            # looking for \r\n, which most batches need not do.
            and (_CR not in data or b"\r\n" not in data)
        ):
            return data
        encode = self.encode
        return b"".join([encode(item) for item in items])

    def decoder(self) -> LinesDecoder[_T]:
        """Return a fresh ``LinesDecoder``."""
        return LinesDecoder(self._encoding, self._max_frame_size, self.on_overflow)


class LinesDecoder(Generic[_T]):
    """Decoding state of a [`LinesCodec`][wsframed.codecs.LinesCodec] for one connection.

    How it works: received bytes are appended to one ``bytearray``. ``_pos`` is where
    the next line starts and ``_scan`` how far the search for its ``\\n`` has got, so
    no byte is searched twice. Each iteration pass first finishes the line being
    searched (the one that may have started in an earlier pass), with a search that
    stops ``max_frame_size + 2`` bytes into the line; then it takes every other
    complete line in the buffer in one batch: one ``rfind`` for the last ``\\n``, one
    copy and C-level ``split`` (and, for UTF-8, ASCII and Latin-1, one ``decode``),
    which costs a fraction of a per-line Python loop. A batch holding overlong or
    undecodable lines is still decoded once (undecodable bytes escaped), its bad lines
    are marked, and iteration yields the good lines and raises at each bad one, in
    order, the following passes resuming after it: skipping any number of bad lines
    costs time linear in the bytes received. Consumed bytes are dropped once per pass.
    A line still unterminated after 128 KiB collects the chunks fed next in a list
    instead, searching each once, and goes back to the buffer (one join) when its
    ``\\n`` arrives or it passes the limit: a long line in small chunks costs linear
    time.

    Iterate it in one pass at a time: do not start a new pass while an earlier one is
    suspended. A pass abandoned part-way (``break``) loses nothing: the next pass
    continues with the first line not yet yielded.
    """

    __slots__ = (
        "_bad",
        "_bad_lines",
        "_base",
        "_batch",
        "_buf",
        "_cursor",
        "_discard",
        "_discarding",
        "_encoding",
        "_error",
        "_items",
        "_max_frame_size",
        "_pos",
        "_ready",
        "_rope",
        "_rope_next",
        "_rope_searched",
        "_scan",
        "_segment",
        "_whole",
    )

    def __init__(
        self,
        encoding: str | None = "utf-8",
        max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE,
        on_overflow: OnOverflow = "error",
    ) -> None:
        self._encoding = _check_encoding(encoding)
        self._max_frame_size = _check_max_frame_size(max_frame_size)
        self._discard = _check_on_overflow(on_overflow)
        # A line decodes the same alone or inside a batch in these encodings.
        self._whole = self._encoding in _WHOLE_BATCH_ENCODINGS
        self._buf = bytearray()
        self._pos = 0  # start of the next line in _buf
        self._scan = 0  # _buf[_pos:_scan] holds no b"\n" (stale when below _pos)
        self._base = 0  # stream offset of _buf[0]
        # Collecting a long line (see _ROPE_MIN): its chunks, starting at stream offset
        # _base (_buf is empty meanwhile); how many of them, and how many of their bytes,
        # were searched for b"\n". _rope is None otherwise.
        self._rope: Rope | None = None
        self._rope_next = 0
        self._rope_searched = 0
        self._discarding = False  # dropping the rest of an overlong line
        self._error: WsFramedError | None = None
        self._bad_lines = 0  # bad lines skipped so far (see _skipped)
        # The batch being yielded (its lines are already consumed from _buf): its
        # lines; the bad ones, as (index, size), size -1 for an undecodable line, the
        # next one last (a list: cheaper per idle connection than a deque); the lines
        # between two bad ones being yielded (_ready), from index _segment[0],
        # _segment[1] of them; the batch's bytes and their stream offset, and the
        # index and position in them of a line (see _offset_of).
        self._items: list[Any] = []
        self._bad: list[tuple[int, int]] = []
        self._ready: Iterator[Any] | None = None
        self._segment = (0, 0)
        self._batch: tuple[bytes, int] = (b"", 0)
        self._cursor = (0, 0)

    def feed(self, data: Buffer) -> None:
        """Append received bytes.

        Raises the stored error of a failed decoder. While the rest of an overlong line
        is being discarded, bytes up to its ``\\n`` are dropped here, unbuffered.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        rope = self._rope
        if rope is not None:
            rope.append(data)
            return
        if self._discarding:
            if isinstance(data, memoryview):
                data = data.tobytes()
            i = data.find(_NL)
            if i < 0:
                self._base += len(data)
                return
            self._discarding = False
            self._base += i + 1
            data = memoryview(data)[i + 1 :]
        self._buf += data

    def __iter__(self) -> Iterator[_T]:
        """Yield every complete line buffered so far; stop when more bytes are needed.

        Raises:
            FrameTooLarge: A line exceeds ``max_frame_size``.
            DecodeError: A line is not valid in the encoding (the next pass resumes
                after it).
        """
        # The lines come in batches (lists) flattened by chain in C: taking one costs
        # no Python code; the generator below runs once per batch, not per line.
        return chain.from_iterable(self._batches())

    def _batches(self) -> Iterator[Iterable[_T]]:
        """The lines of ``__iter__``, as iterators over batches of them."""
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        while (ready := self._ready) is not None:  # an earlier pass stopped in a batch
            yield ready  # the same iterator: what a pass leaves of it, the next takes
            self._next_segment()
        if self._rope is not None and not self._search_rope():
            return  # a long line, still collecting
        buf = self._buf
        pos = self._pos
        if pos:
            self._compact(pos)
            pos = 0
        scan = self._scan
        if scan < pos:
            scan = pos
        end = len(buf)
        limit = self._max_frame_size
        encoding = self._encoding
        find = buf.find
        item: Any
        while True:
            # A terminator further than limit + 2 bytes into the line ends a line
            # that is too long anyway: never search beyond that.
            i = find(_NL, scan, pos + limit + 2)
            if i < 0:
                pending = end - pos
                if pending > limit and (pending > limit + 1 or buf[end - 1] != _CR):
                    self._overflow(pos, limit + 1, None)
                self._scan = end
                break
            stop = i - 1 if i > pos and buf[i - 1] == _CR else i
            size = stop - pos
            if size > limit:
                self._overflow(pos, size, i)
            if encoding is None:
                if size < _VIEW_MIN:
                    item = bytes(buf[pos:stop])
                else:
                    item = bytes(memoryview(buf)[pos:stop])
            else:
                try:
                    if size < _VIEW_MIN:
                        item = buf[pos:stop].decode(encoding)
                    else:
                        item = str(memoryview(buf)[pos:stop], encoding)
                except UnicodeDecodeError as exc:
                    self._pos = i + 1
                    error = DecodeError(
                        f"line of {size} bytes is not valid {encoding}: {exc.reason}",
                        offset=self._base + pos,
                    )
                    error.__cause__ = exc
                    skipped = self._skipped(error)
                    raise skipped from skipped.__cause__
            self._pos = pos = scan = i + 1
            yield (item,)
            if pos < end:
                # Every other complete line, at once. rfind stops at the last b"\n",
                # so it only reads bytes no search has seen; so does split.
                last = buf.rfind(_NL, pos, end)
                scan = end
                if last < 0:
                    continue
                self._split(pos, last + 1)
                self._pos = pos = last + 1
                while (ready := self._ready) is not None:
                    yield ready
                    self._next_segment()
        if pos:
            self._compact(pos)
        if len(buf) >= _ROPE_MIN:  # a long unterminated line: collect what follows
            self._rope = Rope(bytes(buf))
            self._rope_next = 1
            self._rope_searched = len(buf)
            buf.clear()  # _base stays: the offset of the line's first byte
            self._scan = 0

    def _search_rope(self) -> bool:
        """Search the chunks of a long line fed since the last pass for its ``\n``.

        Returns ``False`` while the line is unterminated and within the limit. Once its
        ``\n`` is found, or it passes the limit, the chunks are joined into ``_buf``
        with ``_scan`` where the search stopped, and ``True`` lets the usual path take
        the line (or raise about it), as if the bytes had been buffered all along.
        """
        rope = self._rope
        assert rope is not None
        parts = rope.chunks
        bound = self._max_frame_size + 2  # never search further into a line
        searched = self._rope_searched
        index = self._rope_next
        found = False
        while index < len(parts) and searched < bound:
            part = parts[index]
            i = part.find(_NL, 0, bound - searched)
            if i >= 0:
                searched += i
                found = True
                break
            searched += len(part)
            index += 1
        if not found:
            size = rope.size
            limit = self._max_frame_size
            within = size <= limit or (size == limit + 1 and parts[-1][-1] == _CR)
            if within:
                self._rope_next = index
                self._rope_searched = searched
                return False
        self._buf = bytearray().join(parts)
        self._rope = None
        self._rope_next = self._rope_searched = 0
        self._pos = 0
        self._scan = min(searched, len(self._buf))
        return True

    def _split(self, start: int, stop: int) -> None:
        """Make a batch of the complete lines in ``_buf[start:stop]`` (ending with ``\\n``).

        Sets ``_ready`` to iterate over its lines up to the first bad one, if any.
        """
        region = bytes(memoryview(self._buf)[start:stop])
        # Each \r before a \n is terminator (looking for a \r first is much cheaper
        # than a replace that finds nothing).
        data = region.replace(b"\r\n", _NL) if _CR in region else region
        limit = self._max_frame_size
        encoding = self._encoding
        bad: list[tuple[int, int]] = []
        items: list[Any]
        if len(data) > limit + 1 and max(map(len, parts := data.split(_NL))) > limit:
            bad = [(index, n) for index, n in enumerate(map(len, parts)) if n > limit]
        # The decoder fails by this many more bad lines (each is at most at the end of
        # the batch, where the allowance is largest): no need to find more.
        most = _BAD_LINES_BURST + (self._base + stop) // _BAD_LINE_BYTES - self._bad_lines + 1
        if encoding is not None and self._whole:
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                text = data.decode(encoding, "surrogateescape")
                bad = _merge(bad, _escaped_lines(text, most))
            items = text.split("\n")
        else:
            items = data.split(_NL)
            if encoding is not None:
                try:
                    items = [line.decode(encoding) for line in items]
                except UnicodeDecodeError:
                    bad = _merge(bad, _decode_each(items, encoding, most))
        items.pop()  # the empty piece after the last b"\n"
        self._items = items
        self._bad = bad[::-1]  # the next one last
        self._batch = (region, self._base + start)
        self._cursor = (0, 0)
        count = bad[0][0] if bad else len(items)
        self._segment = (0, count)
        self._ready = iter(items if count == len(items) else items[:count])

    def _next_segment(self) -> None:
        """After the lines of ``_ready``: raise about the bad line that ends them.

        Sets ``_ready`` to the lines after that one, up to the next bad line, first;
        to ``None`` at the end of the batch.
        """
        bad = self._bad
        if not bad:  # the end of the batch: release it
            self._ready = None
            self._items = []
            self._batch = (b"", 0)
            return
        index, size = bad.pop()
        items = self._items
        after = bad[-1][0] if bad else len(items)
        self._segment = (index + 1, after - index - 1)
        self._ready = iter(items[index + 1 : after])
        offset = self._offset_of(index)
        limit = self._max_frame_size
        if size >= 0:
            # As the line would be refused alone: searched no further than limit + 2
            # bytes in, a longer line is known to be "at least limit + 1" bytes.
            region, start = self._batch
            at = offset - start
            if region.index(_NL, at) - at > limit + 1:
                exc = FrameTooLarge(limit + 1, limit, at_least=True, offset=offset)
            else:
                exc = FrameTooLarge(size, limit, offset=offset)
            if not self._discard:
                self._fail(exc)
            raise self._skipped(exc)
        line = items[index]
        encoding = self._encoding
        assert encoding is not None
        raw = line if isinstance(line, bytes) else line.encode(encoding, "surrogateescape")
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as exc:
            error = DecodeError(
                f"line of {len(raw)} bytes is not valid {encoding}: {exc.reason}",
                offset=offset,
            )
            error.__cause__ = exc
            skipped = self._skipped(error)
            raise skipped from skipped.__cause__
        raise AssertionError("a line marked undecodable decoded")  # pragma: no cover

    def _compact(self, pos: int) -> None:
        """Drop the consumed ``_buf[:pos]``."""
        del self._buf[:pos]
        self._base += pos
        self._scan -= pos
        self._pos = 0

    def _overflow(self, pos: int, size: int, newline: int | None) -> NoReturn:
        """Raise ``FrameTooLarge`` for the line at ``pos``.

        ``newline`` is the index of its ``\\n``, or ``None`` when it has not been
        found and ``size`` is only a lower bound.
        """
        limit = self._max_frame_size
        buf = self._buf
        exc = FrameTooLarge(size, limit, at_least=newline is None, offset=self._base + pos)
        if not self._discard:
            self._fail(exc)
            raise exc
        if newline is None:
            # The first limit + 2 bytes of the line (or all of it) were searched.
            newline = buf.find(_NL, pos + limit + 2)
        if newline < 0:
            self._discarding = True
            self._compact(len(buf))
        else:
            self._compact(newline + 1)
        self._scan = 0
        raise self._skipped(exc)

    def _fail(self, exc: WsFramedError) -> None:
        """Fail the decoder for good with ``exc``, releasing its memory."""
        self._error = exc
        self._buf = bytearray()
        self._pos = self._scan = 0
        self._rope = None
        self._ready = None
        self._items = []
        self._bad = []
        self._batch = (b"", 0)

    def _skipped(self, exc: WsFramedError) -> WsFramedError:
        """Count the bad line of ``exc``, which the decoder resynchronises after.

        Returns the error to raise: ``exc`` itself while bad lines come at no more than
        the tolerated rate (see the module's "Errors"); past it, a "too many bad lines"
        [`DecodeError`][wsframed.errors.DecodeError] that fails the decoder for good. Codecs built
        on this one (JSON Lines) count their own bad lines here too.
        """
        if self._error is not None:  # already failed (on_overflow="error")
            return exc
        self._bad_lines = count = self._bad_lines + 1
        offset = getattr(exc, "offset", None) or 0
        if count <= _BAD_LINES_BURST + offset // _BAD_LINE_BYTES:
            return exc
        error = DecodeError(
            f"too many bad lines: {count} by this one, more than {_BAD_LINES_BURST} plus"
            f" one per {_BAD_LINE_BYTES} bytes of stream; the peer is not speaking this"
            " protocol",
            offset=offset,
        )
        error.__cause__ = exc
        self._fail(error)
        return error

    def _line_offset(self, size: int) -> int:
        """Stream offset of the line just yielded, whose payload is ``size`` bytes.

        For error messages of codecs built on this one; valid only while the pass
        that yielded the line is suspended right after it.
        """
        ready = self._ready
        if ready is not None:  # the line came from a batch
            first, count = self._segment
            return self._offset_of(first + count - operator.length_hint(ready) - 1)
        pos = self._pos  # just past the line's b"\n"; no compaction since
        start = pos - 1 - size
        if size and self._buf[pos - 2] == _CR:  # a stripped "\r" (see __iter__)
            start -= 1
        return self._base + start

    def _offset_of(self, index: int) -> int:
        """Stream offset of the line ``index`` of the batch.

        Lines are looked for in order: walking on from the last one found, finding
        every line of a batch costs one pass over its bytes.
        """
        region, offset = self._batch
        seen, at = self._cursor
        if index < seen:
            seen = at = 0
        for _ in range(index - seen):
            at = region.index(_NL, at) + 1
        self._cursor = (index, at)
        return offset + at

    def feed_eof(self) -> None:
        """Mark the end of the stream.

        Call it after iterating every complete line.

        Raises:
            IncompleteFrame: Bytes of an unterminated line are buffered (``pending``
                says how many; ``offset`` where the line starts).
            FrameTooLarge: The decoder failed earlier (``on_overflow="error"``).
        """
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        pending = len(self._buf) - self._pos + (self._rope.size if self._rope else 0)
        if pending:
            raise IncompleteFrame(pending, offset=self._base + self._pos)


def _escaped_lines(text: str, most: int) -> list[tuple[int, int]]:
    """The first ``most`` lines of ``text`` (decoded with ``surrogateescape``) with an
    escaped byte.

    As ``(index, -1)``; one search per bad line, so linear in ``len(text)``. The
    decoder fails by the ``most``-th bad line: a batch of 13,000 bad lines cost a
    search each although only 65 could be raised (28 times a benign 64 KiB).
    """
    bad: list[tuple[int, int]] = []
    search = _ESCAPED.search
    count = text.count
    find = text.find
    index = at = 0
    while len(bad) < most and (match := search(text, at)) is not None:
        hit = match.start()
        index += count("\n", at, hit)
        bad.append((index, -1))
        at = find("\n", hit)
        if at < 0:
            break
        at += 1
        index += 1
    return bad


def _decode_each(items: list[Any], encoding: str, most: int) -> list[tuple[int, int]]:
    """Decode ``items`` in place, leaving the undecodable ones as bytes; list those.

    Stops at the ``most``-th undecodable one, by which the decoder fails.
    """
    bad: list[tuple[int, int]] = []
    for index, line in enumerate(items):
        try:
            items[index] = line.decode(encoding)
        except UnicodeDecodeError:
            bad.append((index, -1))
            if len(bad) >= most:
                break
    return bad


def _merge(
    over: list[tuple[int, int]], undecodable: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The bad lines of both lists, in order; an overlong line is reported as such."""
    if not over:
        return undecodable
    sizes = dict(undecodable)
    sizes.update(over)
    return sorted(sizes.items())
