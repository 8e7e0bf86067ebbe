r"""JSON Lines: one JSON value per ``\n``-terminated line (https://jsonlines.org).

Wire format
-----------
Each frame is one JSON text in UTF-8 followed by ``\n``; the line framing is
[`LinesCodec`][wsframed.codecs.LinesCodec]'s, so ``\r\n`` terminators are accepted too::

    +-----------------------------+----+
    |  {"id":1,"tags":["é"]}      | \n |
    +-----------------------------+----+

    encode({"id": 1})   ->  b'{"id":1}\n'
    b'1\n\n"two"\r\n'   ->  1, "two"        (blank lines are skipped)

Values are encoded compactly (``separators=(",", ":")``, ``ensure_ascii=False``);
``json.dumps`` escapes every control character, so a value never contains a raw
newline. Pass ``dumps=`` / ``loads=`` to use another JSON library (``dumps`` may
return ``str`` or UTF-8 ``bytes``, as ``orjson.dumps`` does).

Fast parser. When msgspec is installed (``pip install 'wsframed[msgspec]'``) the
default parser first tries each line with msgspec's JSON decoder, 4 to 5 times
faster than ``json``, and hands every line msgspec refuses to ``json`` (NaN and
Infinity, lone surrogate escapes, numbers out of msgspec's range, errors), so values
and errors are exactly ``json.loads``'s (a line with more than 256 ``[`` and ``{``,
which may nest deeply, goes to ``json`` alone: failing on deep nesting costs msgspec
as much as ``json``, and the line would be parsed twice). ``parser="json"`` turns it off,
``parser="msgspec"`` requires it. orjson is not used: it decodes integers of 20 or
more digits as floats (``json`` keeps them exact).

Fast encoder. The bytes are ``json.dumps``'s whatever is installed. With msgspec (and
the default ``dumps``, unless ``parser="json"``) msgspec's encoder writes each value
and its text is taken only when msgspec's decoder reads it back equal to the value,
with every float literal as ``json`` writes it (msgspec writes ``1e16``, ``0.00001``
and ``null`` where ``json`` writes ``1e+16``, ``1e-05`` and ``NaN``): 1.5 to 2 times
faster than ``json`` per value, 3 times in slices (below). Anything else (NaN, tuples,
keys that are not strings, floats written differently, values ``json`` refuses) is
encoded by ``json``, whose text or error stands. One known difference: a ``dict``
subclass whose ``items()`` differs from its contents is written by its contents
(``json`` calls ``items()``). [`Framed.send_all`][wsframed.Framed.send_all] of a list
encodes slices of it at once (``encode_many``): msgspec's ``encode_lines``, or
without it one call of ``json``'s encoder per slice (about 1.4 times faster than one
call per item).

Limits
------
``max_frame_size`` (default 64 KiB) counts the bytes of a line without its terminator;
the decoder enforces it exactly as [`LinesCodec`][wsframed.codecs.LinesCodec] does, before
an overlong line is buffered in full, so a peer cannot exhaust memory by never ending
a line. The line limit also caps how deeply a value can nest; a value nested too
deeply for the parser (``RecursionError``) and an integer of more digits than
Python converts (4300 by default, ``sys.set_int_max_str_digits``) are reported as
decode errors. On Python 3.11, where both parsers count each level against the
recursion limit, a line nested deeper than that limit (brackets outside strings) is
refused from a count of its brackets, without being parsed: the same error, for a
fraction of the cost. The default parser's cost is linear in the line for any input
(escapes, long numbers, duplicate keys, whitespace); a line it refuses is parsed once.

Errors
------
* A line that is not valid UTF-8 or not valid JSON raises
  [`DecodeError`][wsframed.errors.DecodeError] (the parser's exception is the ``__cause__``,
  ``offset`` is where the line starts; the parser's message is cut to 200
  characters). JSON Lines resynchronises at every newline: the next iteration
  continues with the following line. Skipping any number of bad lines costs time
  linear in the bytes received, offsets included.
* An overlong line raises [`FrameTooLarge`][wsframed.errors.FrameTooLarge] and fails the decoder
  for
  good: every later call raises the same error.
* End of stream after an unterminated line: [`IncompleteFrame`][wsframed.errors.IncompleteFrame].
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate
from typing import Any, Literal

from ..errors import DecodeError, FrameTooLarge, WsFramedError
from .base import Buffer
from .lines import LinesCodec, LinesDecoder

__all__ = ["JsonLinesCodec", "JsonLinesDecoder", "Parser"]

Parser = Literal["auto", "json", "msgspec"]
"""The default parser's engine: msgspec when installed (``"auto"``), or one named."""

