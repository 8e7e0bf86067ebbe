"""The wire's type codes, the error a call gets from the peer, and how failures are told."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConnectionClosed, WsFramedError
from .logs import brief

__all__ = ["MAX_MSGID", "NOTIFICATION", "REQUEST", "RESPONSE", "RemoteError"]

REQUEST = 0
"""Type code of a request, ``[0, msgid, method, params]``."""
RESPONSE = 1
"""Type code of a response, ``[1, msgid, error, result]``."""
NOTIFICATION = 2
"""Type code of a notification, ``[2, method, params]``."""

MAX_MSGID = 0xFFFF_FFFF  # msgid is a uint32
ABNORMAL = 1006  # RFC 6455 7.1.5: closed without a close frame
_TYPE_PREFIX = re.compile(r"([A-Za-z_][\w.]*): ")


class RemoteError(WsFramedError):
    """The peer answered a call with an error; [`error`][wsframed.rpc.RemoteError.error] is its
    error object, as sent.

    ``str()`` gives the method and the remote message. Raise a ``RemoteError`` in a
    handler to send a particular error object unchanged (any other exception is sent
    as ``"<TypeName>: <message>"``).
    """

    def __init__(self, error: Any, *, method: str | None = None):
        self.error = error
        """The error object from the response (a string from most peers)."""
        self.method = method
        """The method called, when this error answers a call made here."""
        text = self.message
        super().__init__(f"{method!r} failed on the peer: {text}" if method else text)

    @property
    def message(self) -> str:
        """The remote message: the string itself, ``error[1]`` of a ``[code, message]``
        array, ``error["message"]`` of a map, else ``str(error)``."""
        error = self.error
        if isinstance(error, bytes):
            return error.decode("utf-8", "replace")
        if isinstance(error, (list, tuple)) and len(error) == 2 and isinstance(error[1], str):
            return error[1]
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        try:
            return str(error)
        except (RecursionError, ValueError):  # nested too deep, or a 4,300-digit int
            return brief(error)

    @property
    def type_name(self) -> str | None:
        """The remote exception's type when the error names one, else ``None``.

        Taken from a ``"TypeName: message"`` string, a ``[type, message]`` array or a
        map's ``"type"`` entry.
        """
        error = self.error
        if isinstance(error, str):
            match = _TYPE_PREFIX.match(error)
            return match[1] if match else None
        if isinstance(error, (list, tuple)) and len(error) == 2 and isinstance(error[0], str):
            return error[0]
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
        return None

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_remote_error, (self.error, self.method))


def _rebuild_remote_error(error: Any, method: str | None) -> RemoteError:
    return RemoteError(error, method=method)


def error_text(exc: BaseException) -> str:
    """The error a handler's exception is sent as: ``"<TypeName>: <message>"``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def closed_error(exc: BaseException) -> ConnectionClosed:
    """A fresh ConnectionClosed describing ``exc`` (a read or write failure)."""
    if isinstance(exc, ConnectionClosed):
        error = ConnectionClosed(exc.code, exc.reason)
        error.__cause__ = exc.__cause__
    else:
        error = ConnectionClosed(ABNORMAL, error_text(exc))
        error.__cause__ = exc
    return error
