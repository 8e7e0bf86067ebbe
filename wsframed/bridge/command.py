"""The ``wsframed bridge`` command, also run by ``python -m wsframed.bridge``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl as ssl_module
import sys

from ..cli_args import add_loop_argument, positive_int, seconds
from ..loops import in_trio, run
from .pumping import HALF_CLOSE_SUBPROTOCOL, describe_failure
from .server import DEFAULT_MAX_CONNECTIONS, Endpoint, logger, parse_endpoint, serve_bridge

__all__ = ["add_arguments", "run_command"]

_EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``wsframed bridge`` options to ``parser``."""
    parser.description = (
        "Pump bytes between WebSocket and TCP connections, websockify-compatible. "
        "--listen ws://HOST:PORT --to tcp://HOST:PORT gives each WebSocket client its "
        "own TCP connection to the target; --listen tcp://HOST:PORT --to "
        "ws://HOST:PORT/path is the reverse, so two bridges make a tunnel. Prints "
        "'listening on URL -> TARGET' on stderr, then one line per connection; "
        "SIGINT or SIGTERM stops it (exit status 0)."
    )
    parser.add_argument("--listen", required=True, metavar="URL",
                        help="ws://HOST:PORT[/path], wss://HOST:PORT[/path] or "
                        "tcp://HOST:PORT; the port is required (0: any free port)")
    parser.add_argument("--to", required=True, metavar="URL",
                        help="tcp://HOST:PORT (for a ws/wss listener) or "
                        "ws(s)://HOST:PORT/path (for a tcp listener)")
    parser.add_argument("--text", choices=("reject", "bytes"), default="reject",
                        help="text messages: close with 1003 (reject, the default, as "
                        "websockify) or forward their UTF-8 bytes (bytes)")
    parser.add_argument("--max-connections", type=positive_int, default=DEFAULT_MAX_CONNECTIONS,
                        metavar="N", help="connections held at once, each counted from "
                        "its TCP accept (handshakes included); more are refused at once "
                        "(WebSocket: HTTP 503; TCP: closed) "
                        f"(default: {DEFAULT_MAX_CONNECTIONS})")
    parser.add_argument("--idle-timeout", type=seconds, default=0.0, metavar="SECONDS",
                        help="close a connection after this long without a byte either "
                        "way (WebSocket close 1001); 0 never (default)")
    parser.add_argument("--cert", metavar="FILE",
                        help="certificate chain (PEM) to listen on wss://")
    parser.add_argument("--key", metavar="FILE",
                        help="private key (PEM) of --cert, if not in the same file")
    parser.add_argument("--cafile", metavar="FILE",
                        help="trust the CA certificates in FILE for a wss:// target")
    parser.add_argument("--insecure", action="store_true",
                        help="do not verify a wss:// target's certificate")
    parser.add_argument("--no-half-close", dest="half_close", action="store_false",
                        help=f"do not offer or accept the {HALF_CLOSE_SUBPROTOCOL} "
                        "subprotocol (TCP half-close between two wsframed bridges)")
    parser.add_argument("--open-timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="the most time to reach the target (default: 10)")
    parser.add_argument("--close-timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="the most time each closing step may take (default: 10)")
    parser.add_argument("--quiet", action="store_true",
                        help="no line per connection (refusals and errors are still shown)")
    add_loop_argument(parser)



def _ssl_contexts(
    args: argparse.Namespace, listen: Endpoint, to: Endpoint
) -> tuple[ssl_module.SSLContext | None, ssl_module.SSLContext | None]:
    """Build the server and target TLS contexts from the options (ValueError if wrong)."""
    server_ssl = None
    if listen.scheme == "wss" and args.cert is None:
        raise ValueError(f"listening on {listen} needs --cert (and --key)")
    if args.cert is not None or args.key is not None:
        if listen.scheme != "wss":
            raise ValueError(f"--cert/--key are for a wss:// --listen URL, not {listen}")
        server_ssl = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_SERVER)
        try:
            server_ssl.load_cert_chain(args.cert, args.key)
        except (OSError, ssl_module.SSLError) as exc:
            raise ValueError(f"cannot load --cert {args.cert}: {exc}") from None
    target_ssl = None
    if (args.cafile is not None or args.insecure) and to.scheme != "wss":
        raise ValueError(f"--cafile/--insecure are for a wss:// --to URL, not {to}")
    if to.scheme == "wss":
        try:
            target_ssl = ssl_module.create_default_context(cafile=args.cafile)
        except (OSError, ssl_module.SSLError) as exc:
            raise ValueError(f"cannot load --cafile {args.cafile}: {exc}") from None
        if args.insecure:
            target_ssl.check_hostname = False
            target_ssl.verify_mode = ssl_module.CERT_NONE
    return server_ssl, target_ssl


def _error(message: str) -> None:
    print(f"wsframed bridge: error: {message}", file=sys.stderr, flush=True)


async def run_command(args: argparse.Namespace) -> int:
    """Run ``wsframed bridge`` until SIGINT or SIGTERM; return the exit status.

    Runs on the loop it is awaited in, asyncio or trio (``--loop`` chooses which
    one ``wsframed bridge`` starts).

    0 after a signal; 1 when it cannot listen; 2 for bad options (one line on
    stderr). Cancelling it closes the bridge and re-raises ``CancelledError``.
    """
    try:
        listen, to = parse_endpoint(args.listen, listening=True), parse_endpoint(args.to)
        server_ssl, target_ssl = _ssl_contexts(args, listen, to)
        bridge = serve_bridge(
            args.listen, args.to, text=args.text, max_connections=args.max_connections,
            idle_timeout=args.idle_timeout or None, ssl=server_ssl, target_ssl=target_ssl,
            half_close=args.half_close, open_timeout=args.open_timeout,
            close_timeout=args.close_timeout,
        )
    except ValueError as exc:
        _error(str(exc))
        return _EXIT_USAGE
    if args.quiet:
        logger.setLevel(logging.WARNING)
    elif logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    if in_trio():
        return await _run_on_trio(bridge, listen, to)
    try:
        server = await bridge
    except OSError as exc:
        _error(f"cannot listen on {listen}: {describe_failure(exc)}")
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if signum is None:
            continue
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not main thread
            continue
        installed.append(signum)
    try:
        print(f"listening on {server.url} -> {to}", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        server.close()
        await server.wait_closed()
    return 0


async def _run_on_trio(bridge: serve_bridge, listen: Endpoint, to: Endpoint) -> int:
    """``run_command`` under trio: the bridge in a nursery, stopped by SIGINT or SIGTERM."""
    import trio

    from .trio import run_bridge

    signals = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    with trio.open_signal_receiver(*signals) as received:
        async with trio.open_nursery() as nursery:
            try:
                server = await nursery.start(run_bridge, bridge)
            except OSError as exc:
                _error(f"cannot listen on {listen}: {describe_failure(exc)}")
                return 1
            print(f"listening on {server.url} -> {to}", file=sys.stderr, flush=True)
            try:
                async for _ in received:
                    break
            finally:
                server.close()  # the nursery waits until every connection has ended
    return 0


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsframed.bridge")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        return run(args.loop, run_command, args)
    except KeyboardInterrupt:
        return 130