try:  # the fast parser (see "Fast parser" above)
    import msgspec as _msgspec
except ImportError:  # pragma: no cover - exercised without the extra
    _msgspec_loads: Callable[[str], Any] | None = None
else:
    _msgspec_loads = _msgspec.json.Decoder().decode

_DEFAULT_MAX_FRAME_SIZE = 64 * 1024
_NL = b"\n"
_JSON_SPACE = " \t\r\n"  # what JSON allows around a value
_REASON_MAX = 200  # characters of the parser's message kept in a DecodeError
# Lines with more "[" and "{" than this skip the fast parser (see JsonLinesDecoder).
_FAST_BRACKETS = 256

# Nesting past the parser's reach (see nested_past_parser). Python 3.11's json and
# msgspec count each level of a value against the recursion limit; from 3.12 C code
# has a limit of its own that Python does not expose, so the check is for 3.11 only.
_DEPTH_CHECKED = sys.version_info < (3, 12)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = [0] * 256  # what each byte of a bracket-only text does to the depth
_DEPTH_STEP[ord("[")] = _DEPTH_STEP[ord("{")] = 1
_DEPTH_STEP[ord("]")] = _DEPTH_STEP[ord("}")] = -1
_DEPTH_RUN = 256  # brackets looked at per step of nested_past_parser


def nested_past_parser(line: bytes, brackets: int) -> RecursionError | None:
    """The ``RecursionError`` that parsing ``line`` would end in, or None if it need not.

    ``brackets`` counts the ``[`` and ``{`` bytes in the line. A parser that fails on
    deep nesting builds (and frees) every level first, about 70 ns each: a line of
    ``[`` past the recursion limit cost 60 to 150 µs a KiB to refuse. When the
    nesting outside strings exceeds the limit, which every level counts against, the
    parse must end in ``RecursionError``: the line is refused from the count, made
    in C (``split``, ``translate``, ``count``; brackets one by one only in a run that
    may cross the limit), without parsing it. Only a line that is both that deep and
    malformed before its deep part is refused for the depth where the parser would
    have named the earlier fault.
    """
    limit = sys.getrecursionlimit()
    if not _DEPTH_CHECKED or brackets <= limit:
        return None
    # Outside strings: drop escaped backslashes and quotes, then every other piece
    # between quotes is a string (an unterminated one last), then all but brackets.
    pieces = line.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')
    steps = b"".join(pieces[::2]).translate(None, _NOT_BRACKETS)
    del pieces
    # The depth, a run of brackets at a time: a run cannot go deeper than where it
    # starts plus its openers; only a run that might is walked one bracket at a time.
    depth = 0
    for start in range(0, len(steps), _DEPTH_RUN):
        run = steps[start : start + _DEPTH_RUN]
        opened = run.count(b"[") + run.count(b"{")
        if depth + opened > limit and (
            depth + 2 * opened - len(run) > limit
            or max(accumulate(map(_DEPTH_STEP.__getitem__, run), initial=depth)) > limit
        ):
            break
        depth += 2 * opened - len(run)
    else:
        return None
    return RecursionError(
        f"nested deeper than the recursion limit ({limit}); refused before parsing"
    )


_default_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_default_decoder = json.JSONDecoder()
_default_dumps: Callable[[Any], str] = _default_encoder.encode
_default_loads: Callable[[str], Any] = _default_decoder.decode

