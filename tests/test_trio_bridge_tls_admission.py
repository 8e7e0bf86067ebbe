"""A ``wss://`` bridge listener under trio, over its connection limit, in-process.

``wsframed.trio.serve_bridge`` with TLS (trustme certificates) and
``max_connections=2``: two wss:// clients are served through it; a third connection is
closed at the accept, before any TLS work (a raw TCP client gets the end of stream
without having sent a byte; a TLS client gets no session); the refusal is logged once;
the count returns to 0 as the clients leave, and a new client is served. Real
websockets.trio clients and a trio TCP echo target on 127.0.0.1.
"""

from __future__ import annotations

import functools
import logging
import ssl
from typing import Any

import pytest
import trio
import trustme
from websockets.trio.client import connect

import wsframed.trio

pytestmark = pytest.mark.timeout(90)

WAIT = 20  # seconds: the bound on every wait (the machine is shared)


async def echo_tcp(stream: trio.SocketStream) -> None:
    async for data in stream:
        await stream.send_all(data)


async def until(predicate: Any) -> None:
    with trio.fail_after(WAIT):
        while not predicate():
            await trio.sleep(0.01)


def test_a_wss_listener_over_its_limit_closes_at_the_accept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ca = trustme.CA()
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ssl)
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    over: dict[str, Any] = {}

    def refusals() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "wsframed.bridge"]

    async def main() -> None:
        async with trio.open_nursery() as targets:
            start = functools.partial(trio.serve_tcp, echo_tcp, 0, host="127.0.0.1")
            [target] = await targets.start(start)
            to = f"tcp://127.0.0.1:{target.socket.getsockname()[1]}"
            async with trio.open_nursery() as nursery:
                bridge = await nursery.start(functools.partial(
                    wsframed.trio.serve_bridge, "wss://127.0.0.1:0", to,
                    ssl=server_ssl, max_connections=2,
                ))
                url = f"wss://127.0.0.1:{bridge.port}"
                with trio.fail_after(WAIT):
                    async with connect(url, ssl=client_ssl) as first, connect(
                        url, ssl=client_ssl
                    ) as second:
                        assert bridge.active_connections == 2
                        # Over the limit: closed at the accept, no TLS handshake. A
                        # raw TCP client that sent nothing reads the end of stream.
                        # websockets.trio bounds a handshake by 10 s: an end within 5
                        # is the refusal, not that timeout.
                        raw = await trio.open_tcp_stream("127.0.0.1", bridge.port)
                        with trio.fail_after(5):
                            over["raw"] = await raw.receive_some(4096)
                        await raw.aclose()
                        with pytest.raises(trio.BrokenResourceError) as refused:
                            async with connect(url, ssl=client_ssl, open_timeout=WAIT):
                                pass
                        over["tls"] = refused.value
                        assert bridge.active_connections == 2
                        # The ones under the limit still work.
                        for client, data in ((first, b"first"), (second, b"second")):
                            await client.send(data)
                            assert await client.recv() == data
                    await until(lambda: bridge.active_connections == 0)
                    async with connect(url, ssl=client_ssl) as again:
                        assert bridge.active_connections == 1
                        await again.send(b"served")
                        assert await again.recv() == b"served"
                    await until(lambda: bridge.active_connections == 0)
                    await until(lambda: len(refusals()) == 2)  # the count: after 1 s
                    bridge.close()
                    await bridge.wait_closed()
            assert bridge.active_connections == 0
            targets.cancel_scope.cancel()

    with caplog.at_level(logging.WARNING, logger="wsframed.bridge"):
        trio.run(main)
    assert over["raw"] == b""
    # trio's TLS handshake with a server that closed without a word: no session.
    assert type(over["tls"]) is trio.BrokenResourceError
    assert type(over["tls"].__cause__) is ssl.SSLEOFError
    first, second = refusals()
    assert first.startswith("refused peer=127.0.0.1:")
    assert first.endswith(": max-connections (2) reached")
    assert second == "refused 1 more connections: max-connections (2) reached"
