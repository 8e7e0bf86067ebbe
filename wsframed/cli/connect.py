"""``wsframed connect``: send stdin's lines as frames and print the frames received.

stdin is read without blocking the event loop (``_input_chunks``) and cut into
lines that are never buffered past a limit (``_input_lines``). Receiving and
printing frames, and the signal handling, are shared with ``wsframed.cli.serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import ssl
import stat
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import ClosedStreamError, ConnectionClosed
from ..loops import Future, in_trio, task_scope
from .frames import SKIP, make_codec, parse_input_line
from .serve import _describe, _log, _on_signals, _receive_frames, _ws_stream_of

if TYPE_CHECKING:
    from ..framed import Framed

__all__: list[str] = []  # internal to wsframed.cli: the command is wsframed.cli.main

_INPUT_READ_SIZE = 64 * 1024


# connect ------------------------------------------------------------------------


async def _input_chunks() -> AsyncIterator[bytes]:
    """Yield stdin's bytes as they arrive, without blocking the event loop.

    Pipes and sockets are read by the event loop itself. Anything else (a terminal, a
    regular file, ``/dev/null``) is read by a daemon thread: the event loop cannot
    watch files, and making a terminal non-blocking would affect the stdout sharing it.
    """
    stdin = sys.stdin
    if stdin is None:
        return
    fd = stdin.fileno()
    if in_trio():
        async for chunk in _trio_input_chunks(fd):
            yield chunk
        return
    loop = asyncio.get_running_loop()
    reader: asyncio.StreamReader | None = None
    transport: asyncio.BaseTransport | None = None
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        pipe_reader = asyncio.StreamReader(limit=_INPUT_READ_SIZE)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(pipe_reader), stdin
            )
            reader = pipe_reader
        except (ValueError, OSError, NotImplementedError):
            pass  # a regular file, or no pipe support: use the thread below
    if reader is not None:
        try:
            while chunk := await reader.read(_INPUT_READ_SIZE):
                yield chunk
        finally:
            if transport is not None:
                transport.close()
        return
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)

    def pump() -> None:
        while True:
            try:
                chunk = os.read(fd, _INPUT_READ_SIZE)
            except OSError:
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
            except Exception:  # the loop is gone or stopped listening: stop quietly
                return
            if not chunk:
                return

    threading.Thread(target=pump, name="wsframed-stdin", daemon=True).start()
    while chunk := await queue.get():
        yield chunk


async def _trio_input_chunks(fd: int) -> AsyncIterator[bytes]:
    """``_input_chunks`` under trio: a pipe or socket read by trio, else a thread."""
    import trio

    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        async with trio.lowlevel.FdStream(os.dup(fd)) as pipe:
            while chunk := await pipe.receive_some(_INPUT_READ_SIZE):
                yield chunk
        return
    while True:
        try:
            chunk = await trio.to_thread.run_sync(
                os.read, fd, _INPUT_READ_SIZE, abandon_on_cancel=True
            )
        except OSError:
            return
        if not chunk:
            return
        yield chunk


async def _input_lines(
    max_line: int, on_too_long: Callable[[int], None]
) -> AsyncIterator[list[tuple[int, bytes]]]:
    """Yield stdin's lines as they arrive, in batches of ``(line number, line)``.

    Lines keep their terminators. An unterminated line growing past ``max_line``
    bytes is dropped as it arrives (never buffered in full) and reported to
    ``on_too_long`` with its number.
    """
    pending = bytearray()
    discarding = False
    number = 0
    async for chunk in _input_chunks():
        pending += chunk
        batch = []
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            number += 1
            if discarding:
                discarding = False
            else:
                batch.append((number, bytes(pending[start : end + 1])))
            start = end + 1
        del pending[:start]
        if batch:
            yield batch
        if len(pending) > max_line and not discarding:
            on_too_long(number + 1)
            discarding = True
        if discarding:
            pending.clear()
    if pending and not discarding:
        yield [(number + 1, bytes(pending))]


def _header(text: str) -> tuple[str, str]:
    """``--header NAME:VALUE``: a header to send (argparse type)."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, not {text!r}")
    if not _TOKEN.fullmatch(name):
        raise argparse.ArgumentTypeError(f"not a valid header name: {name!r}")
    if any(c in value for c in "\r\n\0"):
        raise argparse.ArgumentTypeError(f"a header value cannot hold CR, LF or NUL: {text!r}")
    return name, value


