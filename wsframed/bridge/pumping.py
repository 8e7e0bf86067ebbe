"""One connection pair: [`pump`][wsframed.bridge.pump] joins a [`WsStream`][wsframed.WsStream] and
a TCP connection.

Two loops move the bytes ("read a chunk, write it, wait for the other side's
backpressure") and a supervisor maps every ending to both sides; the theory of
operation is in ``wsframed.bridge``. ``HALF_CLOSE_SUBPROTOCOL`` is the
half-close the pump speaks between two wsframed bridges.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from ..errors import ClosedStreamError, ConnectionClosed, ProtocolError
from ..loops import Future, Shell, Task, current_shell, system_error, task_scope
from ..stream import WsStream
from .tcp import TcpSide, tcp_side

__all__ = ["HALF_CLOSE_SUBPROTOCOL", "PumpResult", "pump"]

TARGET_FAILED = "target connection failed"
"""The close reason (with code 1011) when the TCP connection to the target fails."""
TARGET_UNREACHABLE = "target unreachable"
"""The close reason (with code 1011) when the target cannot be reached."""

HALF_CLOSE_SUBPROTOCOL = "wsframed.halfclose"
"""Binary frames, plus a text message that means "no more bytes from me" (half-close)."""

_CHUNK_SIZE = 64 * 1024
_EOF_MARKER = "EOF"
_GOING_AWAY = 1001
_UNSUPPORTED_DATA = 1003
_INTERNAL_ERROR = 1011


# One connection pair ----------------------------------------------------------------


@dataclass(frozen=True)
class PumpResult:
    """How one bridged connection ended (what [`pump`][wsframed.bridge.pump] returns)."""

    ws_to_tcp: int
    """Bytes read from the WebSocket and written to TCP."""
    tcp_to_ws: int
    """Bytes read from TCP and sent over the WebSocket."""
    close_code: int | None
    """The WebSocket close code: the one this side sent if it started the close, else
    the peer's (1006 when the connection broke without one)."""
    reason: str
    """Why it ended: ``"target closed"``, ``"websocket closed"``, ``"idle timeout"``..."""
    duration: float
    """Seconds from the start of [`pump`][wsframed.bridge.pump] to both sides being closed."""


