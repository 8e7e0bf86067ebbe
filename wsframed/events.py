"""Out-of-band events of a WebSocket byte stream.

A byte stream cannot carry control frames or message kinds, so [`WsStream`][wsframed.WsStream]
reports them here. ``stream.events()`` subscribes an observer that receives these
frozen dataclasses in order; see [`wsframed.stream.EventSubscription`][wsframed.EventSubscription].
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CloseFrame", "Closed", "Error", "Event", "Ping", "Pong", "TextMessage"]


@dataclass(frozen=True, slots=True)
class Ping:
    """The peer sent a ping frame (answered automatically with a pong)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """The peer sent a pong frame, solicited or not."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """The peer sent a close frame. ``code`` is 1005 when the frame carried none."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class TextMessage:
    """The peer sent a text message of ``size`` UTF-8 bytes; the text policy applied."""

    size: int


@dataclass(frozen=True, slots=True)
class Error:
    """The stream failed with ``exc``; readers get the same exception."""

    exc: BaseException


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is closed. Always the last event a subscriber receives."""

    code: int
    reason: str


Event = Ping | Pong | CloseFrame | TextMessage | Error | Closed
"""Any of the event types above."""