# RFC 9110 section 5.6.2: a header name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """``connect``'s TLS and header options."""
    parser.add_argument("--cafile", metavar="FILE",
                        help="trust only the CA certificates in FILE for a wss:// URI "
                        "(default: the system's)")
    parser.add_argument("--insecure", action="store_true",
                        help="do not verify the wss:// server's certificate nor its name "
                        "(for testing only: anyone on the path can read and change the data)")
    parser.add_argument("--header", action="append", type=_header, default=[],
                        metavar="NAME:VALUE",
                        help="an HTTP header to send with the handshake, for example "
                        "'Authorization: Bearer ...' (repeat for several)")


def _client_ssl(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context of a wss:// URI and --cafile/--insecure; ValueError if wrong."""
    if not args.uri.startswith("wss://"):
        if args.cafile is not None or args.insecure:
            raise ValueError(f"--cafile/--insecure are for a wss:// URI, not {args.uri}")
        return None
    try:
        # With --cafile, only its CAs are trusted (as curl --cacert does).
        context = ssl.create_default_context(cafile=args.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load --cafile {args.cafile}: {_describe(exc)}") from None
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def _open(
    uri: str, codec: Any, options: dict[str, Any]
) -> tuple[Framed[Any], Callable[[], Awaitable[None]]]:
    """Connect on the running loop; the ``Framed`` and what closes it for good.

    asyncio: [`wsframed.connect`][wsframed.connect]. trio: the ``async with`` block of
    [`wsframed.trio.connect`][wsframed.trio.connect], entered here and left by the
    closer.
    """
    if not in_trio():
        from ..client import connect

        framed: Framed[Any] = await connect(uri, codec, **options)
        return framed, lambda: _ws_stream_of(framed).aclose(timeout=0.5)
    from .. import trio as wsframed_trio

    block = wsframed_trio.connect(uri, codec, **options)
    framed = await block.__aenter__()

    async def close() -> None:
        await _ws_stream_of(framed).aclose(timeout=0.5)
        await block.__aexit__(None, None, None)

    return framed, close


async def _run_connect(args: argparse.Namespace) -> int:
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

    from ..negotiation import CodecMismatch

    codec = make_codec(args.codec, args.max_frame_size)
    options: dict[str, Any] = {
        "open_timeout": args.open_timeout,
        "close_timeout": args.close_timeout,
        "text": args.text,
    }
    try:
        client_ssl = _client_ssl(args)
    except ValueError as exc:
        _log(f"wsframed connect: error: {exc}")
        return 2
    if client_ssl is not None:
        options["ssl"] = client_ssl
    if args.header:
        options["additional_headers"] = args.header
    if args.subprotocol:  # the user's names replace the codec's: no negotiation
        options["subprotocols"] = args.subprotocol
    else:  # a server with another codec refuses at the handshake, naming it
        options["negotiate"] = True
    if args.origin:
        options["origin"] = args.origin
    try:
        framed, close_connection = await _open(args.uri, codec, options)
    except CodecMismatch as exc:
        _log(f"wsframed connect: error: codec mismatch: {exc} (--codec {args.codec})")
        return 1
    except InvalidStatus as exc:
        _log(f"wsframed connect: error: {args.uri} refused the WebSocket connection "
             f"(HTTP {exc.response.status_code})")
        return 1
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else _describe(exc)
        _log(f"wsframed connect: error: cannot connect to {args.uri}: {reason}")
        return 1

    try:
        return await _converse(args, framed, codec.max_frame_size)
    finally:
        await close_connection()


async def _converse(args: argparse.Namespace, framed: Framed[Any], max_frame_size: int) -> int:
    """Send stdin's lines and print the frames received until the end; the exit status.

    Written once for both loops: its tasks, clock and waits are a loop shell's."""
    sink, frames = framed.split()
    skipped = 0
    received_status: list[int] = []

    def not_sent(number: int, why: str) -> None:
        nonlocal skipped
        skipped += 1
        _log(f"wsframed connect: input line {number} not sent: {why}")

    # A line's JSON text may be larger than the frame it becomes: leave room.
    max_line = max(4 * max_frame_size, 1024 * 1024)

    async def send_input() -> None:
        too_long = f"longer than {max_line} bytes"
        async for batch in _input_lines(max_line, lambda n: not_sent(n, too_long)):
            for number, line in batch:
                try:
                    item = parse_input_line(args.codec, line)
                    if item is not SKIP:
                        sink.feed(item)
                except (ValueError, TypeError) as exc:  # FrameTooLarge is a ValueError
                    not_sent(number, _describe(exc))
            await sink.flush()  # the lines read together leave together

    async with task_scope() as shell:
        last_activity = shell.time()
        wake: list[Future] = [shell.create_future()]
        stopped = False

        def woken(_task: Any = None) -> None:
            if not wake[0].done():
                wake[0].set_result(None)

        def stop() -> None:
            nonlocal stopped
            if stopped:
                _hard_exit(130)
            stopped = True
            woken()

        async def until(condition: Callable[[], bool], deadline: float | None) -> bool:
            """Wait until ``condition()`` holds (True) or ``deadline`` passes (False)."""
            while not condition():
                wake[0] = shell.create_future()
                try:
                    await shell.wait_until(wake[0], deadline)
                except TimeoutError:
                    return condition()
            return True

        async def note_activity(batch: list[Any]) -> None:
            nonlocal last_activity
            last_activity = shell.time()

        async def receive() -> None:
            received_status.append(await _receive_frames(
                frames, _ws_stream_of(framed), codec=args.codec, who="wsframed connect",
                on_frames=note_activity,
            ))

        receiver = shell.spawn(receive(), woken)
        sender = shell.spawn(send_input(), woken)
        status = 0
        try:
            with _on_signals(stop):
                await until(lambda: stopped or receiver.done() or sender.done(), None)
                failure = _failure(sender)
                if failure is not None and not isinstance(
                    failure, ConnectionClosed | ClosedStreamError
                ):
                    raise failure
                if not receiver.done() and not stopped:
                    # The input ended. A WebSocket close is not a half-close: replies
                    # still in flight when the close frame arrives would be lost, so
                    # wait until the server has been quiet for --linger seconds first.
                    last_activity = max(last_activity, shell.time())
                    while (deadline := last_activity + args.linger) > shell.time():
                        if await until(lambda: stopped or receiver.done(), deadline):
                            break
                if not receiver.done():
                    sender.cancel()
                    with contextlib.suppress(ConnectionClosed, ClosedStreamError):
                        await sink.close()
                    if not await until(receiver.done, shell.time() + args.close_timeout):
                        _log("wsframed connect: the server did not complete the close "
                             f"handshake within {args.close_timeout} s; dropped the "
                             "connection")
                        status = 1
                failure = _failure(receiver)
                if failure is not None:
                    raise failure
                if received_status:
                    status = max(status, received_status[0])
        finally:
            for task in (sender, receiver):
                task.cancel()
            with shell.shielded():
                await shell.wait((sender, receiver))
    if skipped and status == 0:
        status = 1
    return status


def _failure(task: Any) -> BaseException | None:
    """What an ended task raised; None while it runs, or if it returned or was cancelled."""
    if not task.done() or task.cancelled():
        return None
    exc: BaseException | None = task.exception()
    return exc


def _hard_exit(status: int) -> NoReturn:
    """Leave at once (a second Ctrl-C while ``connect`` waits for the close)."""
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    os._exit(status)
