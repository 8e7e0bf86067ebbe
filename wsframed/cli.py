"""The ``wsframed`` command: ``demo``, ``serve``, ``connect``, ``bridge`` and ``bench``.

Run ``wsframed --help`` or ``wsframed SUBCOMMAND --help``. ``python -m wsframed`` is
the same command.

Exit status: 0 on success (``serve`` stopped by SIGINT/SIGTERM included); 1 when the
work failed (cannot listen or connect, the connection ended abnormally, input lines
could not be sent); 2 for a usage error (bad argument, subcommand not in this build);
130 when ``connect`` is interrupted twice. Every failure is one line on stderr, never
a traceback (``wsframed --debug ...`` shows it).

How ``serve`` and ``connect`` show a received frame: one frame per line on stdout,

- ``lines``: the text of the line, as received;
- ``bytes``, ``length``: a Python bytes literal, for example ``b'hello\\n'``;
- ``msgpack``, ``cbor``, ``jsonl``: compact JSON. A byte string is shown as
  ``{"$bytes": "<hex>"}``; a value JSON cannot express (a CBOR tag, a datetime, a set)
  as the string of its Python ``repr``; map keys that are not strings as strings.

Everything else (connections opening and closing, warnings) goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import io
import json
import logging
import os
import signal
import socket
import stat
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from .cli_args import port, positive_int, seconds
from .errors import (
    ClosedStreamError,
    ConnectionClosed,
    DecodeError,
    EndOfStream,
    FrameTooLarge,
    IncompleteFrame,
    ProtocolError,
)

if TYPE_CHECKING:
    from .codecs.base import Codec
    from .framed import Framed, FramedStream

__all__ = [
    "CODECS",
    "SKIP",
    "build_parser",
    "format_frame",
    "main",
    "make_codec",
    "parse_input_line",
]

CODECS = ("bytes", "lines", "length", "msgpack", "cbor", "jsonl")
"""The ``--codec`` choices of ``serve`` and ``connect``."""

_STRUCTURED = frozenset({"msgpack", "cbor", "jsonl"})
_RESYNCING = frozenset({"lines", "jsonl"})  # codecs that go on after a bad frame
_INPUT_READ_SIZE = 64 * 1024
_EXIT_USAGE = 2

SKIP: Any = object()
"""What :func:`parse_input_line` returns for a line that sends nothing (a blank line
under a JSON codec, an empty read under ``bytes``)."""


# Codecs and frame formatting ---------------------------------------------------


def make_codec(name: str, max_frame_size: int | None = None) -> Codec[Any]:
    """Return the codec named ``name`` (one of :data:`CODECS`), with its default limit
    unless ``max_frame_size`` is given."""
    from . import codecs

    options: dict[str, Any] = {}
    if max_frame_size is not None:
        options["max_frame_size"] = max_frame_size
    factories: dict[str, Callable[..., Codec[Any]]] = {
        "bytes": codecs.BytesCodec,
        "lines": codecs.LinesCodec,
        "length": codecs.LengthPrefixedCodec,
        "msgpack": codecs.MsgpackCodec,
        "cbor": codecs.CborCodec,
        "jsonl": codecs.JsonLinesCodec,
    }
    try:
        factory = factories[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; choose from {', '.join(CODECS)}") from None
    return factory(**options)


def _to_json(value: Any) -> Any:
    """Return ``value`` made of JSON types only (see the module documentation)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {_json_key(key): _to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    return repr(value)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key).hex()
    return json.dumps(_to_json(key), ensure_ascii=False)


