"""Framed: a codec over a byte stream, giving typed frames in both directions.

How it works
------------
Receiving: [`Framed.recv`][wsframed.Framed.recv] reads whatever bytes are available (at most 64
KiB, often one whole WebSocket message), feeds them to the codec's decoder and decodes
the frames only as they are asked for, in windows of 256 (``DECODE_AHEAD``): ``recv()``
and ``async for`` queue as many of a window as the calls to come may take without
yielding (``BUDGET``), one ``recv_many()`` returns at most the rest of a window. So one
read serves many frames, no coroutine is awaited per frame while frames are queued, and
only a few dozen decoded frames wait at once (thousands queued per chunk would be walked
again and again by the garbage collector). When the decoder fails
part-way through a chunk, the frames before the failure are delivered first, then the
error. Codecs that cannot resynchronise (length-prefixed, msgpack, CBOR) keep failing with
the same error; ``LinesCodec(on_overflow="discard")`` and JSON Lines resume at the next
line.

Sending: [`Framed.feed`][wsframed.Framed.feed] encodes synchronously and hands the whole frame to
the stream in one ``write()``, so a frame that is too large raises there with nothing
buffered, and concurrent senders never interleave the bytes of two frames.
[`Framed.flush`][wsframed.Framed.flush] drains; over a [`WsStream`][wsframed.WsStream] everything
fed since the last flush leaves as one message (up to ``write_chunk_size``).
[`Framed.send`][wsframed.Framed.send] is feed plus flush (over a WsStream with nothing
buffered or being sent, the frame goes to the connection as its own message at once,
without passing through the write buffer: the order, limits and cancellation
guarantees are the same);
[`Framed.send_all`][wsframed.Framed.send_all] flushes whenever ``high_water`` bytes are waiting,
and at the end. Given a plain iterable, ``send_all`` encodes the frames up to the high-water mark
into a list and hands them to the stream in one ``write()``: no other task runs in between, so this
is what feeding them one by one would give, at a fraction of the cost per frame (an async iterable
may let other tasks run between items, so its frames are fed one by one).

Giving the loop a turn (see [`wsframed.checkpoint`][wsframed.checkpoint]): a call
that raises without having waited (a failed decoder, the end of stream, a closed side,
a frame that does not encode) yields once first, so a retry loop around it cannot
freeze the program or outrun a timeout. The yield comes before any state changes: a
cancellation delivered there leaves the stored error, the queued frames and the send
buffer as they were. Every call spends one unit of its side's budget (receiving or
sending; a call that read from a stream that never waits counts too; a receiving call
that takes a queued frame spent it when the frame was queued, so it costs no count), and
one call in
[`BUDGET`][wsframed.checkpoint.BUDGET] yields first, before it takes a frame or writes
one, so again a cancellation there loses and half-sends nothing.
"""

from __future__ import annotations

from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from itertools import islice
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from .bytestreams import ByteStream, ReaderWriterByteStream, byte_stream
from .checkpoint import BUDGET, checkpoint
from .codecs.base import Codec, Decoder
from .errors import ClosedStreamError, EndOfStream
from .request import Request, request_of
from .stream import WsStream

_SEND_CLOSED = "cannot send: this Framed's sending side is closed"

__all__ = ["Framed", "FramedSink", "FramedStream"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)

DEFAULT_HIGH_WATER = 64 * 1024
# The window frames are decoded in: a chunk is decoded at most this many frames at a
# time, as they are asked for (recv_many() returns at most one window). Decoding a
# whole 64 KiB chunk at once would keep thousands of frames alive in the queue, which
# the garbage collector then walks again and again (promoting them to older
# generations) while the caller takes them.
DECODE_AHEAD = 256
# send_all() of a list or tuple hands a codec with encode_many() up to this many items
# at a time: one call, and one buffer, per slice instead of per item. Slices are sized
# to what high_water leaves, so small frames come in about three slices per flush.
SLICE = 1024


def _not_sent(data: bytes) -> bool:
    return False


