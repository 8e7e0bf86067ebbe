"""Codec negotiation through the WebSocket subprotocol (RFC 6455 sections 1.9 and 4).

A client that negotiates offers its codec's name in ``Sec-WebSocket-Protocol``; a
server that negotiates knows one or more codecs, selects the first name the client
offers that it knows, and hands the handler a [`Framed`][wsframed.Framed] with that
codec. So a ``LinesCodec`` client and a ``MsgpackCodec`` server fail at the handshake,
each with an error naming both sides' codecs, instead of exchanging garbage.

Names: ``wsframed.bytes``, ``wsframed.lines``, ``wsframed.jsonl``, ``wsframed.msgpack``,
``wsframed.cbor``, ``wsframed.length`` (the default 4-byte big-endian header). Options
that change the bytes on the wire are part of the name: ``wsframed.length.2le``
(``length_size=2, byteorder="little"``), ``wsframed.length.4be.incl``
(``length_includes_header=True``), ``wsframed.lines.latin-1`` (a ``LinesCodec`` whose
encoding is not UTF-8). Limits such as ``max_frame_size`` are not. A name without a
version suffix is version 1: an incompatible change of a format would be announced
as ``wsframed.msgpack.v2``, and both can be offered during a transition. A codec of
your own takes part by having a ``subprotocol`` attribute (a string; use a name of
your own, such as ``"example.com.netstring"``, as RFC 6455 section 1.9 suggests).

Peers that do not negotiate (decided for backward compatibility):

- a client that offers no ``wsframed.*`` name (none at all, or only other
  subprotocols) is served with the server's first codec, and no subprotocol is
  selected: exactly what a server that does not negotiate does;
- a server that selects no subprotocol is taken to speak the client's codec, as
  before negotiation existed (it cannot be checked).

Only a peer that names wsframed codecs, none of them the other side's, is refused:
the server answers HTTP 400 with a ``Wsframed-Codecs`` header listing its own names and
logs one WARNING on ``wsframed.server``; the client raises
[`CodecMismatch`][wsframed.negotiation.CodecMismatch].
"""

from __future__ import annotations

import codecs as _text_codecs
import logging
import sys
from collections.abc import Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # websockets is imported when a connection is made, not with wsframed
    from websockets.asyncio.server import ServerConnection
    from websockets.datastructures import Headers
    from websockets.http11 import Request, Response

from .codecs import (
    BytesCodec,
    CborCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)
from .codecs.base import Codec
from .errors import WsFramedError

__all__ = [
    "CODECS_HEADER",
    "PREFIX",
    "CodecMismatch",
    "Negotiator",
    "client_error",
    "offer",
    "raise_mismatch",
    "server_negotiator",
    "subprotocol_of",
]

PREFIX = "wsframed."
"""Every name wsframed gives a codec starts with this."""

CODECS_HEADER = "Wsframed-Codecs"
"""The response header of a refusal: the server's names, comma-separated."""

# What a refusal quotes of the other side's names: the peer chose them, so the
# message and the log line stay short whatever it sent.
_QUOTED_NAMES = 8
_QUOTED_NAME_SIZE = 64

logger = logging.getLogger("wsframed.server")


class CodecMismatch(WsFramedError, ConnectionError):
    """The two ends of a connection speak different codecs: refused at the handshake.

    ``offered`` are the client's names, ``available`` the server's (as far as the
    side raising it knows them; each quoted at most 8 names of 64 characters).
    """

    def __init__(self, message: str, offered: Sequence[str], available: Sequence[str]):
        super().__init__(message)
        self.offered = tuple(offered)
        self.available = tuple(available)


def _quoted(names: Sequence[str]) -> str:
    shown = [n if len(n) <= _QUOTED_NAME_SIZE else n[:_QUOTED_NAME_SIZE] + "..." for n in names]
    if len(shown) > _QUOTED_NAMES:
        shown = [*shown[:_QUOTED_NAMES], f"... ({len(names) - _QUOTED_NAMES} more)"]
    return ", ".join(shown) or "none"