async def pump(
    ws: WsStream,
    reader: Any,
    writer: asyncio.StreamWriter | None = None,
    *,
    idle_timeout: float | None = None,
    half_close: bool = False,
    close_timeout: float = 10.0,
    chunk_size: int = _CHUNK_SIZE,
) -> PumpResult:
    """Pump bytes both ways between ``ws`` and a TCP connection until both have ended.

    The TCP connection is an asyncio ``(reader, writer)`` pair, or under trio (or
    anyio) one stream given alone: a ``trio.SocketStream`` or an anyio ``ByteStream``.
    Under trio the pump's two loops run in a nursery of its own, within this call.

    Bytes go in order and are counted; each side's backpressure pauses the other, so
    memory stays bounded. The TCP end of stream closes the WebSocket with 1000 once
    every byte was sent; a clean WebSocket close becomes ``write_eof()`` on TCP (see
    the ``wsframed.bridge`` package documentation for every ending). When nothing
    moved either way for ``idle_timeout`` seconds the WebSocket is closed with 1001.
    ``close_timeout`` bounds each closing step.

    ``half_close=True`` speaks ``HALF_CLOSE_SUBPROTOCOL`` (use it when that
    subprotocol was negotiated, with a stream made with ``text="ignore"``): TCP EOF is
    sent as a text message and a text message received becomes ``write_eof()``.

    Both sides are closed when it returns. Cancelling it (a task's ``cancel()``, a
    cancel scope) closes the WebSocket with 1001 and the TCP connection, then lets
    the cancellation through.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive number of bytes, not {chunk_size}")
    if idle_timeout is not None and idle_timeout <= 0:
        raise ValueError(f"idle_timeout must be positive or None, not {idle_timeout}")
    return await _Pump(
        ws, tcp_side(reader, writer), idle_timeout=idle_timeout, half_close=half_close,
        close_timeout=close_timeout, chunk_size=chunk_size,
    ).run()


class _Pump:
    """The two loops of one connection pair and the supervisor that ends them.

    Written once for both loop families: its tasks, clock, sleeps and waits are a
    loop shell's (``wsframed.loops``), its TCP connection a ``TcpSide``.
    """

    def __init__(
        self,
        ws: WsStream,
        tcp: TcpSide,
        *,
        idle_timeout: float | None,
        half_close: bool,
        close_timeout: float,
        chunk_size: int,
    ):
        self.ws = ws
        self.tcp = tcp
        self.idle_timeout = idle_timeout
        self.half_close = half_close
        self.close_timeout = close_timeout
        self.chunk_size = chunk_size
        self.shell: Shell = current_shell("the bridge's pump")
        self.time = self.shell.time
        self.ws_to_tcp = 0
        self.tcp_to_ws = 0
        self.reason = ""
        self.code_sent: int | None = None
        self.last_activity = self.time()
        self.stop_reason: str | None = None
        self._wake: Future | None = None  # set when a task ends or stop() is called

    def stop(self, reason: str) -> None:
        """End the pump: close the WebSocket with 1001 and the TCP connection."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self._woken(None)

    def _woken(self, _task: Any) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    # The two loops --------------------------------------------------------------

    async def _ws_to_tcp(self) -> None:
        ws, tcp, size, time = self.ws, self.tcp, self.chunk_size, self.time
        while data := await ws.read(size):
            self.last_activity = time()
            await tcp.send(data)
            self.ws_to_tcp += len(data)
            self.last_activity = time()

    async def _tcp_to_ws(self) -> None:
        ws, tcp, size, time = self.ws, self.tcp, self.chunk_size, self.time
        while data := await tcp.receive(size):
            self.last_activity = time()
            ws.write(data)
            await ws.drain()
            self.tcp_to_ws += len(data)
            self.last_activity = time()
        if self.half_close:
            await _send_text(ws, _EOF_MARKER)

    async def _watch_idle(self, idle_timeout: float) -> None:
        while True:
            delay = self.last_activity + idle_timeout - self.time()
            if delay <= 0:
                return
            await self.shell.sleep(delay)

    # Supervision ----------------------------------------------------------------

    async def run(self) -> PumpResult:
        start = self.time()
        # The peer's half-close marker (a text message) ends the stream's reads where
        # it stands among the messages: every byte before it is read and written to
        # TCP first, and a marker that arrived before the pump started is not missed
        # (events are reported on arrival, so watching them could miss it or act on
        # it before the bytes ahead of it were written).
        self.ws._text_ends_reads = self.half_close
        async with task_scope() as shell:  # trio: the loops' nursery, within this call
            self.shell = shell
            tasks: list[Task] = []
            up = shell.spawn(self._ws_to_tcp(), self._woken)
            down = shell.spawn(self._tcp_to_ws(), self._woken)
            tasks += (up, down)
            idle = None
            if self.idle_timeout is not None:
                idle = shell.spawn(self._watch_idle(self.idle_timeout), self._woken)
                tasks.append(idle)
            try:
                await self._supervise(up, down, idle)
            except shell.cancelled:
                self.reason = self.reason or "cancelled"
                with shell.shielded():  # bounded by close_timeout
                    await self._shut(_GOING_AWAY, "going away", tasks)
                raise
            except Exception as exc:
                with shell.shielded():
                    await self._failed(exc, tasks)
                raise
            finally:
                with shell.shielded():
                    await self._cancel(*tasks)
        code = self.code_sent if self.code_sent is not None else self.ws.close_code
        return PumpResult(
            self.ws_to_tcp, self.tcp_to_ws, code, self.reason, self.time() - start
        )

    async def _next(self, deadline: float | None, *tasks: Task | None) -> bool:
        """Wait until one of ``tasks`` ended or ``stop()`` was called; False at
        ``deadline``."""
        if self.stop_reason is not None or any(t is not None and t.done() for t in tasks):
            return True
        self._wake = wake = self.shell.create_future()
        try:
            await self.shell.wait_until(wake, deadline)
        except TimeoutError:
            return False
        finally:
            self._wake = None
        return True

    async def _supervise(self, up: Task, down: Task, idle: Task | None) -> None:
        up_done = down_done = target_eof = False
        deadline: float | None = None  # waiting for the peer to end its direction
        while not (up_done and down_done):
            if not await self._next(
                deadline, None if up_done else up, None if down_done else down, idle
            ):  # the peer did not finish in time after our close
                self.reason = self.reason or "close timed out"
                return await self._shut(None, "", [up, down])
            if self.stop_reason is not None:
                return await self._shut(_GOING_AWAY, self.stop_reason, [up, down])
            if idle is not None and idle.done():
                return await self._shut(_GOING_AWAY, "idle timeout", [up, down])

            if down.done() and not down_done:
                down_done = True
                exc = _outcome(down)
                if exc is None:  # TCP EOF, and every byte before it was sent
                    target_eof = True
                    if not self.half_close:
                        self.reason = self.reason or "target closed"
                        self._note_close(1000)
                        with contextlib.suppress(ConnectionClosed):
                            await self.ws.send_eof(1000, "target closed")
                        deadline = self.time() + self.close_timeout
                elif isinstance(exc, ConnectionClosed | ClosedStreamError):
                    # The WebSocket is gone; ``up`` still delivers what arrived first
                    # and then tells how it ended.
                    deadline = self.time() + self.close_timeout
                else:
                    return await self._failed(exc, [up])

            if up.done() and not up_done:
                up_done = True
                exc = _outcome(up)
                if exc is None and self.half_close and self.ws._text_ended_reads:
                    await self.tcp.send_eof()  # the peer's half-close
                elif exc is None:  # the WebSocket closed cleanly
                    self.reason = self.reason or "websocket closed"
                    await self.tcp.send_eof()
                    if not down_done:
                        await self._cancel(down)
                        down_done = True
                    if not target_eof:
                        await self._discard_tcp()
                elif isinstance(exc, ProtocolError):
                    self.reason = "text message rejected"
                    return await self._shut(_UNSUPPORTED_DATA, "", [down])
                elif isinstance(exc, ConnectionClosed):
                    self.reason = self.reason or f"websocket failed ({exc.code})"
                    return await self._shut(None, "", [down])
                elif target_eof and isinstance(exc, OSError):
                    # Writing to a target that already closed: nothing more to deliver.
                    self.reason = self.reason or "target closed"
                    return await self._shut(None, "", [down])
                else:
                    return await self._failed(exc, [down])
        self.reason = self.reason or "both sides finished"
        await self._finish()

    async def _finish(self) -> None:
        await self.ws.aclose(1000, timeout=self.close_timeout)
        await self.tcp.aclose(self.close_timeout)

    def _note_close(self, code: int) -> None:
        if self.code_sent is None and self.ws.close_code is None:
            self.code_sent = code

    async def _shut(self, code: int | None, reason: str, tasks: Sequence[Task]) -> None:
        """Stop ``tasks``, close the WebSocket with ``code`` (if still open), close TCP."""
        await self._cancel(*tasks)
        if code is not None:
            self._note_close(code)
            self.reason = self.reason or reason
        await self.ws.aclose(code or 1000, reason, timeout=self.close_timeout)
        await self.tcp.aclose(self.close_timeout)

    async def _failed(self, exc: BaseException, tasks: Sequence[Task]) -> None:
        """A TCP error (or a bug): close the WebSocket with 1011, reset TCP."""
        where = "target failed" if isinstance(exc, OSError) else "bridge error"
        self.reason = f"{where}: {describe_failure(exc)}"
        self._note_close(_INTERNAL_ERROR)
        await self._cancel(*tasks)
        self.tcp.abort()
        await self.ws.aclose(_INTERNAL_ERROR, TARGET_FAILED, self.close_timeout)
        await self.tcp.aclose(self.close_timeout)

    async def _discard_tcp(self) -> None:
        """Read and drop until the target's EOF, so closing does not send a reset."""

        async def drop() -> None:
            with contextlib.suppress(OSError):
                while await self.tcp.receive(self.chunk_size):
                    pass

        await self.shell.bounded(self.close_timeout, drop)

    async def _cancel(self, *tasks: Task) -> None:
        """Cancel ``tasks`` and wait for them; their outcome was already acted on."""
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        await self.shell.wait(pending)
        for task in tasks:
            _outcome(task)  # retrieved: asyncio logs an exception nobody looked at


