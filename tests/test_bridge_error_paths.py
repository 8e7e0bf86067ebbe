"""The bridge's error and close paths in-process: what the caller and the peers get.

The caller's mistakes (URLs, options) raise ValueError with exact messages at the
call; a bridge closed by ``close()``, by leaving ``async with`` or by cancelling
``serve_forever()`` closes its WebSocket clients with 1001. Real websockets clients
and TCP servers on 127.0.0.1. Written for mutants of wsframed/bridge/server.py no test
killed (tools/mutation.py; docs/contributing.md, Testing).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from wsframed.bridge import Endpoint, parse_endpoint, serve_bridge

from .test_bridge import echo, tcp_server

pytestmark = pytest.mark.timeout(60)

SHUT_DOWN = (
    r"peer=127\.0\.0\.1:\d+ target=tcp://127\.0\.0\.1:\d+ to_target=4 to_client=4 "
    r"duration=\d+\.\d{3}s close=1001 reason='bridge shutting down'"
)


def shutdown_logged(caplog: pytest.LogCaptureFixture) -> bool:
    [record] = [r for r in caplog.records if r.name == "wsframed.bridge"]
    return re.fullmatch(SHUT_DOWN, record.getMessage()) is not None


@pytest.mark.parametrize(
    ("url", "listening", "message"),
    [
        ("ws://:80/x", False, "'ws://:80/x': no host"),
        ("tcp://user@h:1", False,
         "'tcp://user@h:1': user names, passwords and fragments are not supported"),
        ("ws://h:1/p#frag", False,
         "'ws://h:1/p#frag': user names, passwords and fragments are not supported"),
        ("tcp://h:1/x", False, "'tcp://h:1/x': a tcp:// URL has no path"),
        ("udp://h:1", False,
         "'udp://h:1': expected tcp://HOST:PORT, ws://HOST:PORT[/path] or wss://HOST:PORT[/path]"),
        ("ws://h", True, "'ws://h': no port to listen on (ws://HOST:PORT, 0 for any free port)"),
        ("tcp://h", False, "'tcp://h': no port (tcp://HOST:PORT)"),
        ("tcp://h:65536", False, "'tcp://h:65536': the port must be a number in 0..65535"),
    ],
)
def test_parse_endpoint_refuses_with_the_exact_reason(
    url: str, listening: bool, message: str
) -> None:
    with pytest.raises(ValueError, match=r"^'") as refused:
        parse_endpoint(url, listening=listening)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("ws://h", Endpoint("ws", "h", 80, "")),
        ("wss://h/p?q=1", Endpoint("wss", "h", 443, "/p?q=1")),
        ("WS://h:0", Endpoint("ws", "h", 0, "")),
        ("tcp://h:7/", Endpoint("tcp", "h", 7, "")),
        ("tcp://h:65535", Endpoint("tcp", "h", 65535, "")),
    ],
)
def test_parse_endpoint_defaults(url: str, endpoint: Endpoint) -> None:
    assert parse_endpoint(url) == endpoint


def server_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)


@pytest.mark.parametrize(
    ("listen", "to", "options", "message"),
    [
        ("ws://127.0.0.1:0", "wss://h:1", {},
         "a bridge joins a WebSocket and TCP: --listen ws://... (or wss://) with "
         "--to tcp://HOST:PORT, or --listen tcp://... with --to ws://... (or wss://)"),
        ("tcp://127.0.0.1:0", "tcp://h:1", {},
         "a bridge joins a WebSocket and TCP: --listen ws://... (or wss://) with "
         "--to tcp://HOST:PORT, or --listen tcp://... with --to ws://... (or wss://)"),
        ("wss://127.0.0.1:0", "tcp://h:1", {},
         "listening on wss://127.0.0.1:0 needs a certificate (ssl=, --cert)"),
        ("ws://127.0.0.1:0", "tcp://h:1", {"ssl": "server"},
         "a certificate is for wss:// listen URLs, not ws://127.0.0.1:0"),
        ("tcp://127.0.0.1:0", "ws://h:1", {"ssl": "server"},
         "a certificate is for wss:// listen URLs, not tcp://127.0.0.1:0"),
        ("tcp://127.0.0.1:0", "ws://h:1", {"target_ssl": "client"},
         "TLS options for the target need a wss:// target, not ws://h:1"),
        ("ws://127.0.0.1:0", "tcp://h:1", {"text": "drop"},
         "text must be 'reject' or 'bytes', not 'drop'"),
        ("ws://127.0.0.1:0", "tcp://h:1", {"max_connections": 0},
         "max_connections must be at least 1, not 0"),
        ("ws://127.0.0.1:0", "tcp://h:1", {"idle_timeout": 0},
         "idle_timeout must be positive or None, not 0"),
        ("ws://127.0.0.1:0", "tcp://h:1", {"idle_timeout": -1.5},
         "idle_timeout must be positive or None, not -1.5"),
    ],
)
def test_serve_bridge_refuses_bad_options_at_the_call(
    listen: str, to: str, options: dict[str, object], message: str
) -> None:
    if options.get("ssl") == "server":
        options = {**options, "ssl": server_context()}
    if options.get("target_ssl") == "client":
        options = {**options, "target_ssl": ssl.create_default_context()}
    with pytest.raises(ValueError, match=r"^[a-zT]") as refused:
        serve_bridge(listen, to, **options)  # type: ignore[arg-type]
    assert str(refused.value) == message


def test_serve_bridge_accepts_the_edges_of_its_options() -> None:
    """The least allowed values are allowed; a wss:// target gets the system's
    trusted CAs with host name checking unless given a context."""
    config = serve_bridge("ws://127.0.0.1:0", "tcp://h:1", max_connections=1,
                          idle_timeout=0.001, text="ignore")
    assert (config.max_connections, config.idle_timeout, config.text) == (1, 0.001, "ignore")
    assert config.target_ssl is None
    tunnel = serve_bridge("tcp://127.0.0.1:0", "wss://h:1")
    assert isinstance(tunnel.target_ssl, ssl.SSLContext)
    assert tunnel.target_ssl.check_hostname is True
    assert tunnel.target_ssl.verify_mode is ssl.CERT_REQUIRED
    mine = ssl.create_default_context()
    assert serve_bridge("tcp://127.0.0.1:0", "wss://h:1", target_ssl=mine).target_ssl is mine


async def received_close(url: str, started: asyncio.Event) -> int | None:
    """Connect, echo once through the bridge, signal, then read until the close; the
    code received (its reason is websockets' or the bridge's, whichever closes first)."""
    async with connect(url, compression=None, open_timeout=10) as ws:
        await ws.send(b"ping")
        assert await asyncio.wait_for(ws.recv(), 10) == b"ping"
        started.set()
        try:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        except WsConnectionClosed as closed:
            return None if closed.rcvd is None else closed.rcvd.code


async def test_close_ends_serve_forever_and_closes_clients_with_1001(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wsframed.bridge")
    async with tcp_server(echo) as port:
        bridge = await serve_bridge("ws://127.0.0.1:0", f"tcp://127.0.0.1:{port}")
        url = bridge.url
        forever = asyncio.create_task(bridge.serve_forever())
        started = asyncio.Event()
        client = asyncio.create_task(received_close(url, started))
        await asyncio.wait_for(started.wait(), 10)
        assert bridge.active_connections == 1
        bridge.close()
        bridge.close()  # idempotent
        assert await asyncio.wait_for(client, 10) == 1001
        await asyncio.wait_for(forever, 10)  # returns, raises nothing
        assert bridge.active_connections == 0
        assert shutdown_logged(caplog)
        with pytest.raises(ConnectionRefusedError):
            await connect(url, open_timeout=5)  # no longer listening


async def test_cancelling_serve_forever_closes_the_bridge_then_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wsframed.bridge")
    async with tcp_server(echo) as port:
        bridge = await serve_bridge("ws://127.0.0.1:0", f"tcp://127.0.0.1:{port}")
        forever = asyncio.create_task(bridge.serve_forever())
        started = asyncio.Event()
        client = asyncio.create_task(received_close(bridge.url, started))
        await asyncio.wait_for(started.wait(), 10)
        forever.cancel()
        assert await asyncio.wait_for(client, 10) == 1001
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(forever, 10)
        assert bridge.active_connections == 0
        assert shutdown_logged(caplog)


async def test_leaving_async_with_closes_clients_with_1001(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wsframed.bridge")
    async with tcp_server(echo) as port:
        started = asyncio.Event()
        async with serve_bridge("ws://127.0.0.1:0", f"tcp://127.0.0.1:{port}") as bridge:
            client = asyncio.create_task(received_close(bridge.url, started))
            await asyncio.wait_for(started.wait(), 10)
        assert bridge.active_connections == 0
        assert await asyncio.wait_for(client, 10) == 1001
        assert shutdown_logged(caplog)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "wss://127.0.0.1:0", "--to", "tcp://h:1"],
         "listening on wss://127.0.0.1:0 needs --cert (and --key)"),
        (["--listen", "ws://127.0.0.1:0", "--to", "tcp://h:1", "--key", "k.pem"],
         "--cert/--key are for a wss:// --listen URL, not ws://127.0.0.1:0"),
        (["--listen", "wss://127.0.0.1:0", "--to", "tcp://h:1", "--cert", "/nonexistent.pem"],
         "cannot load --cert /nonexistent.pem: [Errno 2] No such file or directory"),
        (["--listen", "tcp://127.0.0.1:0", "--to", "ws://h:1", "--insecure"],
         "--cafile/--insecure are for a wss:// --to URL, not ws://h:1"),
        (["--listen", "tcp://127.0.0.1:0", "--to", "wss://h:1", "--cafile", "/nonexistent.pem"],
         "cannot load --cafile /nonexistent.pem: [Errno 2] No such file or directory"),
    ],
)
def test_the_command_s_tls_options_refused_with_the_exact_reason(
    argv: list[str], message: str
) -> None:
    from wsframed.bridge import _ssl_contexts

    from .test_bridge import bridge_args

    args = bridge_args(*argv)
    with pytest.raises(ValueError, match=r"^(--|listening|cannot)") as refused:
        _ssl_contexts(args, parse_endpoint(args.listen), parse_endpoint(args.to))
    assert str(refused.value) == message



@pytest.mark.skipif(
    os.environ.get("WSFRAMED_LOOP") == "uvloop",
    reason="uvloop runs the TLS handshake itself, out of the bridge's reach (docs/bridge.md)",
)
async def test_close_aborts_a_tls_handshake_in_progress() -> None:
    """A client that opened TCP to a wss:// bridge and never sent its ClientHello is
    cut when the bridge closes, not left until the 30 s handshake timeout; the slot
    it held is free and ``wait_closed()`` returns."""
    import trustme

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    async with tcp_server(echo) as port:
        bridge = await serve_bridge(
            "wss://127.0.0.1:0", f"tcp://127.0.0.1:{port}", ssl=context,
            ssl_handshake_timeout=30,
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        try:
            async with asyncio.timeout(10):
                while bridge.active_connections != 1:  # counted from the TCP accept
                    await asyncio.sleep(0.01)
            bridge.close()
            await asyncio.wait_for(bridge.wait_closed(), 5)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert bridge.active_connections == 0
        finally:
            writer.close()


async def test_closing_a_tcp_listening_bridge_ends_its_clients_and_stops_listening(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``tcp://`` listen, ``ws://`` target: close() ends each TCP client (end of
    stream), closes the WebSocket to the target with 1001, and the port refuses."""
    from .test_bridge import ws_echo_server

    caplog.set_level(logging.INFO, logger="wsframed.bridge")
    async with ws_echo_server() as target:
        bridge = await serve_bridge("tcp://127.0.0.1:0", target)
        port = bridge.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
            bridge.close()
            await asyncio.wait_for(bridge.wait_closed(), 10)
            assert await asyncio.wait_for(reader.read(), 5) == b""
        finally:
            writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
    [record] = [r for r in caplog.records if r.name == "wsframed.bridge"]
    assert re.fullmatch(
        rf"peer=127\.0\.0\.1:\d+ target={re.escape(target)} to_target=4 to_client=4 "
        r"duration=\d+\.\d{3}s close=1001 reason='bridge shutting down'",
        record.getMessage(),
    )


