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
- ``msgpack``, ``cbor``, ``jsonl``: compact JSON, always valid: a byte string, NaN,
  a huge integer, a set, a tag or an extension type as a one-key ``{"$...": ...}``
  object (see ``wsframed.cli.frames``).

A frame that cannot be printed is reported as one line on stderr; the connection goes on.

Everything else (connections opening and closing, warnings) goes to stderr.

One module per part: ``wsframed.cli.frames`` (codecs by name, frames as text),
``wsframed.cli.serve`` (``serve``; receiving and printing frames) and
``wsframed.cli.connect`` (``connect``). This module holds the argument parser and
``main``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, NoReturn

from ..cli_args import add_loop_argument, port, positive_int, seconds
from ..loops import run as run_on_loop
from .connect import _run_connect
from .connect import add_tls_arguments as add_connect_tls_arguments
from .frames import CODECS, SKIP, format_frame, make_codec, parse_input_line
from .serve import _describe, _log, _run_serve
from .serve import add_tls_arguments as add_serve_tls_arguments

__all__ = [
    "CODECS",
    "SKIP",
    "build_parser",
    "format_frame",
    "main",
    "make_codec",
    "parse_input_line",
]

_EXIT_USAGE = 2


async def _run_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return await run_demo(args.timeout)


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
        if asynchronous:
            result = run_on_loop(getattr(args, "loop", "asyncio"), run_command, args)
        else:
            result = run_command(args)
        return int(result)

    parser.set_defaults(run=run)


# Argument parsing and main --------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(_EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _ws_uri(text: str) -> str:
    """A ws:// or wss:// URI that websockets can connect to (checked here, so that a bad
    one is a usage error, exit status 2, like any other bad argument)."""
    from websockets.exceptions import InvalidURI
    from websockets.uri import parse_uri

    if not text.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError(f"expected a ws:// or wss:// URI, not {text!r}")
    try:
        parse_uri(text)
    except InvalidURI as exc:  # "hostname isn't provided", "fragment identifier is ..."
        why = exc.msg
    except ValueError as exc:  # from urllib: "Invalid IPv6 URL", "Port out of range ..."
        why = str(exc)
    else:
        return text
    why = why[:1].lower() + why[1:]
    raise argparse.ArgumentTypeError(f"not a valid WebSocket URI: {text!r} ({why})")


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
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start a server and a client on 127.0.0.1 in this process and print\n"
        "what travels each way, in seven sections:\n\n"
        "  1. Lines, echoed (LinesCodec)\n"
        "  2. msgpack request/response (MsgpackCodec)\n"
        "  3. msgpack-RPC (wsframed.rpc.RpcPeer)\n"
        "  4. CBOR items, echoed (CborCodec)\n"
        "  5. Split halves: one task sends, another receives\n"
        "  6. Oversized frames refused\n"
        "  7. Close handshake",
    )
    demo.add_argument("--timeout", type=seconds, default=30.0, metavar="SECONDS",
                      help="give up after this long (default: 30)")
    add_loop_argument(demo)
    demo.set_defaults(run=lambda args: run_on_loop(args.loop, _run_demo, args))

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
    add_serve_tls_arguments(serve)
    add_loop_argument(serve)
    serve.set_defaults(run=lambda args: run_on_loop(args.loop, _run_serve, args))

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
    add_connect_tls_arguments(connect)
    connect.add_argument(
        "--linger", type=seconds, default=0.5, metavar="SECONDS",
        help="after the end of stdin, wait until no frame arrived for this long before "
        "closing (default: 0.5; a WebSocket close is not a half-close, so replies "
        "still in flight when the close starts are lost)",
    )
    connect.add_argument("--open-timeout", type=seconds, default=10.0, metavar="SECONDS",
                         help="how long to wait for the connection (default: 10)")
    add_loop_argument(connect)
    connect.set_defaults(run=lambda args: run_on_loop(args.loop, _run_connect, args))

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
    from .. import __version__

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
    (a test runner, an application calling ``main``) configured logging itself."""
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
