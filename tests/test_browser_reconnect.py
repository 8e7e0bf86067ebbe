"""The reconnecting loop of Pyodide, checked on CPython.

In Pyodide, ``async for framed in connect(...)`` runs ``connect._reconnecting_in_browser``
over the browser's WebSocket (tests/interop/test_pyodide.py,
``test_the_reconnecting_loop_in_pyodide``). Here the same loop runs over websockets
(what ``connect`` opens outside Pyodide) against real servers on 127.0.0.1, and its
delays and retry decision are compared with websockets' own.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any

import pytest
import websockets.client

from wsframed import ConnectionClosed, Framed, connect, serve
from wsframed.backends import browser
from wsframed.client import _browser_options
from wsframed.codecs import LinesCodec


def test_the_delays_are_websockets_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same random draw for both: a delay below 5 s first, then 3.1 s growing by
    # 1.618 up to 90 s, then 90 s for ever.
    monkeypatch.setattr("random.random", lambda: 0.5)
    ours = list(itertools.islice(browser.backoff(), 12))
    assert ours == list(itertools.islice(websockets.client.backoff(), 12))
    assert ours[:2] == [2.5, 3.1]
    assert ours[8:] == [pytest.approx(89.99353567), 90.0, 90.0, 90.0]


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (ConnectionRefusedError("could not open a WebSocket"), True),
        (TimeoutError("did not open within 10 s"), True),
        (OSError("any"), True),
        (ValueError("the browser refuses the WebSocket URL"), False),
        (TypeError("connect() in Pyodide takes ..."), False),
    ],
)
def test_which_failed_connects_are_retried(exc: Exception, retried: bool) -> None:
    assert browser.process_exception(exc) is (None if retried else exc)


def test_the_loop_options_are_not_given_to_the_websocket() -> None:
    options = {
        "compression": None,
        "close_timeout": 10,
        "reconnect_delays": browser.backoff,
        "process_exception": browser.process_exception,
        "open_timeout": 5,
    }
    assert _browser_options(options) == {"open_timeout": 5}
    with pytest.raises(TypeError, match="the browser has no ping_interval"):
        _browser_options({"ping_interval": 20})


def refused_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{sock.getsockname()[1]}"


async def never_connects(loop: connect[Any]) -> None:
    async for _ in loop._reconnecting_in_browser():
        pytest.fail("connected")


async def test_the_loop_goes_round_after_a_connection_ends() -> None:
    connections: list[int] = []
    closes: list[int | None] = []

    async def restart(framed: Framed[str]) -> None:
        connections.append(len(connections) + 1)
        await framed.send(f"connection {len(connections)}")
        if len(connections) == 1:
            await framed.stream.aclose(1011, "restarting")
            return
        async for _ in framed:  # until the client closes
            pass
        closes.append(framed.close_code)

    seen: list[Any] = []
    async with serve(restart, "127.0.0.1", 0, LinesCodec()) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        loop = connect(url, LinesCodec(), reconnect_delays=lambda: iter([0.01] * 5))
        async with asyncio.timeout(20):
            async for framed in loop._reconnecting_in_browser():
                try:
                    async for line in framed:
                        seen.append(line)
                        if line == "connection 2":
                            break
                except ConnectionClosed as exc:
                    seen.append([exc.code, exc.reason])
                    continue
                await framed.aclose()
                break
            while not closes:
                await asyncio.sleep(0.01)
    assert seen == ["connection 1", [1011, "restarting"], "connection 2"]
    assert closes == [1000]


async def test_failed_connects_are_retried_until_the_delays_run_out() -> None:
    attempts: list[str] = []

    def recorded(exc: Exception) -> Exception | None:
        attempts.append(type(exc).__name__)
        return browser.process_exception(exc)

    loop = connect(
        refused_url(),
        LinesCodec(),
        reconnect_delays=lambda: iter([0.01, 0.02]),
        process_exception=recorded,
    )
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(never_connects(loop), 20)
    assert attempts == ["ConnectionRefusedError"] * 3  # at once, then after each delay


@pytest.mark.parametrize("decision", ["returned", "raised"])
async def test_process_exception_ends_the_loop(decision: str) -> None:
    def fatal(exc: Exception) -> Exception | None:
        error = RuntimeError(f"giving up: {type(exc).__name__}")
        if decision == "raised":
            raise error
        return error

    loop = connect(refused_url(), LinesCodec(), process_exception=fatal)
    with pytest.raises(RuntimeError, match="giving up: ConnectionRefusedError") as info:
        await asyncio.wait_for(never_connects(loop), 20)
    if decision == "returned":  # as websockets: raised from the failure
        assert isinstance(info.value.__cause__, ConnectionRefusedError)
