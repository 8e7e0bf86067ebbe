"""Hypothesis helpers and a tolerant decoding driver shared by the codec tests."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame, WsFramedError

from .codec_checks import split_at


def draw_chunks(data: st.DataObject, blob: bytes, *, max_cuts: int = 20) -> list[bytes]:
    """Cut ``blob`` at a drawn set of offsets (possibly none, possibly repeated)."""
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=max_cuts), label="cuts")
    return split_at(blob, cuts)


def decode_events(codec: Any, chunks: list[bytes], *, eof: bool = True) -> list[Any]:
    """Feed ``chunks`` into a fresh decoder, tolerating the errors codecs may raise.

    Returns the items interleaved with ``("error", type name, offset)`` events, and a
    final ``("eof", pending, offset)`` when ``feed_eof`` raised ``IncompleteFrame``.
    Only ``DecodeError`` and ``FrameTooLarge`` (and ``IncompleteFrame`` at the end) are
    tolerated: any other exception escapes and fails the test. A decoder that
    re-raises the same error object is failed for good: the run stops there, after
    checking that ``feed`` and ``feed_eof`` raise that object too.
    """
    decoder = codec.decoder()
    events: list[Any] = []
    last: WsFramedError | None = None
    for chunk in chunks:
        try:
            decoder.feed(chunk)
        except WsFramedError as exc:
            if exc is not last:
                raise AssertionError("feed raised something other than the stored error") from exc
            return events
        while True:
            try:
                events.extend(decoder)
            except (DecodeError, FrameTooLarge) as exc:
                if exc is last:  # failed for good
                    _assert_failed(decoder, exc)
                    return events
                events.append(("error", type(exc).__name__, getattr(exc, "offset", None)))
                last = exc
                continue
            break
    if eof:
        try:
            decoder.feed_eof()
        except IncompleteFrame as exc:
            events.append(("eof", exc.pending, exc.offset))
    return events


def _assert_failed(decoder: Any, exc: WsFramedError) -> None:
    for call in (lambda: decoder.feed(b"x"), lambda: list(decoder), decoder.feed_eof):
        with pytest.raises(WsFramedError) as again:
            call()
        assert again.value is exc
