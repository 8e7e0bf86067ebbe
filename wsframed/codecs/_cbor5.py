"""cbor2 5's pure-Python decoder with cbor2 6's decoding options: Pyodide's cbor2.

cbor2 6 (a Rust core) has no wheel for Pyodide, so there ``CborCodec`` runs on cbor2
5's pure-Python wheel, whose decoder predates the options the codec relies on.
``loads`` gives it cbor2 6's, so that the codec decodes the same items the same way
on both:

- ``semantic_decoders`` (tag number to ``decoder(value, immutable)``), tried before
  cbor2 5's own table;
- ``tag_hook(tag, immutable)`` and ``object_hook(obj, immutable)`` (cbor2 5 passes the
  decoder instead of ``immutable``); the content of a tag without a decoder is decoded
  immutable (a tuple, not a list), as cbor2 6 does;
- an exception from a hook or a semantic decoder becomes a ``CBORDecodeError`` naming
  the tag ("error decoding semantic tag N") or "error decoding map", with the
  exception as its ``__cause__``;
- ``allow_indefinite=False``; a two-byte simple value below 32 (``f8 00`` to
  ``f8 1f``) is malformed (RFC 8949 section 3.3); ``str_errors`` of another type
  than ``str`` is a ``TypeError``.

Encoder options of the wrong type raise cbor2 6's ``TypeError``
(``check_encode_options``), and ``CborCodec.encode`` words cbor2 5's errors as cbor2 6
does.

What stays different on cbor2 5:

- ``allow_duplicate_keys=False``, ``strict_hashable_types=True`` and ``encoders`` are
  refused with a ``TypeError``: cbor2 5 has no such options, and checking keys after
  it built the dict would come too late;
- nesting is also bounded by Python's recursion limit: with the default limit of 1000,
  decoding stops near 330 levels (deeper items raise ``DecodeError`` whose cause is a
  ``RecursionError``; ``max_depth`` is 256 by default) and encoding near 170
  (``ValueError``);
- the repr of a simple value names its field (``CBORSimpleValue(value=16)``);
- time: every item takes the scanner and pure-Python decoding, about 7 times cbor2
  6's per MiB of small maps (9 times to encode).

cbor2 5 with its C extension cannot be given these options: the codec refuses to run
on it (pyproject.toml asks for cbor2 6.2 or later outside Pyodide).
"""

from __future__ import annotations

import datetime
import functools
import importlib
from collections.abc import Callable
from io import BytesIO
from typing import Any

import cbor2

__all__ = ["AVAILABLE", "check_encode_options", "loads", "pure_decoder_class", "version"]

SemanticDecoder = Callable[[Any, bool], Any]


def pure_decoder_class() -> Any:
    """cbor2 5's pure-Python ``CBORDecoder`` class if it is the one in use, else None."""
    try:
        module: Any = importlib.import_module("cbor2._decoder")
    except ImportError:  # cbor2 6
        return None
    if cbor2.CBORDecoder is not module.CBORDecoder:  # cbor2 5 with its C extension
        return None
    return module.CBORDecoder