# Fast paths for the default dumps and loads, each giving exactly what they give.
#
# Encoding: JSONEncoder.encode() builds a C encoder (and its circular-reference
# bookkeeping) for every call; the codec keeps one, without that bookkeeping, and
# falls back to encode() when it hits RecursionError, which a circular reference or
# too deep a nesting causes, so encode() raises what it raises ("Circular reference
# detected" for a cycle). The encoder holds no state between calls.
#
# Decoding: JSONDecoder.decode() skips whitespace with a regex on both sides of the
# value; the decoder calls raw_decode() and takes its result when the value spans the
# whole line, the usual case, and calls decode() for anything else (whitespace, extra
# data, errors) so that the outcome and the error message are decode()'s.
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_fast_encoder: Callable[[Any, int], list[str]] | None = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        None,  # no circular-reference markers: RecursionError falls back, see above
        _default_encoder.default,
        json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # indent
        _default_encoder.key_separator,
        _default_encoder.item_separator,
        _default_encoder.sort_keys,
        _default_encoder.skipkeys,
        _default_encoder.allow_nan,
    )
)

# encode_many(): the items of a slice are encoded in one call of the fast encoder, as
# one list with a marker string between items: [a,"\u0000",b,"\u0000",c]. A JSON
# text holds the marker's escape only where a string has NUL (or a backslash then
# "u0000"); when it occurs exactly between the items, the lines are what is between
# the markers. Anything else (a count that differs, an error) encodes item by item.
_MARK = "\x00"
_MARK_TEXT = "\\u0000"  # the marker's escape in a JSON text
_MARK_SEP = ',"\\u0000",'  # the marker between two items


def _json_float(text: str) -> float:
    """The check's ``float_hook``: a float literal as ``json`` writes it, or an error.

    msgspec and ``json`` write the same shortest digits; they differ only where
    either uses an exponent (``1e16`` / ``1e+16``, ``1.5e-7`` / ``1.5e-07``) and
    between 1e-5 and 1e-4 (``0.00001`` / ``1e-05``). A literal without ``e`` and
    without ``0.0000`` is written the same by both.
    """
    if "e" in text or "0.0000" in text:
        raise ValueError(text)
    return float(text)


class _CheckedEncoder:
    """msgspec's JSON encoder, whose output is taken only where it is ``json``'s.

    The text msgspec writes for a value is read back by msgspec's decoder (each float
    literal through ``_json_float``) and must equal the value. ``json`` and msgspec
    write the same text for the builtin types (``dict`` with ``str`` keys, ``list``,
    ``str``, ``int``, ``float``, ``bool``, ``None``); what they write differently
    does not read back equal: NaN and infinities (msgspec writes ``null``), tuples
    (read back as lists), keys that are not strings, bytes, sets, dates, UUIDs,
    Structs, dataclasses... (which ``json`` refuses); what msgspec refuses (lone
    surrogates, ``str`` and ``int`` subclasses) raises. All of those go to ``json``,
    whose value or error stands. The exception: a ``dict`` subclass whose ``items()``
    differs from its contents (``json`` writes ``items()``, msgspec the contents).
    """

    __slots__ = ("_check", "_check_lines", "_encode", "_encode_lines")

    def __init__(self) -> None:
        encoder = _msgspec.json.Encoder()
        decoder = _msgspec.json.Decoder(float_hook=_json_float)
        self._encode: Callable[[Any], bytes] = encoder.encode
        self._encode_lines: Callable[[Any], bytes] = encoder.encode_lines
        self._check: Callable[[bytes], Any] = decoder.decode
        self._check_lines: Callable[[bytes], list[Any]] = decoder.decode_lines

    def encode(self, item: Any) -> bytes | None:
        """``item``'s JSON text as ``json`` writes it, or ``None``: ``json`` decides."""
        try:
            data = self._encode(item)
            if self._check(data) == item:
                return data
        except Exception:  # json raises the item's own error, if any
            pass
        return None

    def encode_lines(self, items: Sequence[Any]) -> bytes | None:
        """The lines of ``items`` as ``json`` writes them, or ``None``: ``json`` decides."""
        try:
            data = self._encode_lines(items)
            if self._check_lines(data) == (items if type(items) is list else list(items)):
                return data
        except Exception:  # json raises the item's own error, if any
            pass
        return None


_checked_encoder = None if _msgspec_loads is None else _CheckedEncoder()