def _from_json(value: Any) -> Any:
    """Turn ``{"$bytes": "<hex>"}`` objects back into bytes, recursively."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$bytes"), str):
            return bytes.fromhex(value["$bytes"])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def format_frame(codec: str, item: Any) -> str:
    """Return the one-line text ``serve`` and ``connect`` print for a received frame."""
    if codec in _STRUCTURED:
        return json.dumps(_to_json(item), ensure_ascii=False, separators=(",", ":"))
    if isinstance(item, str):
        return item
    return repr(bytes(item))


def parse_input_line(codec: str, line: bytes) -> Any:
    """Return the item ``connect`` sends for one line of input (with its terminator).

    ``bytes`` sends the line as read, newline included (a raw byte stream, as netcat
    does); ``length`` the line without its terminator; ``lines`` its text; ``msgpack``,
    ``cbor`` and ``jsonl`` parse it as JSON (a blank line gives :data:`SKIP`) and, except for
    ``jsonl``, turn ``{"$bytes": "<hex>"}`` into bytes. Raises ``ValueError`` with a
    message saying what is wrong with the line.
    """
    if codec == "bytes":
        return line if line else SKIP
    stripped = line.removesuffix(b"\n").removesuffix(b"\r")
    if codec == "length":
        return stripped
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if codec == "lines":
        return text
    if not text.strip():
        return SKIP
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if codec == "jsonl":
        return value
    try:
        return _from_json(value)
    except ValueError:
        raise ValueError('a {"$bytes": ...} value is not valid hex') from None


# Output -------------------------------------------------------------------------


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _describe(exc: BaseException) -> str:
    """One line for an exception: its message, or its type when it has none."""
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    if isinstance(exc, OSError) and exc.errno:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _peer_name(framed: Framed[Any]) -> str:
    peer = framed.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)


def _ws_stream_of(framed: Framed[Any]) -> Any:
    """The WsStream under ``framed`` (it always is one in this module)."""
    return framed.stream


# Receiving frames: shared by serve and connect -----------------------------------


async def _receive_frames(
    frames: Framed[Any] | FramedStream[Any],
    ws: Any,
    *,
    codec: str,
    who: str,
    on_frames: Callable[[list[Any]], Awaitable[None]],
) -> int:
    """Print received frames until the end of stream; return 0 (clean) or 1.

    ``ws`` is the WsStream under ``frames``. A frame that fails to decode is reported
    and skipped where the codec resynchronises (lines and JSON Lines, at the next
    newline); otherwise the connection is closed with 1007 (invalid frame payload
    data) or, for a frame over the limit, 1009 (message too big).
    """
    resyncs = codec in _RESYNCING
    while True:
        try:
            batch = await frames.recv_many()
        except EndOfStream:
            return 0
        except IncompleteFrame as exc:
            _log(f"{who}: {_describe(exc)}")
            return 1
        except (FrameTooLarge, DecodeError) as exc:
            if resyncs and not isinstance(exc, FrameTooLarge):
                _log(f"{who}: skipped a frame: {_describe(exc)}")
                continue
            # The codec cannot resynchronise: tell the peer why, and stop.
            code, reason = (
                (1009, "frame too large") if isinstance(exc, FrameTooLarge)
                else (1007, "invalid frame")
            )
            _log(f"{who}: {_describe(exc)}; closing with {code}")
            await ws.aclose(code, reason)
            return 1
        except (ConnectionClosed, ProtocolError) as exc:
            _log(f"{who}: {_describe(exc)}")
            return 1
        for item in batch:
            _out(format_frame(codec, item))
        await on_frames(batch)


# serve --------------------------------------------------------------------------


async def _run_serve(args: argparse.Namespace) -> int:
    from .server import serve

    codec = make_codec(args.codec, args.max_frame_size)
    stop = asyncio.Event()

    async def handler(framed: Framed[Any]) -> None:
        who = _peer_name(framed)
        _log(f"{who} connected")

        async def echo(batch: list[Any]) -> None:
            if not args.echo:
                return
            try:
                for item in batch:
                    framed.feed(item)
                await framed.flush()
            except (ValueError, TypeError) as exc:  # FrameTooLarge is a ValueError
                _log(f"{who}: could not echo a frame: {_describe(exc)}")
            except (ConnectionClosed, ClosedStreamError):
                # The client closed first: a WebSocket close is not a half-close.
                _log(f"{who}: closed before the echo could be sent")

        stream = _ws_stream_of(framed)
        await _receive_frames(framed, stream, codec=args.codec, who=who, on_frames=echo)
        await stream.aclose()
        _log(f"{who} disconnected (close code {stream.close_code})")

    options: dict[str, Any] = {"close_timeout": args.close_timeout, "text": args.text}
    if args.subprotocol:
        options["subprotocols"] = args.subprotocol
    with _stop_on_signals(stop):
        try:
            server = await serve(handler, args.host, args.port, codec=codec, **options)
        except OSError as exc:
            _log(f"wsframed serve: error: cannot listen on {args.host}:{args.port}: "
                 f"{_describe(exc)}")
            return 1
        for sock in server.sockets:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            _log(f"listening on ws://{shown}:{port}")
        await stop.wait()
        _log("stopping: closing connections with 1001 (going away)")
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.close_timeout + 1):
                await server.wait_closed()
    return 0


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event, *, repeat: Callable[[], None] | None = None
                     ) -> Iterator[None]:
    """Set ``stop`` on SIGINT or SIGTERM while inside; a second signal calls ``repeat``."""
    loop = asyncio.get_running_loop()
    signals = [signal.SIGINT]
    if hasattr(signal, "SIGTERM"):
        signals.append(signal.SIGTERM)

    def on_signal() -> None:
        if stop.is_set() and repeat is not None:
            repeat()
        stop.set()

    installed: list[signal.Signals] = []
    previous: dict[signal.Signals, Any] = {}
    for signum in signals:
        try:
            loop.add_signal_handler(signum, on_signal)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # Windows: no add_signal_handler
            previous[signum] = signal.signal(
                signum, lambda *_: loop.call_soon_threadsafe(on_signal)
            )
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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


async def _run_connect(args: argparse.Namespace) -> int:
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

    from .client import connect

    codec = make_codec(args.codec, args.max_frame_size)
    options: dict[str, Any] = {
        "open_timeout": args.open_timeout,
        "close_timeout": args.close_timeout,
        "text": args.text,
    }
    if args.subprotocol:
        options["subprotocols"] = args.subprotocol
    if args.origin:
        options["origin"] = args.origin
    try:
        framed: Framed[Any] = await connect(args.uri, codec, **options)
    except InvalidStatus as exc:
        _log(f"wsframed connect: error: {args.uri} refused the WebSocket connection "
             f"(HTTP {exc.response.status_code})")
        return 1
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else _describe(exc)
        _log(f"wsframed connect: error: cannot connect to {args.uri}: {reason}")
        return 1

    loop = asyncio.get_running_loop()
    sink, frames = framed.split()
    last_activity = loop.time()
    skipped = 0

    async def note_activity(batch: list[Any]) -> None:
        nonlocal last_activity
        last_activity = loop.time()

    def not_sent(number: int, why: str) -> None:
        nonlocal skipped
        skipped += 1
        _log(f"wsframed connect: input line {number} not sent: {why}")

    # A line's JSON text may be larger than the frame it becomes: leave room.
    max_line = max(4 * codec.max_frame_size, 1024 * 1024)

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

    stop = asyncio.Event()
    receiver = asyncio.create_task(
        _receive_frames(frames, _ws_stream_of(framed), codec=args.codec, who="wsframed connect",
                        on_frames=note_activity)
    )
    sender = asyncio.create_task(send_input())
    stopper = asyncio.create_task(stop.wait())
    status = 0
    try:
        with _stop_on_signals(stop, repeat=lambda: _hard_exit(130)):
            await asyncio.wait({receiver, sender, stopper}, return_when=asyncio.FIRST_COMPLETED)
            failure = sender.exception() if sender.done() and not sender.cancelled() else None
            if failure is not None and not isinstance(
                failure, ConnectionClosed | ClosedStreamError
            ):
                raise failure
            if not receiver.done() and not stopper.done():
                # The input ended. A WebSocket close is not a half-close: replies still
                # in flight when the close frame arrives would be lost, so wait until
                # the server has been quiet for --linger seconds first.
                last_activity = max(last_activity, loop.time())
                while (remaining := last_activity + args.linger - loop.time()) > 0:
                    done, _ = await asyncio.wait({receiver, stopper}, timeout=remaining)
                    if done:
                        break
            if not receiver.done():
                sender.cancel()
                with contextlib.suppress(ConnectionClosed, ClosedStreamError):
                    await sink.close()
                done, _ = await asyncio.wait({receiver}, timeout=args.close_timeout)
                if not done:
                    _log("wsframed connect: the server did not complete the close handshake"
                         f" within {args.close_timeout} s; dropped the connection")
                    status = 1
            if receiver.done() and not receiver.cancelled():
                status = max(status, receiver.result())
    finally:
        for task in (sender, stopper, receiver):
            task.cancel()
        await asyncio.gather(sender, stopper, receiver, return_exceptions=True)
        await _ws_stream_of(framed).aclose(timeout=0.5)
    if skipped and status == 0:
        status = 1
    return status


def _hard_exit(status: int) -> NoReturn:
    """Leave at once (a second Ctrl-C while ``connect`` waits for the close)."""
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    os._exit(status)


async def _run_demo(timeout: float) -> int:
    from .demo import run_demo

    return await run_demo(timeout)


# bridge and bench: provided by their own modules --------------------------------


def _optional_module(name: str) -> tuple[ModuleType | None, str]:
    """Import ``wsframed.NAME`` if this build has it; return it or why not."""
    try:
        module = importlib.import_module(f"wsframed.{name}")
    except ImportError as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == f"wsframed.{name}"
        return None, "" if missing else f" ({type(exc).__name__}: {exc})"
    if not all(hasattr(module, attr) for attr in ("add_arguments", "run_command")):
        return None, " (the module lacks add_arguments/run_command)"
    return module, ""


def _add_optional_command(
    commands: Any, name: str, help_text: str, *, asynchronous: bool
) -> None:
    module, why = _optional_module(name)
    if module is None:
        parser = commands.add_parser(
            name, help=f"{help_text} (not available in this build)",
            description=f"{name}: not available in this build{why}",
        )
        parser.set_defaults(accepts_any_arguments=True)

        def unavailable(args: argparse.Namespace) -> int:
            _log(f"{name}: not available in this build{why}")
            return _EXIT_USAGE

        parser.set_defaults(run=unavailable)
        return
    parser = commands.add_parser(name, help=help_text, description=help_text)
    module.add_arguments(parser)
    run_command = module.run_command

    def run(args: argparse.Namespace) -> int:
        result = asyncio.run(run_command(args)) if asynchronous else run_command(args)
        return int(result)

    parser.set_defaults(run=run)


# Argument parsing and main --------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(_EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _ws_uri(text: str) -> str:
    if not text.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError(f"expected a ws:// or wss:// URI, not {text!r}")
    return text


def _add_codec_options(parser: argparse.ArgumentParser, *, subprotocol_verb: str) -> None:
    parser.add_argument(
        "--codec", choices=CODECS, default="lines",
        help="how bytes are cut into frames (default: lines)",
    )
    parser.add_argument(
        "--max-frame-size", type=positive_int, metavar="BYTES",
        help="the largest frame accepted in either direction (default: the codec's own, "
        "64 KiB for lines and jsonl, 1 MiB for the others)",
    )
    parser.add_argument(
        "--subprotocol", action="append", metavar="NAME",
        help=f"a WebSocket subprotocol to {subprotocol_verb} (repeat for several)",
    )
    parser.add_argument(
        "--close-timeout", type=seconds, default=10.0, metavar="SECONDS",
        help="how long to wait for the close handshake (default: 10)",
    )
    parser.add_argument(
        "--text", choices=("reject", "bytes", "ignore"), default="reject",
        help="what to do with a text message: close with 1003 (reject, the default), "
        "take its UTF-8 bytes as data (bytes, for peers such as browsers or wscat "
        "that send text), or drop it (ignore)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the ``wsframed`` argument parser."""
    parser = _Parser(
        prog="wsframed",
        description="WebSocket connections as byte streams, framed by codecs.",
        epilog="Run 'wsframed demo' for a tour; 'wsframed SUBCOMMAND --help' for details.",
    )
    parser.add_argument("--version", action="version", version=f"wsframed {_version()}")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks and debug logs on errors")
    commands = parser.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)

    demo = commands.add_parser(
        "demo", help="a server and a client in one process, showing each feature",
        description="Start a server and a client on 127.0.0.1 in this process and print a "
        "transcript: lines echoed, msgpack request/response, CBOR, split halves, "
        "oversized frames refused, the close handshake.",
    )
    demo.add_argument("--timeout", type=seconds, default=30.0, metavar="SECONDS",
                      help="give up after this long (default: 30)")
    demo.set_defaults(run=lambda args: asyncio.run(_run_demo(args.timeout)))

    serve = commands.add_parser(
        "serve", help="accept WebSocket connections and print the frames received",
        description="Accept WebSocket connections and print every frame received on "
        "stdout, one per line (msgpack, CBOR and JSON Lines as JSON, bytes as a "
        "Python bytes literal). Logs go to stderr, starting with 'listening on "
        "ws://HOST:PORT'. Ctrl-C (SIGINT) or SIGTERM stops it, exit status 0.",
    )
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=port, default=8765,
                       help="port to listen on, 0 for any free port (default: 8765)")
    serve.add_argument("--echo", action="store_true", help="send every frame back")
    _add_codec_options(serve, subprotocol_verb="accept")
    serve.set_defaults(run=lambda args: asyncio.run(_run_serve(args)))

    connect = commands.add_parser(
        "connect", help="send stdin lines as frames, print received frames",
        description="Connect to URI. Each line of stdin becomes a frame (JSON for "
        "msgpack, cbor and jsonl; the text for lines; the bytes for length, and for "
        "bytes the raw line with its newline). Received frames are printed on stdout, "
        "one per line, as 'serve' prints them. At the end of stdin (or on Ctrl-C), "
        "once the server has been quiet for --linger seconds, the close handshake "
        "starts; the command exits when it completes.",
    )
    connect.add_argument("uri", type=_ws_uri, help="ws://HOST:PORT/PATH or wss://...")
    _add_codec_options(connect, subprotocol_verb="offer")
    connect.add_argument("--origin", help="the Origin header to send")
    connect.add_argument(
        "--linger", type=seconds, default=0.5, metavar="SECONDS",
        help="after the end of stdin, wait until no frame arrived for this long before "
        "closing (default: 0.5; a WebSocket close is not a half-close, so replies "
        "still in flight when the close starts are lost)",
    )
    connect.add_argument("--open-timeout", type=seconds, default=10.0, metavar="SECONDS",
                         help="how long to wait for the connection (default: 10)")
    connect.set_defaults(run=lambda args: asyncio.run(_run_connect(args)))

    _add_optional_command(
        commands, "bridge",
        "pump bytes between a WebSocket and a TCP connection (websockify-compatible)",
        asynchronous=True,
    )
    _add_optional_command(
        commands, "bench", "measure throughput over loopback", asynchronous=False
    )
    return parser


def _version() -> str:
    from . import __version__

    return __version__


class _OneLineFormatter(logging.Formatter):
    """Log records as one line: an exception appears as its type and message."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" ({type(exc).__name__}: {_describe(exc)})"
        return text


def _configure_logging(debug: bool) -> None:
    """Log warnings (everything with ``--debug``) to stderr, unless the host program
    (a test runner, an application calling :func:`main`) configured logging itself."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    if not debug:
        handler.setFormatter(_OneLineFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the ``wsframed`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status; see the module documentation.
    """
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "accepts_any_arguments", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else _EXIT_USAGE
    _configure_logging(args.debug)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return int(run(args))
    except KeyboardInterrupt:
        _log("interrupted")
        return 130
    except BrokenPipeError:
        # stdout was closed (``wsframed connect ... | head``): not an error worth a word.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the exit flush
        return 1
    except Exception as exc:
        if args.debug:
            raise
        _log(f"wsframed: error: {_describe(exc)} ({type(exc).__name__}; "
             "run with --debug for details)")
        return 1