def version() -> str:
    """The installed cbor2's version, for error messages."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("cbor2")
    except PackageNotFoundError:  # pragma: no cover - cbor2 imported but not installed
        return "(version unknown)"


AVAILABLE = pure_decoder_class() is not None
"""Whether cbor2 5's pure-Python decoder is installed (Pyodide's cbor2)."""

_INDEFINITE = frozenset({0x5F, 0x7F, 0x9F, 0xBF})
_SIMPLE_TWO_BYTES = 0xF8


_FLAGS = (
    "canonical",
    "datetime_as_timestamp",
    "date_as_datetime",
    "indefinite_containers",
    "string_referencing",
    "value_sharing",
)


def check_encode_options(options: dict[str, Any]) -> None:
    """Raise the ``TypeError`` cbor2 6's encoder raises for an option of the wrong type
    (cbor2 5 takes any truthy value for a flag, and raises ``ValueError`` for the rest)."""
    for name in _FLAGS:
        value = options.get(name, False)
        if not isinstance(value, bool):
            raise TypeError(f"'{type(value).__name__}' object is not an instance of 'bool'")
    timezone = options.get("timezone")
    if timezone is not None and not isinstance(timezone, datetime.tzinfo):
        raise TypeError("timezone must be a tzinfo object")
    default = options.get("default")
    if default is not None and not callable(default):
        raise TypeError("default must be callable")
    if "encoders" in options:
        raise _refused("encoders")


def _refused(name: str) -> TypeError:
    return TypeError(
        f"CborCodec({name}=...) needs cbor2 6: cbor2 {version()} (Pyodide's) has no such option"
    )


@functools.cache
def _decoder_class() -> Any:
    base: Any = pure_decoder_class()
    builtin: dict[int, Any] = importlib.import_module("cbor2._decoder").semantic_decoders
    error = cbor2.CBORDecodeError  # what cbor2 6 raises

    class Decoder(base):  # type: ignore[misc]
        """cbor2 5's pure-Python decoder taking cbor2 6's options (see the module)."""

        def __init__(
            self,
            fp: BytesIO,
            *,
            tag_hook: Callable[[Any, bool], Any] | None = None,
            object_hook: Callable[[Any, bool], Any] | None = None,
            semantic_decoders: dict[int, SemanticDecoder] | None = None,
            str_errors: str = "strict",
            max_depth: int = 400,
            allow_indefinite: bool = True,
            allow_duplicate_keys: bool = True,
            strict_hashable_types: bool = False,
        ) -> None:
            if not isinstance(str_errors, str):
                kind = type(str_errors).__name__
                raise TypeError(f"'{kind}' object is not an instance of 'str'")
            if not allow_duplicate_keys:
                raise _refused("allow_duplicate_keys")
            if strict_hashable_types:
                raise _refused("strict_hashable_types")
            for name, hook in (("tag_hook", tag_hook), ("object_hook", object_hook)):
                if hook is not None and not callable(hook):
                    raise TypeError(f"{name} must be callable or None")
            super().__init__(
                fp,
                object_hook=None if object_hook is None else _map_hook(object_hook),
                str_errors=str_errors,
                max_depth=max_depth,
            )
            self.semantic = semantic_decoders or {}
            self.tags = tag_hook
            self.allow_indefinite = allow_indefinite

        def decode(self, immutable: bool = False, unshared: bool = False) -> Any:
            # cbor2 5 dispatches on module-level tables; every item (also inside
            # containers) comes through here: look at the initial byte first.
            fp = self.fp
            start = fp.tell()
            initial = fp.read(2)
            if initial:
                byte = initial[0]
                if byte >> 5 == 6:  # a tag
                    fp.seek(start + 1)
                    number = self._decode_length(byte & 31)
                    if number in self.semantic:
                        value = self.decode(immutable=immutable, unshared=True)
                        try:
                            return self.semantic[number](value, immutable or self.immutable)
                        except Exception as exc:
                            raise error(f"error decoding semantic tag {number}") from exc
                    if number not in builtin:
                        return self._unknown_tag(number, unshared)
                elif byte in _INDEFINITE and not self.allow_indefinite:
                    raise error("encountered indefinite length but it has been disabled")
                elif byte == _SIMPLE_TWO_BYTES and len(initial) == 2 and initial[1] < 32:
                    raise error("invalid two-byte sequence for simple value")
            fp.seek(start)
            return super().decode(immutable=immutable, unshared=unshared)

        def _unknown_tag(self, number: int, unshared: bool) -> Any:
            """A tag cbor2 has no decoder for: a CBORTag of its immutable content."""
            tag = cbor2.CBORTag(number, None)
            if not unshared:
                self.set_shareable(tag)
            tag.value = self.decode(immutable=True, unshared=True)
            result: Any = tag
            hook = self.tags
            if hook is not None:
                try:
                    result = hook(tag, self.immutable)
                except Exception as exc:
                    raise error(f"error decoding semantic tag {number}") from exc
            return result if unshared else self.set_shareable(result)

    return Decoder


def _map_hook(hook: Callable[[Any, bool], Any]) -> Callable[[Any, Any], Any]:
    """cbor2 6's ``object_hook(obj, immutable)`` as cbor2 5 calls it."""

    def object_hook(decoder: Any, obj: Any) -> Any:
        try:
            return hook(obj, decoder.immutable)
        except Exception as exc:
            raise cbor2.CBORDecodeError("error decoding map") from exc

    return object_hook


def loads(data: bytes | bytearray, *, immutable: bool = False, **options: Any) -> Any:
    """``cbor2.loads`` with cbor2 6's decoding options, over cbor2 5's decoder."""
    return _decoder_class()(BytesIO(data), **options).decode(immutable=immutable)
