"""``wsframed serve``: accept WebSocket connections and print the frames received.

Also what ``connect`` shares with it: ``_receive_frames`` (print frames until the
end of stream), ``_stop_on_signals``, and the output helpers (``_out`` writes
stdout, ``_log`` stderr, ``_describe`` turns an exception into one line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import (
    ClosedStreamError,
    ConnectionClosed,
    DecodeError,
    EndOfStream,
    FrameTooLarge,
    IncompleteFrame,
    ProtocolError,
)
from ..loops import in_trio, system_error
from .frames import format_frame, make_codec

if TYPE_CHECKING:
    from ..framed import Framed, FramedStream

__all__: list[str] = []  # internal to wsframed.cli: the command is wsframed.cli.main

_RESYNCING = frozenset({"lines", "jsonl"})  # codecs that go on after a bad frame


# Output -------------------------------------------------------------------------


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


_MAX_DESCRIPTION = 200  # characters: a peer's data in an error message cannot flood the log


def _describe(exc: BaseException) -> str:
    """One line for an exception: its message, or its type when it has none.

    At most ``_MAX_DESCRIPTION`` characters (then ``...``), whatever the message.
    """
    exc = system_error(exc)  # trio's "all attempts to connect ... failed"
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    if isinstance(exc, ssl.SSLCertVerificationError):  # errno is OpenSSL's, not the OS's
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or type(exc).__name__}"
    if isinstance(exc, OSError) and exc.errno:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    try:
        text = str(exc)
    except Exception:  # a message that cannot be built says nothing more than its type
        text = ""
    head = text.strip()[: _MAX_DESCRIPTION + 1]
    line = head.splitlines()[0] if head else type(exc).__name__
    return line if len(line) <= _MAX_DESCRIPTION else line[: _MAX_DESCRIPTION - 3] + "..."


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

    ``ws`` is the WsStream under ``frames``. A frame that decodes but cannot be
    printed is reported (one line) and skipped. A frame that fails to decode is reported
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
            try:
                text = format_frame(codec, item)
            except Exception as exc:  # any repr() may raise: report it, go on
                _log(f"{who}: cannot print a frame: {type(exc).__name__}: {_describe(exc)}")
                continue
            _out(text)
        await on_frames(batch)


# serve --------------------------------------------------------------------------


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """``serve``'s TLS options: listen on wss:// with a certificate and its key."""
    parser.add_argument("--cert", metavar="FILE",
                        help="certificate chain (PEM) to listen on wss:// instead of ws://")
    parser.add_argument("--key", metavar="FILE",
                        help="private key (PEM) of --cert, if not in the same file")


def _server_ssl(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context of --cert/--key, or None; ValueError naming the bad option."""
    if args.cert is None:
        if args.key is not None:
            raise ValueError("--key needs --cert")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(args.cert, args.key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load --cert {args.cert}: {_describe(exc)}") from None
    return context


async def _run_serve(args: argparse.Namespace) -> int:
    from ..server import serve

    codec = make_codec(args.codec, args.max_frame_size)
    try:
        server_ssl = _server_ssl(args)
    except ValueError as exc:
        _log(f"wsframed serve: error: {exc}")
        return 2

    async def handler(framed: Framed[Any]) -> None:
        who = _peer_name(framed)
        _log(f"{who} connected")

        async def echo(batch: list[Any]) -> None:
            if not args.echo:
                return
            try:
                for item in batch:
                    try:
                        framed.feed(item)
                    except (ConnectionClosed, ClosedStreamError):
                        raise
                    except Exception as exc:  # the peer's item, any encoder
                        # error (FrameTooLarge, nesting, a type the encoder lacks): skip it.
                        _log(f"{who}: could not echo a frame: {type(exc).__name__}: "
                             f"{_describe(exc)}")
                await framed.flush()
            except (ConnectionClosed, ClosedStreamError):
                # The client closed first: a WebSocket close is not a half-close.
                _log(f"{who}: closed before the echo could be sent")

        stream = _ws_stream_of(framed)
        await _receive_frames(framed, stream, codec=args.codec, who=who, on_frames=echo)
        await stream.aclose()
        _log(f"{who} disconnected (close code {stream.close_code})")

    options: dict[str, Any] = {"close_timeout": args.close_timeout, "text": args.text}
    if args.subprotocol:  # the user's names replace the codec's: no negotiation
        options["subprotocols"] = args.subprotocol
    else:  # a client naming another wsframed codec is refused at the handshake
        options["negotiate"] = True
    if server_ssl is not None:
        options["ssl"] = server_ssl
    scheme = "ws" if server_ssl is None else "wss"
    if in_trio():
        return await _serve_on_trio(args, handler, codec, options, scheme)
    stop = asyncio.Event()
    with _stop_on_signals(stop):
        try:
            server = await serve(handler, args.host, args.port, codec=codec, **options)
        except OSError as exc:
            _log(f"wsframed serve: error: cannot listen on {args.host}:{args.port}: "
                 f"{_describe(exc)}")
            return 1
        try:
            _log_listening(scheme, server.sockets)
            await stop.wait()
            _log("stopping: closing connections with 1001 (going away)")
        finally:  # also when cancelled (serve run inside a program or a test)
            server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.close_timeout + 1):
                    await server.wait_closed()
    return 0


def _log_listening(scheme: str, sockets: Iterable[Any]) -> None:
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        _log(f"listening on {scheme}://{shown}:{port}")


async def _serve_on_trio(
    args: argparse.Namespace,
    handler: Callable[[Framed[Any]], Awaitable[None]],
    codec: Any,
    options: dict[str, Any],
    scheme: str,
) -> int:
    """``serve`` under trio (``--loop trio``): the same handler, websockets.trio's server."""
    import trio

    from .. import trio as wsframed_trio

    signals = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    with trio.open_signal_receiver(*signals) as received:
        async with trio.open_nursery() as nursery:
            try:
                server = await nursery.start(functools.partial(
                    wsframed_trio.serve, handler, args.host, args.port, codec, **options
                ))
            except OSError as exc:
                _log(f"wsframed serve: error: cannot listen on {args.host}:{args.port}: "
                     f"{_describe(exc)}")
                return 1
            _log_listening(scheme, [listener.socket for listener in server.listeners])
            async for _ in received:
                break
            _log("stopping: closing connections with 1001 (going away)")
            with trio.move_on_after(args.close_timeout + 1):
                await server.aclose()
            nursery.cancel_scope.cancel()
    return 0


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT or SIGTERM while inside."""
    with _on_signals(stop.set):
        yield


@contextlib.contextmanager
def _on_signals(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback()`` in the loop on SIGINT or SIGTERM while inside (asyncio or trio)."""
    signals = [signal.SIGINT]
    if hasattr(signal, "SIGTERM"):
        signals.append(signal.SIGTERM)
    loop: asyncio.AbstractEventLoop | None = None
    if in_trio():
        import trio

        token = trio.lowlevel.current_trio_token()

        def call() -> None:
            token.run_sync_soon(callback)  # safe from a signal handler
    else:
        loop = asyncio.get_running_loop()

        def call() -> None:
            assert loop is not None
            loop.call_soon_threadsafe(callback)
    installed: list[signal.Signals] = []
    previous: dict[signal.Signals, Any] = {}
    for signum in signals:
        try:
            if loop is None:
                raise NotImplementedError  # trio: a handler handing over to the loop
            loop.add_signal_handler(signum, callback)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # Windows: no add_signal_handler
            previous[signum] = signal.signal(signum, lambda *_: call())
    try:
        yield
    finally:
        for signum in installed:
            assert loop is not None
            loop.remove_signal_handler(signum)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