def subprotocol_of(codec: object) -> str:
    """The subprotocol name of ``codec`` (see the module docstring).

    Raises ``TypeError`` for a codec that has none: a codec class of your own needs a
    ``subprotocol`` attribute to be negotiated (a subclass of a built-in codec too,
    since it may change the format).
    """
    own = getattr(codec, "subprotocol", None)
    if isinstance(own, str) and own:
        return own
    kind = type(codec)
    if kind is BytesCodec:
        return PREFIX + "bytes"
    if kind is MsgpackCodec:
        return PREFIX + "msgpack"
    if kind is CborCodec:
        return PREFIX + "cbor"
    if kind is JsonLinesCodec:
        return PREFIX + "jsonl"
    if kind is LinesCodec:
        assert isinstance(codec, LinesCodec)
        encoding = codec.encoding
        if encoding is None or _text_codecs.lookup(encoding).name == "utf-8":
            return PREFIX + "lines"
        return f"{PREFIX}lines.{_text_codecs.lookup(encoding).name}"
    if kind is LengthPrefixedCodec:
        assert isinstance(codec, LengthPrefixedCodec)
        shape = f"{codec.length_size}{'be' if codec.byteorder == 'big' else 'le'}"
        if codec.length_includes_header:
            return f"{PREFIX}length.{shape}.incl"
        return PREFIX + "length" if shape == "4be" else f"{PREFIX}length.{shape}"
    raise TypeError(
        f"{kind.__qualname__} has no subprotocol name to negotiate with: give the codec "
        "a 'subprotocol' attribute (a name such as 'example.com.mycodec')"
    )


def _offers(headers: Headers) -> list[str] | None:
    """The client's offered subprotocols, in its order; None if the header is malformed."""
    from websockets.exceptions import InvalidHeader
    from websockets.headers import parse_subprotocol

    try:
        return [
            name
            for value in headers.get_all("Sec-WebSocket-Protocol")
            for name in parse_subprotocol(value)
        ]
    except InvalidHeader:
        return None  # websockets refuses the handshake for it


class Negotiator:
    """The server side: the codecs by name, the choice, and the refusal."""

    def __init__(self, codecs: Sequence[Codec[Any]]):
        self.codecs: dict[str, Codec[Any]] = {}
        for codec in codecs:
            name = subprotocol_of(codec)
            if name in self.codecs:
                raise ValueError(f"serve() got two codecs named {name!r}: give each once")
            self.codecs[name] = codec
        self.default = codecs[0]
        """The codec of a client that does not negotiate."""

    def choose(self, offered: Sequence[str]) -> str | None:
        """The first offered name this server knows; None when nothing is negotiated.

        Raises [`CodecMismatch`][wsframed.negotiation.CodecMismatch] when the client
        offered wsframed names only of codecs this server does not have.
        """
        for name in offered:
            if name in self.codecs:
                return name
        if any(name.startswith(PREFIX) for name in offered):
            raise CodecMismatch(
                f"the client offered {_quoted(offered)}; this server speaks "
                f"{_quoted(list(self.codecs))}",
                offered[:_QUOTED_NAMES],
                list(self.codecs),
            )
        return None

    def select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[str]
    ) -> str | None:
        """websockets' ``select_subprotocol`` (a mismatch was refused before it)."""
        try:
            return self.choose(offered)
        except CodecMismatch as exc:  # reached only if process_request was bypassed
            from websockets.exceptions import NegotiationError

            raise NegotiationError(str(exc)) from None

    def refusal(self, connection: ServerConnection, request: Request) -> Response | None:
        """HTTP 400 for a client offering only codecs this server lacks, else None."""
        offered = _offers(request.headers)
        if offered is None:
            return None
        try:
            self.choose(offered)
        except CodecMismatch as exc:
            logger.warning(
                "refused a client at %s: codec mismatch: %s", connection.remote_address, exc
            )
            response = connection.respond(HTTPStatus.BAD_REQUEST, f"codec mismatch: {exc}\n")
            response.headers[CODECS_HEADER] = ", ".join(self.codecs)
            return response
        return None

    def codec_for(self, subprotocol: str | None) -> Codec[Any]:
        """The codec of a connection whose handshake selected ``subprotocol``."""
        if subprotocol is None:
            return self.default
        return self.codecs[subprotocol]