def check_codec(codec: object, caller: str) -> None:
    """Raise ``TypeError`` unless ``codec`` is a codec instance, naming the fix.

    ``caller`` names the call in the message (``"serve()"``). A codec class given
    where an instance belongs (``codec=LinesCodec``) would otherwise fail only when a
    connection calls ``decoder()``, once per connection, far from the mistake.
    """
    looks_like_codec = callable(getattr(codec, "encode", None)) and callable(
        getattr(codec, "decoder", None)
    )
    if isinstance(codec, type) and looks_like_codec:
        name = codec.__qualname__
        raise TypeError(
            f"{caller} got the codec class {name}, not a codec: pass an instance: {name}()"
        )
    if isinstance(codec, type) or not looks_like_codec:
        if isinstance(codec, type):
            what = f"the class {codec.__qualname__}"
        else:
            what = f"an instance of {type(codec).__qualname__}"
        raise TypeError(
            f"{caller} needs a codec instance (an object with encode() and decoder(), "
            f"such as LinesCodec()), not {what}"
        )


class Framed(Generic[T]):
    """Frames of type ``T`` over a byte stream, encoded and decoded by ``codec``.

    ``stream`` is a [`WsStream`][wsframed.WsStream], any object with asyncio
    ``read``/``write``/``drain``, an asyncio ``(reader, writer)`` pair, or an anyio
    ``ByteStream``. ``high_water`` is how many encoded bytes [`send_all`][wsframed.Framed.send_all]
    buffers before it flushes.

    Receiving and sending are independent: one task may receive while others send.
    Use [`split`][wsframed.Framed.split] to hand the halves to different owners.
    """

    def __init__(self, stream: Any, codec: Codec[T], *, high_water: int = DEFAULT_HIGH_WATER):
        if high_water <= 0:
            raise ValueError(f"high_water must be a positive number of bytes, not {high_water}")
        check_codec(codec, "Framed()")
        self.stream = stream
        """The byte stream this Framed runs over, as given."""
        self.codec = codec
        """The codec (shared, immutable configuration)."""
        self._io: ByteStream = byte_stream(stream)
        self._decoder: Decoder[T] = codec.decoder()
        # The frames queued: decoded, charged to the receiving budget (see _take), not
        # yet taken; the next one last (a list costs less memory per idle connection
        # than a deque). Frames are added only when it is empty: a batch is reversed
        # once, then each frame taken with pop().
        self._items: list[T] = []
        # The decoder's pass over the last chunk fed, while it may still yield frames:
        # the frames after the queued ones, not decoded yet.
        self._pass: Iterator[T] | None = None
        # How many more frames the pass may yield in the window it is being decoded in
        # (DECODE_AHEAD frames, or all at the end of stream); 0 between windows, and
        # whenever _pass is None.
        self._window = 0
        self._error: BaseException | None = None  # raised once _items is empty
        self._eof = False
        self._eof_error: BaseException | None = None
        self._recheck = False
        self._high_water = high_water
        self._unflushed = 0
        self._send_closed = False
        self._closed = False
        self._encode = codec.encode
        self._write = self._io.write
        self._drain = self._io.drain
        self._read_some = self._io.read_some
        # How send() sends one encoded frame: _send_nowait(data) sends it without
        # awaiting anything where it can (True), else _send_later(data) sends it and
        # waits. Over a WsStream a frame sent alone goes straight to the connection as
        # one message (WsStream._send_whole), when nothing is buffered before it;
        # without awaiting only where the backend can (WsStream._send_whole_nowait,
        # picows' and websockets' backends), so over the others (aiohttp, Starlette, the
        # browser) no call is spent on a try that cannot succeed.
        # Elsewhere: write() and drain().
        writer = getattr(self._io, "writer", None)
        self._send_nowait: Callable[[bytes], bool] = _not_sent
        self._send_later: Callable[[bytes], Awaitable[None]] = self._write_and_drain
        self._sends_nowait = False  # whether _send_nowait can ever succeed
        if isinstance(writer, WsStream):
            self._send_later = writer._send_whole
            if writer._send_nowait is not None:
                self._send_nowait = writer._send_whole_nowait
                self._sends_nowait = True
        # A Budget per direction (the halves may belong to two tasks), inlined as the
        # reads are: Budget.spend() as a call would cost as much as serving the frame.
        # Receiving: the frames in _items were charged when queued (see _take), so
        # _recv_left + len(_items) is what the Budget would hold; taking one of them is
        # a pop and nothing else.
        self._recv_left = BUDGET
        self._send_left = BUDGET

    @classmethod
    def from_streams(
        cls, reader: Any, writer: Any, codec: Codec[T], *, high_water: int = DEFAULT_HIGH_WATER
    ) -> Framed[T]:
        """Frame an asyncio ``StreamReader``/``StreamWriter`` pair (TCP, Unix, pipes)."""
        framed = cls((reader, writer), codec, high_water=high_water)
        assert isinstance(framed._io, ReaderWriterByteStream)
        return framed

    # Sending ------------------------------------------------------------------

    def feed(self, item: T) -> None:
        """Encode ``item`` and buffer it; [`flush`][wsframed.Framed.flush] sends it.

        Raises [`FrameTooLarge`][wsframed.errors.FrameTooLarge] (or the codec's ``ValueError``/
        ``TypeError``) with nothing buffered, so the stream stays usable.
        """
        if self._send_closed:
            raise ClosedStreamError(_SEND_CLOSED)
        data = self._encode(item)
        self._write(data)
        self._unflushed += len(data)

    async def flush(self) -> None:
        """Send everything fed so far and wait for transport backpressure."""
        left = self._send_left - 1  # _send_spent(), inlined
        if left:
            self._send_left = left
        else:
            self._send_left = BUDGET
            await checkpoint()
        self._unflushed = 0
        try:
            await self._drain()
        except Exception:
            await checkpoint()  # a stream that fails at once must not spin a retry loop
            raise

    async def send(self, item: T) -> None:
        """Encode, write and flush one item.

        The same as [`feed`][wsframed.Framed.feed] then [`flush`][wsframed.Framed.flush].

        Raises like [`feed`][wsframed.Framed.feed] (nothing sent) after yielding to the
        event loop once.
        Cancelling it never sends part of a frame: before the frame is written nothing
        of it is sent; once written, the whole frame leaves with this or the next flush.
        """
        left = self._send_left - 1  # _send_spent(), inlined
        if left:
            self._send_left = left
        else:
            self._send_left = BUDGET
            await checkpoint()  # before the frame is written: a cancellation sends nothing
        try:
            if self._send_closed:
                raise ClosedStreamError(_SEND_CLOSED)
            data = self._encode(item)
            self._unflushed = 0
            if not self._send_nowait(data):  # after anything fed before: see WsStream
                await self._send_later(data)
        except Exception:
            await checkpoint()
            raise

    def _write_and_drain(self, data: bytes) -> Awaitable[None]:
        """``_send_later`` over a stream that is not a WsStream: writes ``data`` now and
        returns the stream's ``drain()`` to await (no coroutine of its own per send)."""
        self._write(data)
        return self._drain()

    def _feed_encoded(self, data: bytes) -> None:
        """[`feed`][wsframed.Framed.feed] of a frame ``_encode_checked`` gave."""
        self._write(data)
        self._unflushed += len(data)

    def _encode_checked(self, item: T) -> bytes:
        """Encode ``item`` for [`send`][wsframed.Framed.send] (``ClosedStreamError``
        once the sending side is closed, the codec's errors): nothing is written."""
        if self._send_closed:
            raise ClosedStreamError(_SEND_CLOSED)
        return self._encode(item)

    def _send_spent(self) -> bool:
        """Spend one unit of the sending budget; True when this call must yield."""
        left = self._send_left - 1
        if left:
            self._send_left = left
            return False
        self._send_left = BUDGET
        return True

    async def _flush(self) -> None:
        """flush() for send_all(), whose caller yields on errors."""
        if self._send_spent():
            await checkpoint()
        self._unflushed = 0
        await self._drain()

    async def send_all(self, items: Iterable[T] | AsyncIterable[T]) -> None:
        """Send every item, flushing whenever ``high_water`` bytes wait, and at the end.

        Accepts a plain or an async iterable. A frame that fails to encode raises with
        the frames before it already fed (flush to send them).
        """
        try:
            await self._send_all(items)
        except Exception:
            await checkpoint()
            raise

    async def _send_all(self, items: Iterable[T] | AsyncIterable[T]) -> None:
        high_water = self._high_water
        if isinstance(items, AsyncIterable):
            feed = self.feed
            async for item in items:
                feed(item)
                if self._unflushed >= high_water:
                    await self._flush()
            await self._flush()
            return
        encode_many = getattr(self.codec, "encode_many", None)
        if encode_many is not None and isinstance(items, (list, tuple)):
            await self._send_sequence(items, encode_many)
            return
        encode = self._encode
        iterator = iter(items)
        while True:
            if self._send_closed:
                raise ClosedStreamError(_SEND_CLOSED)
            # No await until the batch is written, so no other task can feed or
            # flush in between: writing the batch at once is the same as feeding
            # each frame, minus a write() per frame.
            batch: list[bytes] = []
            unflushed = self._unflushed
            try:
                for item in iterator:
                    data = encode(item)
                    batch.append(data)
                    unflushed += len(data)
                    if unflushed >= high_water:
                        break
                else:
                    break  # the items ran out: write the batch (finally), flush below
            finally:
                # Also when an item fails to encode: the frames before it are fed.
                if batch:
                    self._write(batch[0] if len(batch) == 1 else b"".join(batch))
                self._unflushed = unflushed
            await self._flush()
        await self._flush()

    async def _send_sequence(
        self, items: list[T] | tuple[T, ...], encode_many: Callable[[Sequence[T]], bytes]
    ) -> None:
        """send_all() of a list or tuple, with a codec that encodes slices at once.

        The same frames, batches and errors as item by item: slices of up to
        ``SLICE`` items go to ``encode_many``; when a slice fails, its items are
        encoded one by one, so the frames before the failing one are fed and its
        error raised. Slices shrink so that one overshoots ``high_water`` by little.
        """
        high_water = self._high_water
        encode = self._encode
        # The codecs' encode_many() check a slice's total size against max_frame_size
        # (over it, they encode its items again one by one): slices stay within it.
        most = getattr(self.codec, "max_frame_size", None)
        if not isinstance(most, int) or most <= 0:
            most = high_water
        count = len(items)
        index = 0
        step = 8  # the first slice, before the frame size is known
        while True:
            if self._send_closed:
                raise ClosedStreamError(_SEND_CLOSED)
            batch: list[bytes] = []
            unflushed = self._unflushed
            try:
                while index < count:
                    part = items[index : index + step]
                    try:
                        data = encode_many(part)
                    except Exception:
                        for item in part:  # raises at the failing item, the ones before fed
                            data = encode(item)
                            batch.append(data)
                            unflushed += len(data)
                            index += 1
                    else:
                        batch.append(data)
                        unflushed += len(data)
                        index += len(part)
                    if unflushed >= high_water:
                        break
                    # Items as large as the last ones, up to what high_water leaves.
                    size = max(len(data) // len(part), 1)
                    step = max(1, min(SLICE, min(high_water - unflushed, most) // size))
                else:
                    break  # the items ran out: write the batch (finally), flush below
            finally:
                if batch:
                    self._write(batch[0] if len(batch) == 1 else b"".join(batch))
                self._unflushed = unflushed
            await self._flush()
        await self._flush()

    async def send_eof(self) -> None:
        """Flush and close the sending side; receiving goes on to the end of stream.

        Over a WsStream this sends the close frame (the peer can send no more once it
        gets it); over TCP it half-closes.
        """
        if self._send_closed:
            if self._send_spent():
                await checkpoint()
            return
        self._send_closed = True
        try:
            await self._io.send_eof()
        except Exception:
            await checkpoint()
            raise

    # Receiving ----------------------------------------------------------------

    async def _fill(self) -> None:
        """Read until at least one frame is queued, or raise the stream's end/error."""
        items = self._items
        decoder = self._decoder
        yielded = False
        while not items:
            if self._pass is not None:  # frames before a stored error first
                self._take()
                continue
            error = self._error
            if error is not None or (self._eof and not self._recheck):
                if not yielded:
                    # About to raise without waiting (a retry loop would spin): give
                    # the loop a turn first, before the error is taken, so that a
                    # cancellation here leaves it stored. Then look again.
                    yielded = True
                    await checkpoint()
                    continue
                if error is not None:
                    self._error = None
                    self._recheck = True
                    raise error
                raise self._eof_error or self._end_of_stream()
            if self._recheck:
                # After an error, ask the decoder again before reading: a failed
                # decoder re-raises at once, a resyncing one yields what it holds.
                self._recheck = False
                try:
                    self._pass = iter(decoder)  # queued at the top of the loop
                except Exception as exc:  # a decoder whose __iter__ raises at once
                    self._error = exc
                continue
            try:
                data = await self._read_some()
            except Exception as exc:
                self._error = exc  # raised above, after a checkpoint (the stream's own)
                continue
            if data:
                self._decode(data)
            else:
                self._decode_eof()

    def _end_of_stream(self) -> EndOfStream:
        """The end of stream a receiving call raises, saying which side ended it."""
        if self._closed:
            return EndOfStream(
                "this Framed was closed with aclose() on this side: nothing more will be "
                "received (the frames that arrived before were delivered)"
            )
        return EndOfStream("the peer ended the stream")

    def _decode(self, data: bytes, *, queue: bool = True) -> None:
        """Feed a chunk to the decoder and start a pass over it; with ``queue``, queue
        the first frames it completes."""
        decoder = self._decoder
        try:
            decoder.feed(data)
            self._pass = iter(decoder)
        except Exception as exc:
            self._error = exc
            return
        if queue:
            self._take()

    def _next_frames(self, max_items: int | None) -> list[T]:
        """The pass's next frames, in order, while none is queued: the rest of the
        window under way, or a new window's; at most ``max_items``.

        The pass ends when it yields fewer than asked. An error ends it too, stored for
        the next call: the frames before it are returned first.
        """
        window = self._window
        limit = window or DECODE_AHEAD
        if max_items is not None:
            limit = min(max_items, limit)
        batch: list[T] = []
        try:
            batch.extend(islice(self._pass or (), limit))
        except Exception as exc:
            self._pass = None
            self._error = exc
        if len(batch) < limit:
            self._pass = None
        self._window = window - len(batch) if window and self._pass is not None else 0
        return batch

    def _take(self) -> None:
        """Queue the pass's next frames, and charge them to the budget.

        Called only when the queue is empty and a pass is under way, by a receiving call
        that spent its unit of the budget and takes the first frame. As many frames are
        decoded and queued as that call and the calls after it may return without
        yielding, at most the rest of the window under way (or of a new one); the
        budget is charged for those calls now. The pass ends when it yields fewer; an
        error ends it too, the frames before it first.
        """
        items = self._items
        window = self._window or DECODE_AHEAD
        count = min(self._recv_left, window)
        try:
            items.extend(islice(self._pass or (), count))
        except Exception as exc:
            # The frames decoded before the failure are kept: they go first.
            self._pass = None
            self._error = exc
        taken = len(items)
        if taken < count:
            self._pass = None
        self._window = window - taken if self._pass is not None else 0
        if taken:
            items.reverse()
            self._recv_left -= taken - 1  # the first is the calling one's

    def _decode_eof(self) -> None:
        """Decode the last frames and check that none was cut short; they become a
        window of their own."""
        self._eof = True
        frames: list[T] = []  # the pass is over: the end of stream is read only then
        try:
            frames.extend(self._decoder)
            self._decoder.feed_eof()
        except Exception as exc:
            self._eof_error = exc  # an error at the end of stream stays for good
            self._error = exc  # raised once the frames before it are taken
        if frames:
            self._pass = iter(frames)
            self._window = len(frames)

    async def recv(self) -> T:
        """Return the next frame.

        Raises [`EndOfStream`][wsframed.errors.EndOfStream] at a clean end of stream,
        [`IncompleteFrame`][wsframed.errors.IncompleteFrame] if it ended inside a frame,
        [`DecodeError`][wsframed.errors.DecodeError] / ``FrameTooLarge`` for bad input (after
        the frames before it), and ``ConnectionClosed`` for an abnormal end.
        Returns at once when a frame is queued; one call in
        [`BUDGET`][wsframed.checkpoint.BUDGET] yields to the event loop first, and one
        that raises yields before it raises. Cancelling it loses no frame.
        """
        items = self._items
        if items:  # queued, and charged to the budget then: see _take
            return items.pop()
        left = self._recv_left - 1  # the receiving Budget, inlined
        if left:
            self._recv_left = left
        else:
            self._recv_left = BUDGET
            await checkpoint()  # before anything is taken: a cancellation loses nothing
        if self._pass is not None:
            self._take()
        if not items:
            if self._error is None and not self._recheck and not self._eof:
                # The usual case inline (no coroutine of its own): one read.
                try:
                    data = await self._read_some()
                except Exception as exc:
                    self._error = exc  # _fill() raises it, after a checkpoint
                else:
                    if data:
                        self._decode(data)
                    else:
                        self._decode_eof()
            if not items:
                await self._fill()
        return items.pop()

    async def recv_many(self, max_items: int | None = None) -> list[T]:
        """Return the next frames, without waiting while any is buffered (at least one, at most
        ``max_items``).

        A chunk is decoded in windows of 256 frames as they are asked for: one call
        returns the frames queued and the rest of the window under way (at most 256),
        or every frame the decoder gave at the end of stream.

        Waits only when none is queued. Same errors as [`recv`][wsframed.Framed.recv], and the same
        yields to the event loop. ``max_items`` below 1 raises ``ValueError`` (after a
        yield), a caller's mistake.
        """
        if max_items is not None and max_items < 1:
            await checkpoint()
            raise ValueError(
                f"recv_many(max_items={max_items}): max_items must be 1 or more, or None "
                "for every frame decoded ahead (a caller's mistake)"
            )
        items = self._items
        # The queued frames were charged as calls of their own (see _take): this one
        # call takes them, so they are given back.
        left = self._recv_left + len(items) - 1
        if left:
            self._recv_left = left
        else:
            # Only with nothing queued: _recv_left is 1 or more (see _take). If cancelled
            # here, the budget stays as it is after a turn.
            left = self._recv_left = BUDGET
            await checkpoint()
        if not items:
            if self._pass is None and self._error is None and not self._recheck and not self._eof:
                try:
                    data = await self._read_some()  # the usual case inline, as in recv()
                except Exception as exc:
                    self._error = exc
                else:
                    if data:
                        self._decode(data, queue=False)
                    else:
                        self._decode_eof()
            if self._pass is not None:
                # Nothing queued: the decoder's next frames go to the caller as they
                # come, in a list of their own (no queue, no reversing).
                batch = self._next_frames(max_items)
                if batch:
                    return batch
            await self._fill()
        keep = 0 if max_items is None else max(len(items) - max_items, 0)  # left queued
        batch = items[keep:]  # the next ones, the next one last
        batch.reverse()
        del items[keep:]
        if self._window and (max_items is None or max_items > len(batch)):
            # The rest of the window under way comes too, as if decoded with the queue.
            batch += self._next_frames(None if max_items is None else max_items - len(batch))
        self._recv_left = left - len(items)  # those left queued stay charged
        return batch

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        items = self._items
        if items:  # as in recv()
            return items.pop()
        left = self._recv_left - 1
        if left:
            self._recv_left = left
        else:
            self._recv_left = BUDGET
            await checkpoint()
        if self._pass is not None:
            self._take()
        if not items:
            if self._error is None and not self._recheck and not self._eof:
                try:
                    data = await self._read_some()  # the usual case inline, as in recv()
                except Exception as exc:
                    self._error = exc
                else:
                    if data:
                        self._decode(data)
                    else:
                        self._decode_eof()
            if not items:
                try:
                    await self._fill()
                except EndOfStream:
                    raise StopAsyncIteration from None
        return items.pop()

    # Halves and closing -------------------------------------------------------

    def split(self) -> tuple[FramedSink[T], FramedStream[T]]:
        """Return the sending half and the receiving half, for use by two tasks."""
        return FramedSink(self), FramedStream(self)

    async def aclose(self) -> None:
        """Close the underlying stream (over a WsStream: the close handshake). Idempotent."""
        if self._closed:
            if self._send_spent():
                await checkpoint()
            return
        self._closed = True
        self._send_closed = True
        try:
            await self._io.aclose()
        except Exception:
            await checkpoint()
            raise

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Transport information from the underlying stream (``"peername"``, ...)."""
        return self._io.get_extra_info(name, default)

    @property
    def request(self) -> Request | None:
        """The request that opened this connection, in a [`serve`][wsframed.serve] handler.

        A [`Request`][wsframed.Request] (``path``, ``query``, ``headers``,
        ``remote_address``, ``subprotocol``) on the server side of a websockets
        connection; ``None`` on a client, over TCP, aiohttp or Starlette.
        """
        return request_of(self._io.get_extra_info("connection"))

    @property
    def remote_address(self) -> Any:
        """The peer's address (the stream's ``"peername"``), or ``None`` when unknown."""
        return self._io.get_extra_info("peername")

    @property
    def local_address(self) -> Any:
        """This side's address (the stream's ``"sockname"``), or ``None`` when unknown."""
        return self._io.get_extra_info("sockname")

    @property
    def subprotocol(self) -> str | None:
        """The WebSocket subprotocol agreed in the handshake, or ``None``."""
        subprotocol = self._io.get_extra_info("subprotocol")
        return subprotocol if isinstance(subprotocol, str) else None

    @property
    def close_code(self) -> int | None:
        """How the connection ended: the close code, as the stream reports it.

        Over a [`WsStream`][wsframed.WsStream], its
        [`close_code`][wsframed.WsStream.close_code] (``None`` while open, 1006 when it
        ended with no close frame); ``None`` over a stream that has no close code.
        """
        code = getattr(self.stream, "close_code", None)
        return code if isinstance(code, int) else None

    @property
    def close_reason(self) -> str | None:
        """The close reason, as the stream reports it; ``None`` as for ``close_code``."""
        reason = getattr(self.stream, "close_reason", None)
        return reason if isinstance(reason, str) else None

    async def __aenter__(self) -> Self:
        if self._send_spent():
            await checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class FramedSink(Generic[T_contra]):
    """The sending half of a [`Framed`][wsframed.Framed].

    Its methods: ``send``, ``feed``, ``flush``, ``send_all``.
    """

    def __init__(self, framed: Framed[Any]):
        self._framed = framed

    def feed(self, item: T_contra) -> None:
        """Encode and buffer ``item`` (see [`Framed.feed`][wsframed.Framed.feed])."""
        self._framed.feed(item)

    async def flush(self) -> None:
        """Send what was fed (see [`Framed.flush`][wsframed.Framed.flush])."""
        await self._framed.flush()

    async def send(self, item: T_contra) -> None:
        """Encode, write and flush one item."""
        await self._framed.send(item)

    async def send_all(self, items: Iterable[T_contra] | AsyncIterable[T_contra]) -> None:
        """Send every item, batched (see [`Framed.send_all`][wsframed.Framed.send_all])."""
        await self._framed.send_all(items)

    async def close(self) -> None:
        """Flush and close the sending side (over a WsStream, the close frame).

        The receiving half keeps reading until the peer's end of stream.
        """
        await self._framed.send_eof()


class FramedStream(Generic[T_co]):
    """The receiving half of a [`Framed`][wsframed.Framed]: an async iterator of frames."""

    def __init__(self, framed: Framed[Any]):
        self._framed = framed

    async def recv(self) -> T_co:
        """Return the next frame (see [`Framed.recv`][wsframed.Framed.recv])."""
        item: T_co = await self._framed.recv()
        return item

    async def recv_many(self, max_items: int | None = None) -> list[T_co]:
        """Return the frames already decoded.

        See [`Framed.recv_many`][wsframed.Framed.recv_many].
        """
        return await self._framed.recv_many(max_items)

    def __aiter__(self) -> AsyncIterator[T_co]:
        return self._framed