class JsonLinesCodec:
    """JSON values, one per line; see the module documentation.

    Args:
        max_frame_size: The longest line in bytes, terminator excluded, on encode and
            on decode.
        dumps: Serialises a value to a JSON text, ``str`` or UTF-8 ``bytes``, without
            raw newlines. Default: compact ``json.dumps``.
        loads: Parses one line (``str``). Default: ``json.loads``. It should raise
            ``ValueError`` (as ``json.JSONDecodeError`` is) on invalid input.
        parser: For the default ``loads``: ``"auto"`` tries msgspec first when it is
            installed, ``"msgspec"`` requires it (``ImportError`` otherwise),
            ``"json"`` uses ``json`` alone. Values and errors are ``json.loads``'s
            either way; see the module's "Fast parser".

    The codec is immutable and may serve any number of connections.
    """

    __slots__ = ("_checked", "_dumps", "_fast", "_lines", "_loads", "_parser")

    def __init__(
        self,
        max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE,
        *,
        dumps: Callable[[Any], str | bytes] | None = None,
        loads: Callable[[str], Any] | None = None,
        parser: Parser = "auto",
    ) -> None:
        if parser not in ("auto", "json", "msgspec"):
            raise ValueError(f"parser must be 'auto', 'json' or 'msgspec', not {parser!r}")
        if parser == "msgspec" and _msgspec_loads is None:
            raise ImportError("parser='msgspec' needs msgspec: pip install 'wsframed[msgspec]'")
        self._lines = LinesCodec("utf-8", max_frame_size)
        self._dumps = _default_dumps if dumps is None else dumps
        self._loads = _default_loads if loads is None else loads
        self._fast = _fast_encoder if dumps is None else None
        self._checked = _checked_encoder if dumps is None and parser != "json" else None
        self._parser = parser

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
        checked = self._checked
        if checked is not None and (data := checked.encode(item)) is not None:
            limit = self._lines.max_frame_size
            if len(data) > limit:
                raise FrameTooLarge(len(data), limit, local=True)
            return data + _NL  # json's text: no newline, no final "\r" (see below)
        fast = self._fast
        if fast is not None:
            try:
                chunks = fast(item, 0)
            except RecursionError:
                chunks = [_default_dumps(item)]  # raises what json.dumps raises
            data = "".join(chunks).encode()
            limit = self._lines.max_frame_size
            if len(data) > limit:
                raise FrameTooLarge(len(data), limit, local=True)
            # The default encoder escapes every control character and adds no
            # whitespace: the text holds no newline and cannot end with "\r".
            return data + _NL
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

    def encode_many(self, items: Sequence[Any]) -> bytes:
        r"""Return the lines of ``items``, one after the other: ``b"".join(map(encode, items))``.

        With the default ``dumps``, the items are encoded in one call of ``json``'s
        encoder (the same bytes, without a call and a buffer per item). When that
        fails, or a line exceeds ``max_frame_size``, the items are encoded one by one,
        so what is raised (for the first item [`encode`][wsframed.codecs.JsonLinesCodec.encode]
        refuses, nothing returned) is exactly what ``encode`` raises.
        """
        count = len(items)
        limit = self.max_frame_size
        checked = self._checked
        if checked is not None and (data := checked.encode_lines(items)) is not None:
            if len(data) - count <= limit or max(map(len, data.split(_NL))) <= limit:
                return data
            return b"".join([self.encode(item) for item in items])  # raises FrameTooLarge
        fast = self._fast
        if fast is not None and count > 1:
            marked: list[Any] = [_MARK] * (2 * count - 1)
            marked[::2] = items
            try:
                text = "".join(fast(marked, 0))
                data = None
                if text.count(_MARK_TEXT) == count - 1:  # markers only: see _MARK
                    data = (text[1:-1].replace(_MARK_SEP, "\n") + "\n").encode()
            except Exception:  # encode() below raises the item's own error
                data = None
            if data is not None and (
                len(data) - count <= limit or max(map(len, data.split(_NL))) <= limit
            ):
                return data
        encode = self.encode
        return b"".join([encode(item) for item in items])

    def decoder(self) -> JsonLinesDecoder:
        """Return a fresh ``JsonLinesDecoder``."""
        fast = None if self._parser == "json" else _msgspec_loads
        return JsonLinesDecoder(self._lines.decoder(), self._loads, fast_loads=fast)