def _outcome(task: Any) -> BaseException | None:
    """What an ended task raised (``None``: it returned, or was cancelled by us)."""
    if task.cancelled():
        return None
    exc: BaseException | None = task.exception()
    return exc


_MAX_DESCRIPTION = 200


def describe_failure(exc: BaseException) -> str:
    """Why a connection failed, in one line of at most 200 characters: the system's
    words for an OS error (``connection refused``, ``connection reset by peer``),
    ``timed out``, else the exception's type and message."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    exc = system_error(exc)  # trio's "all attempts to connect ... failed"
    if isinstance(exc, socket.gaierror) and exc.strerror:
        text = exc.strerror[:1].lower() + exc.strerror[1:]
    elif isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.errno:
        # Not str(exc): asyncio words a refused connect "Connect call failed (...)".
        text = os.strerror(exc.errno)
        text = text[:1].lower() + text[1:]
    else:
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(text) > _MAX_DESCRIPTION:
        text = text[: _MAX_DESCRIPTION - 3] + "..."
    return text


async def _send_text(ws: WsStream, text: str) -> None:
    """Send one text message on the connection under ``ws`` (after ``ws.drain()``)."""
    connection = ws.get_extra_info("connection")
    # aiohttp's send_str, Starlette's send_text; websockets' send sends a str as text.
    send = getattr(connection, "send_str", None) or getattr(connection, "send_text", None)
    try:
        await (send or connection.send)(text)
    except WsConnectionClosed as exc:
        raise ConnectionClosed(exc.rcvd.code if exc.rcvd is not None else 1006) from exc
