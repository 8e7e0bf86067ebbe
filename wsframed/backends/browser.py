"""The browser backend: Python in Pyodide over the JavaScript ``WebSocket``.

Under Pyodide (``sys.platform == "emscripten"``), in a browser page or Node.js 22+
(Node 20 with ``--experimental-websocket``), [`connect`][wsframed.connect] opens a
JavaScript ``WebSocket`` and wraps it in this backend, so the same
[`WsStream`][wsframed.WsStream], codecs, [`Framed`][wsframed.Framed] and RPC run there.
The JavaScript API is smaller than a WebSocket library's; what differs:

- Read backpressure does not exist: the browser hands over every message as it arrives,
  whether the application reads or not. Unread messages are kept up to ``max_queue``
  bytes (characters for text); a message that would go past it is refused and the
  connection is closed at once (code 1009, sent as 4009, see below): the reader gets the
  messages kept, then [`ConnectionClosed`][wsframed.ConnectionClosed] with code 1009.
  Memory stays bounded by ``max_queue`` plus the one message the browser already holds.
- Write backpressure comes from ``bufferedAmount``: after handing a message to the
  browser, ``send`` waits while more than ``high_water`` bytes are still unsent,
  polling every 1 ms, doubling up to 50 ms (the API has no event for it).
- A browser may only send close codes 1000 and 3000-4999. Another code ``c`` that
  wsframed sends (1003 for a refused text message, 1009, 1011 on an error) goes out as
  ``c + 3000`` (4003, 4009, 4011) with its reason unchanged.
- ``ping()`` raises ``NotImplementedError``: browsers answer pings themselves and have no
  API to send one. Ping and Pong events never come; ``CloseFrame`` comes with the close.
- ``abort()`` cannot drop the TCP connection (no API): it starts a close handshake and
  stops waiting for it.
- A failed connect says nothing about why: the browser reports a refused connection, a
  DNS or TLS failure, an HTTP error status and a refused subprotocol alike (the browser's
  console says more). So the reconnecting loop (``async for framed in connect(...)``)
  retries every failed connect, with websockets' backoff
  ([`process_exception`][wsframed.backends.browser.process_exception],
  [`backoff`][wsframed.backends.browser.backoff]): an HTTP 404 or a refused
  subprotocol is retried too, where websockets would raise.

Every JavaScript listener is removed and its proxy destroyed when the connection ends.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Generator, Sequence
from typing import Any

from ..events import CloseFrame, Event, TextMessage
from . import EventSink
from ._inbox import InboxBackend
from ._pump import NORMAL_CLOSE_CODES

__all__ = [
    "DEFAULT_HIGH_WATER",
    "DEFAULT_MAX_QUEUE",
    "BrowserBackend",
    "backoff",
    "browser_backend_for",
    "browser_close_code",
    "is_browser_websocket",
    "process_exception",
]

DEFAULT_MAX_QUEUE = 4 * 1024 * 1024
"""Unread bytes kept before the connection is closed with 1009 (sent as 4009)."""
DEFAULT_HIGH_WATER = 256 * 1024
"""``bufferedAmount`` above which ``send`` waits."""
_POLL_FIRST = 0.001
_POLL_MAX = 0.05
_OPEN, _CLOSED = 1, 3  # WebSocket.readyState
_EVENTS = ("open", "message", "close", "error")
_live_proxies = 0  # listener proxies not yet destroyed, all connections (for the tests)


def browser_close_code(code: int) -> int:
    """The close code a browser sends for ``code``: ``code`` itself, or ``code + 3000``.

    Browsers send only 1000 and 3000-4999; a protocol code from 1001 to 1999 is mapped
    into the private range. Raises ``ValueError`` for any other code (the caller's).
    """
    if code == 1000 or 3000 <= code <= 4999:
        return code
    if 1001 <= code <= 1999:
        return code + 3000
    raise ValueError(f"cannot send close code {code}: valid codes are 1000-1999 and 3000-4999")


def backoff(
    initial: float = 5.0, minimum: float = 3.1, maximum: float = 90.0, factor: float = 1.618
) -> Generator[float]:
    """The delays between reconnection attempts in Pyodide: websockets' defaults.

    A random delay below ``initial`` seconds first (RFC 6455 section 7.2.3: clients
    that lost their connection must not all come back at once), then ``minimum``,
    growing by ``factor`` up to ``maximum``, then ``maximum`` for ever.
    """
    yield random.random() * initial
    delay = minimum
    while delay < maximum:
        yield delay
        delay *= factor
    while True:
        yield maximum


def process_exception(exc: Exception) -> Exception | None:
    """Whether a failed connect in Pyodide is retried: None to retry, else what to raise.

    The browser tells nothing of why a connection failed, so every ``OSError``
    (``ConnectionRefusedError``: refused, DNS, TLS, any HTTP status, a refused
    subprotocol) and ``TimeoutError`` is retried; anything else (``ValueError`` for a
    URL the browser refuses, ``TypeError`` for an option it does not have) is raised.
    """
    if isinstance(exc, (OSError, TimeoutError)):
        return None
    return exc


def is_browser_websocket(connection: object) -> bool:
    """Return whether ``connection`` is a JavaScript ``WebSocket`` seen from Pyodide."""
    return (
        sys.platform == "emscripten"
        and type(connection).__module__.partition(".")[0] == "pyodide"
        and all(hasattr(connection, name) for name in ("bufferedAmount", "binaryType", "send"))
    )


def browser_backend_for(connection: object, on_event: EventSink) -> BrowserBackend | None:
    """The backend for a [`BrowserBackend`][wsframed.backends.browser.BrowserBackend] or a
    JavaScript ``WebSocket``, bound to ``on_event``; None for anything else."""
    if isinstance(connection, BrowserBackend):
        return connection.bind(on_event)
    if is_browser_websocket(connection):
        return BrowserBackend(connection).bind(on_event)
    return None


class BrowserBackend(InboxBackend):
    """A JavaScript ``WebSocket`` as a ``Backend``: give it to [`WsStream`][wsframed.WsStream].

    Listeners are attached at once: wrap a ``WebSocket`` before its ``open`` event
    (right after creating it), or open one with
    [`BrowserBackend.open`][wsframed.backends.browser.BrowserBackend.open] (what
    [`connect`][wsframed.connect] does in Pyodide). Once wrapped, the stream owns it.
    """

    def __init__(
        self,
        websocket: Any,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        high_water: int = DEFAULT_HIGH_WATER,
    ):
        from pyodide.ffi import create_proxy

        global _live_proxies
        if max_queue < 1 or high_water < 0:
            raise ValueError(
                f"max_queue must be at least 1 and high_water at least 0, "
                f"not {max_queue} and {high_water}"
            )
        super().__init__()
        self.websocket = websocket
        self.max_queue = max_queue
        self.high_water = high_water
        websocket.binaryType = "arraybuffer"
        self._on_event: EventSink | None = None
        self._early_events: list[Event] = []  # before bind(): one per kept message at most
        self._opened = asyncio.Event()
        self._close_sent = False
        handlers = (self._js_open, self._js_message, self._js_close, self._js_error)
        self._listeners: list[tuple[str, Any]] = []
        for name, handler in zip(_EVENTS, handlers, strict=True):
            proxy = create_proxy(handler)
            _live_proxies += 1
            self._listeners.append((name, proxy))
            websocket.addEventListener(name, proxy)
        state = websocket.readyState
        if state == _OPEN:
            self._opened.set()
        elif state == _CLOSED:  # its close event has fired already
            self._finish(1006, "", clean=False)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        subprotocols: Sequence[str] | None = None,
        open_timeout: float | None = 10.0,
        max_queue: int = DEFAULT_MAX_QUEUE,
        high_water: int = DEFAULT_HIGH_WATER,
    ) -> BrowserBackend:
        """Open a WebSocket to ``url`` and return it once open.

        Raises ``ValueError`` for a URL the browser refuses, ``ConnectionRefusedError``
        when the connection fails (the browser gives no reason) and ``TimeoutError``
        after ``open_timeout`` seconds.
        """
        import js
        from pyodide.ffi import JsException, to_js

        try:
            if subprotocols:
                websocket = js.WebSocket.new(url, to_js(list(subprotocols)))
            else:
                websocket = js.WebSocket.new(url)
        except JsException as exc:
            await asyncio.sleep(0)
            raise ValueError(f"the browser refuses the WebSocket URL {url!r}: {exc}") from None
        backend = cls(websocket, max_queue=max_queue, high_water=high_water)
        await backend._until_open(open_timeout)
        if backend._opened.is_set():
            # Open, perhaps already over (a peer that floods at once can fill the
            # receive queue before this task resumes): the stream reports that end.
            return backend
        if backend._final is None:
            backend.abort()
            raise TimeoutError(f"the WebSocket to {url} did not open within {open_timeout} s")
        raise ConnectionRefusedError(
            f"could not open a WebSocket to {url} (close code {backend._final.code}): "
            "browsers give no reason; a refused connection, a DNS or TLS failure, an HTTP "
            "error status and a refused subprotocol look the same (the console says more)"
        )

    async def _until_open(self, timeout: float | None) -> None:
        """Wait until the WebSocket is open or over, or ``timeout`` seconds."""
        waiters = {
            asyncio.ensure_future(self._opened.wait()),
            asyncio.ensure_future(self._done.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waiters:
                waiter.cancel()

    def bind(self, on_event: EventSink) -> BrowserBackend:
        """Send events to ``on_event`` (those already due first, on the next loop turn,
        since the stream is still being built); once."""
        if self._on_event is not None:
            raise ValueError("this browser WebSocket already belongs to a WsStream")
        self._on_event = on_event
        if self._early_events:
            asyncio.get_running_loop().call_soon(self._flush_early)
        return self

    def _flush_early(self) -> None:
        early, self._early_events = self._early_events, []
        assert self._on_event is not None
        for event in early:
            self._on_event(event)

    # JavaScript listeners ----------------------------------------------------------

    def _emit(self, event: Event) -> None:
        if self._on_event is None or self._early_events:  # keep the order
            self._early_events.append(event)
        else:
            self._on_event(event)

    def _js_open(self, event: Any) -> None:
        self._opened.set()

    def _js_error(self, event: Any) -> None:
        # Browsers follow an error event with a close event saying what is known, but
        # Node's WebSocket may not when the connection fails: before the open event,
        # the error is the end.
        if not self._opened.is_set():
            self._finish(1006, "", clean=False)

    def _js_message(self, event: Any) -> None:
        if self._final is not None:
            return
        data = event.data
        text = isinstance(data, str)
        size = len(data) if text else int(data.byteLength)
        if self._inbox_size + size > self.max_queue:
            self._refuse(size)
            return
        message: bytes | str = data if text else data.to_bytes()
        if text:
            # Reported on arrival, in order with the close, not when a reader reaches it.
            self._emit(TextMessage(len(data.encode("utf-8", "surrogatepass"))))
        self._queue(message, size)

    def _refuse(self, size: int) -> None:
        """The application does not read: close with 1009 rather than grow memory."""
        reason = (
            f"receive queue full: {size} B on {self._inbox_size} B unread, max {self.max_queue}"
        )
        self._close_sent = True
        self.websocket.close(browser_close_code(1009), reason[:123])
        self._finish(1009, reason, clean=False)

    def _js_close(self, event: Any) -> None:
        code, reason = int(event.code), str(event.reason)
        if self._final is None:
            if code != 1006:  # 1006: no close frame came
                self._emit(CloseFrame(code, reason))
            clean = bool(event.wasClean) and (self._close_sent or code in NORMAL_CLOSE_CODES)
            self._finish(code, reason, clean=clean)

    def _ended(self) -> None:
        """The end was recorded: detach every listener."""
        global _live_proxies
        listeners, self._listeners = self._listeners, []
        for name, proxy in listeners:
            self.websocket.removeEventListener(name, proxy)
            proxy.destroy()
            _live_proxies -= 1

    # Backend (receive, wait_closed and the end's state: InboxBackend) ---------------

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        import js

        if self._final is None and not self._opened.is_set():
            await self._until_open(None)
        if self._final is not None:
            raise self._closed_error()
        websocket = self.websocket
        if websocket.readyState != _OPEN:  # closing: the browser would drop it silently
            await self._done.wait()
            raise self._closed_error()
        view = memoryview(data).cast("B")
        array = js.Uint8Array.new(view.nbytes)
        array.assign(view)
        websocket.send(array)
        delay = _POLL_FIRST
        while websocket.bufferedAmount > self.high_water:
            if self._final is not None:
                raise self._closed_error()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self._close_sent and self._final is None:
            sent = browser_close_code(code)
            if len(reason.encode()) > 123:
                raise ValueError(
                    f"cannot send a {len(reason.encode())}-byte close reason (at most 123)"
                )
            self._close_sent = True
            self.websocket.close(sent, reason)
        await self._done.wait()

    def abort(self) -> None:
        if self._final is None:
            if not self._close_sent:
                self._close_sent = True
                self.websocket.close()
            self._finish(1006, "", clean=False)

    async def ping(self, data: bytes) -> float:
        raise NotImplementedError(
            "browsers have no API to send a WebSocket ping (they answer the server's "
            "pings themselves): ping() is not available over the browser backend"
        )

    def extra_info(self, name: str, default: Any) -> Any:
        websocket = self.websocket
        if name == "connection":
            return websocket
        if name == "subprotocol":
            return str(websocket.protocol) or None
        if name == "url":
            return str(websocket.url)
        return default