class JsonLinesDecoder:
    """Decoding state of a [`JsonLinesCodec`][wsframed.codecs.JsonLinesCodec]: a ``LinesDecoder``
    plus a parser.

    Args:
        lines: The UTF-8 line decoder to read from (default: a fresh one with a 64 KiB
            limit); [`JsonLinesCodec.decoder`][wsframed.codecs.JsonLinesCodec.decoder] passes one
            with the codec's limit.
        loads: Parses one line (default: ``json.loads``).
        fast_loads: With the default ``loads``, a parser tried first on each line
            whose result is taken when it succeeds (msgspec's by default, when
            installed; ``None`` for none); it must give what ``json.loads`` gives
            for every line it accepts.

    Blank and whitespace-only lines are skipped.
    """

    __slots__ = ("_fast_loads", "_lines", "_loads", "_raw_decode")

    def __init__(
        self,
        lines: LinesDecoder[str] | None = None,
        loads: Callable[[str], Any] | None = None,
        *,
        fast_loads: Callable[[str], Any] | None = _msgspec_loads,
    ) -> None:
        self._lines = LinesDecoder("utf-8", _DEFAULT_MAX_FRAME_SIZE) if lines is None else lines
        self._loads = _default_loads if loads is None else loads
        default = self._loads is _default_loads
        self._raw_decode: Callable[[str], tuple[Any, int]] | None = (
            _default_decoder.raw_decode if default else None
        )
        self._fast_loads = fast_loads if default else None

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
        raw_decode = self._raw_decode
        fast_loads = self._fast_loads
        error: ValueError | RecursionError
        for line in lines:
            if not line:
                continue
            # A line with many brackets may nest deeply, where msgspec's failure costs
            # as much as json's and json would parse it again: json alone takes it,
            # unless it nests past the parser's reach (refused without parsing).
            if (
                len(line) > _FAST_BRACKETS
                and (brackets := line.count("[") + line.count("{")) > _FAST_BRACKETS
            ):
                if raw_decode is not None and (
                    deep := nested_past_parser(line.encode(), brackets)
                ):
                    skipped = self._skipped(line, deep)
                    raise skipped from skipped.__cause__
            elif fast_loads is not None:
                try:
                    value = fast_loads(line)
                except (ValueError, RecursionError):
                    pass  # json decides below, with its own value or error
                else:
                    yield value
                    continue
            if raw_decode is not None:  # the default loads: see _fast_encoder's notes
                try:
                    value, end = raw_decode(line)
                except (ValueError, RecursionError) as exc:
                    if line[0] not in _JSON_SPACE:
                        # decode() would fail the same way: do not parse twice.
                        if line.isspace():  # other Unicode spaces only: skipped
                            continue
                        error = exc
                        skipped = self._skipped(line, error)
                        raise skipped from skipped.__cause__
                    if line.isspace():
                        continue
                    # decode() below skips the whitespace first: its outcome stands.
                else:
                    if end == len(line):
                        yield value
                        continue
            try:
                value = loads(line)
            except (ValueError, RecursionError) as exc:
                if line.isspace():
                    continue
                error = exc
                skipped = self._skipped(line, error)
                raise skipped from skipped.__cause__
            yield value

    def _skipped(self, line: str, exc: ValueError | RecursionError) -> WsFramedError:
        """The error to raise for ``line``: its own, or "too many bad lines"."""
        error = self._error(line, exc)
        error.__cause__ = exc
        return self._lines._skipped(error)

    def _error(self, line: str, exc: ValueError | RecursionError) -> DecodeError:
        """The error for ``line``, the line just yielded, that the parser refused."""
        offset = self._lines._line_offset(len(line.encode()))
        if isinstance(exc, RecursionError):
            reason = "nested too deeply for the parser"
        else:  # a custom parser's message may quote the line: keep it short
            reason = str(exc)
            if len(reason) > _REASON_MAX:
                reason = reason[:_REASON_MAX] + "..."
        return DecodeError(f"line is not valid JSON: {reason}", offset=offset)

    def feed_eof(self) -> None:
        """Mark the end of the stream; ``IncompleteFrame`` after an unterminated line."""
        self._lines.feed_eof()
