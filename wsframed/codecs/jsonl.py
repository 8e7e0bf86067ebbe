r"""JSON Lines: one JSON value per ``\n``-terminated line (https://jsonlines.org).

Wire format
-----------
Each frame is one JSON text in UTF-8 followed by ``\n``; the line framing is
:class:`~wsframed.codecs.LinesCodec`'s, so ``\r\n`` terminators are accepted too::

    +-----------------------------+----+
    |  {"id":1,"tags":["é"]}      | \n |
    +-----------------------------+----+

    encode({"id": 1})   ->  b'{"id":1}\n'
    b'1\n\n"two"\r\n'   ->  1, "two"        (blank lines are skipped)

Values are encoded compactly (``separators=(",", ":")``, ``ensure_ascii=False``);
``json.dumps`` escapes every control character, so a value never contains a raw
newline. Pass ``dumps=`` / ``loads=`` to use another JSON library (``dumps`` may
return ``str`` or UTF-8 ``bytes``, as ``orjson.dumps`` does).

Limits
------
``max_frame_size`` (default 64 KiB) counts the bytes of a line without its terminator;
the decoder enforces it exactly as :class:`~wsframed.codecs.LinesCodec` does, before
an overlong line is buffered in full, so a peer cannot exhaust memory by never ending
a line. The line limit also caps how deeply a value can nest; a value nested too
deeply for the parser (``RecursionError``) is reported as a decode error.

Errors
------
* A line that is not valid UTF-8 or not valid JSON raises
  :class:`~wsframed.DecodeError` (the parser's exception is the ``__cause__``,
  ``offset`` is where the line starts). JSON Lines resynchronises at every newline:
  the next iteration continues with the following line.
* An overlong line raises :class:`~wsframed.FrameTooLarge` and fails the decoder for
  good: every later call raises the same error.
* End of stream after an unterminated line: :class:`~wsframed.IncompleteFrame`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import DecodeError, FrameTooLarge
from .base import Buffer
from .lines import LinesCodec, LinesDecoder

__all__ = ["JsonLinesCodec", "JsonLinesDecoder"]

_DEFAULT_MAX_FRAME_SIZE = 64 * 1024
_NL = b"\n"

_default_dumps: Callable[[Any], str] = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False
).encode
_default_loads: Callable[[str], Any] = json.JSONDecoder().decode


class JsonLinesCodec:
    """JSON values, one per line; see the module documentation.

    Args:
        max_frame_size: The longest line in bytes, terminator excluded, on encode and
            on decode.
        dumps: Serialises a value to a JSON text, ``str`` or UTF-8 ``bytes``, without
            raw newlines. Default: compact :func:`json.dumps`.
        loads: Parses one line (``str``). Default: :func:`json.loads`. It should raise
            :class:`ValueError` (as ``json.JSONDecodeError`` is) on invalid input.

    The codec is immutable and may serve any number of connections.
    """

    __slots__ = ("_dumps", "_lines", "_loads")

    def __init__(
        self,
        max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE,
        *,
        dumps: Callable[[Any], str | bytes] | None = None,
        loads: Callable[[str], Any] | None = None,
    ) -> None:
        self._lines = LinesCodec("utf-8", max_frame_size)
        self._dumps = _default_dumps if dumps is None else dumps
        self._loads = _default_loads if loads is None else loads

    @property
    def max_frame_size(self) -> int:
        """The longest line in bytes, without its terminator (read-only)."""
        return self._lines.max_frame_size

    def __repr__(self) -> str:
        return f"JsonLinesCodec(max_frame_size={self.max_frame_size})"

    def encode(self, item: Any) -> bytes:
        r"""Return ``item`` as one line of JSON, followed by ``\n``.

        Raises:
            FrameTooLarge: The JSON text exceeds ``max_frame_size`` (``local=True``).
            TypeError: ``item`` is not JSON-serialisable.
            ValueError: ``dumps`` failed (for example a circular reference) or produced
                a raw newline.
        """
        text = self._dumps(item)
        if isinstance(text, str):
            return self._lines.encode(text)
        data = bytes(text)
        limit = self._lines.max_frame_size
        if len(data) > limit:
            raise FrameTooLarge(len(data), limit, local=True)
        if 10 in data:  # b"\n"
            raise ValueError("the output of dumps() must not contain '\\n'")
        return data + _NL

    def decoder(self) -> JsonLinesDecoder:
        """Return a fresh :class:`JsonLinesDecoder`."""
        return JsonLinesDecoder(self._lines.decoder(), self._loads)


class JsonLinesDecoder:
    """Decoding state of a :class:`JsonLinesCodec`: a :class:`LinesDecoder` plus a parser.

    Args:
        lines: The UTF-8 line decoder to read from (default: a fresh one with a 64 KiB
            limit); :meth:`JsonLinesCodec.decoder` passes one with the codec's limit.
        loads: Parses one line (default: :func:`json.loads`).

    Blank and whitespace-only lines are skipped.
    """

    __slots__ = ("_lines", "_loads")

    def __init__(
        self,
        lines: LinesDecoder[str] | None = None,
        loads: Callable[[str], Any] | None = None,
    ) -> None:
        self._lines = LinesDecoder("utf-8", _DEFAULT_MAX_FRAME_SIZE) if lines is None else lines
        self._loads = _default_loads if loads is None else loads

    def feed(self, data: Buffer) -> None:
        """Append received bytes; raises the stored error of a failed decoder."""
        self._lines.feed(data)

    def __iter__(self) -> Iterator[Any]:
        """Yield every complete value buffered so far, skipping blank lines.

        Raises:
            DecodeError: A line is not valid UTF-8 or JSON (the next pass resumes
                after it).
            FrameTooLarge: A line exceeds ``max_frame_size``.
        """
        lines = self._lines
        loads = self._loads
        for line in lines:
            if not line:
                continue
            try:
                value = loads(line)
            except (ValueError, RecursionError) as exc:
                if line.isspace():
                    continue
                offset = lines._line_offset(len(line.encode()))
                raise DecodeError(f"line is not valid JSON: {exc}", offset=offset) from exc
            yield value

    def feed_eof(self) -> None:
        """Mark the end of the stream; ``IncompleteFrame`` after an unterminated line."""
        self._lines.feed_eof()