def offer(codec: object, options: dict[str, Any]) -> str:
    """The client side of ``connect(negotiate=True)``: offer ``codec``'s name.

    Sets ``options["subprotocols"]`` (websockets' option, on asyncio and trio alike)
    and returns the name offered. ``TypeError`` (the caller's mistake) when the options
    name subprotocols already, or the codec has no name (see
    [`subprotocol_of`][wsframed.negotiation.subprotocol_of]).
    """
    if "subprotocols" in options:
        raise TypeError(
            "connect() negotiates the codec through the subprotocol: drop "
            "subprotocols=, or negotiate=False"
        )
    name = subprotocol_of(codec)
    options["subprotocols"] = [name]
    return name


def server_negotiator(codecs: Sequence[Codec[Any]], options: dict[str, Any]) -> Negotiator:
    """The server side of ``serve(negotiate=True)`` or of a list of codecs.

    Sets websockets' ``select_subprotocol`` in ``options`` (on asyncio and trio alike)
    and returns the [`Negotiator`][wsframed.negotiation.Negotiator], whose ``refusal``
    the server adds to its ``process_request`` checks and whose ``codec_for`` gives
    each connection its codec. ``TypeError`` (the caller's mistake) when the options
    set ``subprotocols`` or ``select_subprotocol`` themselves; ``ValueError`` for two
    codecs of one name.
    """
    for option in ("subprotocols", "select_subprotocol"):
        if option in options:
            raise TypeError(
                f"serve() negotiates the codec through the subprotocol: drop "
                f"{option}=, or negotiate=False with a single codec"
            )
    negotiator = Negotiator(codecs)
    options["select_subprotocol"] = negotiator.select_subprotocol
    return negotiator


def client_error(exc: Exception, uri: str, offered: str) -> CodecMismatch | None:
    """The [`CodecMismatch`][wsframed.negotiation.CodecMismatch] a failed handshake
    means for a client that offered ``offered``, or None if it is another failure."""
    errors = sys.modules.get("websockets.exceptions")  # no websockets: not its failure
    if errors is None:
        return None
    InvalidStatus, NegotiationError = errors.InvalidStatus, errors.NegotiationError
    if isinstance(exc, InvalidStatus):
        response = exc.response
        value = response.headers.get(CODECS_HEADER)
        if response.status_code != HTTPStatus.BAD_REQUEST or value is None:
            return None
        available = [name.strip() for name in value.split(",")][:_QUOTED_NAMES]
        return CodecMismatch(
            f"the server at {uri} speaks {_quoted(available)}; this client offered {offered}",
            [offered],
            available,
        )
    if isinstance(exc, NegotiationError):  # the server selected a name not offered
        return CodecMismatch(
            f"the server at {uri} refused or changed the codec ({exc}); "
            f"this client offered {offered}",
            [offered],
            [],
        )
    return None


def raise_mismatch(exc: BaseException, uri: str, offered: str | None) -> None:
    """Raise the [`CodecMismatch`][wsframed.negotiation.CodecMismatch] that ``exc``, a
    failed handshake of a client that offered ``offered`` (None: nothing), means;
    return if it means none (the caller then raises ``exc`` itself)."""
    if offered is not None and isinstance(exc, Exception):
        mismatch = client_error(exc, uri, offered)
        if mismatch is not None:
            raise mismatch from exc