async def test_a_running_bridge_is_its_own_context_and_offers_half_close_by_default() -> None:
    """``async with await serve_bridge(...)``: the BridgeServer itself closes on exit
    (its client gets 1001); by default the half-close subprotocol is accepted when
    offered, "binary" otherwise."""
    from wsframed.bridge import BINARY_SUBPROTOCOL, HALF_CLOSE_SUBPROTOCOL

    async with tcp_server(echo) as port:
        started = asyncio.Event()
        bridge = await serve_bridge("ws://127.0.0.1:0", f"tcp://127.0.0.1:{port}")
        async with bridge as entered:
            assert entered is bridge
            for offered, chosen in [
                ([HALF_CLOSE_SUBPROTOCOL, BINARY_SUBPROTOCOL], HALF_CLOSE_SUBPROTOCOL),
                ([BINARY_SUBPROTOCOL], BINARY_SUBPROTOCOL),
                (["other"], None),
            ]:
                async with connect(bridge.url, subprotocols=offered,  # type: ignore[arg-type]
                                   compression=None, open_timeout=10) as ws:
                    assert ws.subprotocol == chosen
            client = asyncio.create_task(received_close(bridge.url, started))
            await asyncio.wait_for(started.wait(), 10)
        assert bridge.active_connections == 0
        assert await asyncio.wait_for(client, 10) == 1001
