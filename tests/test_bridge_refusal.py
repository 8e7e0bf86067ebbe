"""A ``ws://`` bridge over its limit answers 503 only once the client's request ended.

The response used to be written at the accept, before the request: websockets'
asyncio client, under uvloop, could read it before its handshake had sent the
request and failed on its own assertion instead of raising ``InvalidStatus``. Raw
clients on 127.0.0.1 show the order on both loops: nothing arrives before the
request's blank line (even cut across reads), then exactly the 503 and the end of
stream; a client that ends its stream or never finishes its request is closed
unanswered. ``RequestEnd`` (the scanner both loops share) is checked against
``bytes.find`` on every cut.
"""

from __future__ import annotations

import itertools
import socket
import sys

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from wsframed.bridge.admission import REFUSAL, RequestEnd

from .loop_families import families, run
from .test_mutation_admission import (
    REQUEST,
    TCP_CLOSE_WAIT,
    client,
    linger_for,
    read_to_eof,
    tcp_state,
    until,
    ws_bridge,
)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads TCP_INFO"),
]

QUIET = 0.3  # seconds: a response written at the accept would have arrived by now


def pending(sock: socket.socket) -> bytes | None:
    """What ``sock`` can read now without waiting (None: nothing yet, not even EOF)."""
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return None


@families
def test_the_503_waits_for_the_end_of_the_request(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused client that has sent nothing, then all of its request but the last
    byte, reads nothing; the last ``\\n`` brings exactly the 503 and the end of stream."""
    linger_for(monkeypatch, 60)

    async def body() -> None:
        async with ws_bridge(family, max_connections=1) as bridge:
            held = client(bridge.port)
            await until(lambda: bridge.active_connections == 1)
            refused = client(bridge.port)
            await anyio.sleep(QUIET)
            assert pending(refused) is None
            refused.send(REQUEST[:-3])  # "...\r" of the last header line
            await anyio.sleep(QUIET)
            assert pending(refused) is None
            refused.send(REQUEST[-3:-1])  # "\n\r": the blank line cut before its "\n"
            await anyio.sleep(QUIET)
            assert pending(refused) is None
            assert tcp_state(refused) != TCP_CLOSE_WAIT
            refused.send(REQUEST[-1:])
            assert await read_to_eof(refused) == REFUSAL
            held.close()  # the bridge's close need not wait for its handshake to time out
        refused.close()

    run(family, body)


@families
def test_a_client_that_ends_its_stream_before_its_request_gets_no_answer(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a request, then the end of stream: the bridge closes the connection at once
    (well before the 60 s wait), without a 503."""
    linger_for(monkeypatch, 60)

    async def body() -> None:
        async with ws_bridge(family, max_connections=1) as bridge:
            held = client(bridge.port)
            await until(lambda: bridge.active_connections == 1)
            refused = client(bridge.port, REQUEST[:20])
            refused.shutdown(socket.SHUT_WR)
            assert await read_to_eof(refused) == b""
            held.close()
        refused.close()

    run(family, body)


@families
def test_a_request_that_never_ends_is_closed_unanswered_after_the_linger(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Header lines without the blank line: read and dropped until ``LINGER`` after
    the accept, then the end of stream and no response."""
    linger_for(monkeypatch, 0.5)

    async def body() -> None:
        async with ws_bridge(family, max_connections=1) as bridge:
            held = client(bridge.port)
            await until(lambda: bridge.active_connections == 1)
            refused = client(bridge.port, b"GET / HTTP/1.1\r\n" + b"X-Pad: y\r\n" * 1000)
            assert await read_to_eof(refused) == b""
            held.close()
        refused.close()

    run(family, body)


def test_a_websockets_client_over_the_limit_gets_invalid_status_503() -> None:
    """websockets' asyncio client (its handshake sends, then reads) raises
    ``InvalidStatus`` with the 503 and its body, on the asyncio loop the suite runs
    (uvloop under ``WSFRAMED_LOOP=uvloop``, where the early answer broke it)."""

    async def body() -> None:
        async with ws_bridge("asyncio", max_connections=1) as bridge:
            held = client(bridge.port)
            await until(lambda: bridge.active_connections == 1)
            url = f"ws://127.0.0.1:{bridge.port}"
            for _ in range(5):
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(url, open_timeout=20):
                        pass
                response = refused.value.response
                assert (response.status_code, response.body) == (
                    503, b"Too many connections, try again later.\n"
                )
            held.close()

    run("asyncio", body)


@families
def test_the_linger_after_the_503_counts_from_the_answer(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that ends late in its wait (1.2 s of 2) is still read for 2 s after the
    503: a byte sent 1.4 s after the answer (past the first wait's end) is read and
    dropped, not answered with a reset."""
    linger_for(monkeypatch, 2.0)

    async def body() -> None:
        async with ws_bridge(family, max_connections=1) as bridge:
            held = client(bridge.port)
            await until(lambda: bridge.active_connections == 1)
            refused = client(bridge.port)
            await anyio.sleep(1.2)
            refused.send(REQUEST)
            assert await read_to_eof(refused) == REFUSAL
            await anyio.sleep(1.4)
            refused.send(b"x")
            await anyio.sleep(QUIET)  # a reset would have arrived by now
            assert tcp_state(refused) == TCP_CLOSE_WAIT  # still read: it lingers
            held.close()
        refused.close()

    run(family, body)


@families
def test_a_tcp_listener_over_its_limit_closes_at_once_without_a_503(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``tcp://`` listener never speaks HTTP: a client over its limit that sends an
    HTTP request reads the end of stream (or a reset), at once (refused connections of
    a ``ws://`` listener would wait up to 60 s here), never the 503."""
    linger_for(monkeypatch, 60)

    async def body() -> None:
        # The held client's slot stays held while the bridge waits for the target's
        # WebSocket handshake, which this listener never answers.
        target = socket.create_server(("127.0.0.1", 0))
        to = f"ws://127.0.0.1:{target.getsockname()[1]}"
        async with ws_bridge(
            family, listen="tcp://127.0.0.1:0", to=to, max_connections=1
        ) as bridge:
            held = client(bridge.port, b"held")
            await until(lambda: bridge.active_connections == 1)
            refused = client(bridge.port, REQUEST)
            try:
                answer = await read_to_eof(refused)
            except ConnectionResetError:
                answer = b""
            assert answer == b""
            held.close()
            target.close()  # resets the held connection's dial: the bridge ends at once
        refused.close()

    run(family, body)


@given(
    st.lists(st.sampled_from([b"\r", b"\n", b"a", b"\r\n", b"\r\n\r\n"]), max_size=12),
    st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_request_end_agrees_with_find_on_every_cut(
    pieces: list[bytes], cuts: list[int]
) -> None:
    """Fed in any pieces, ``RequestEnd.feed`` turns True with the piece that completes
    the first ``\\r\\n\\r\\n``, never before."""
    data = b"".join(pieces)
    end = data.find(b"\r\n\r\n")
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    request = RequestEnd()
    ended = False
    for start, stop in itertools.pairwise(bounds):
        ended = request.feed(data[start:stop]) or ended
        assert ended == (end != -1 and end + 4 <= stop)


@pytest.mark.parametrize(
    ("pieces", "ends"),
    [
        ([b"\r\n\r", b"\n"], [False, True]),  # the blank line's last byte alone
        ([b"ab\r", b"\n\r\nc"], [False, True]),  # its last three bytes first in a piece
        ([b"\r", b"\n", b"\r", b"\n"], [False, False, False, True]),
        ([b"\r\n\r", b"x\n", b"\r\n"], [False, False, False]),
        ([b"GET / HTTP/1.1\r\n\r\n"], [True]),
    ],
)
def test_request_end_on_cuts_inside_the_blank_line(
    pieces: list[bytes], ends: list[bool]
) -> None:
    """Each ``feed`` says, exactly, whether the headers have ended."""
    request = RequestEnd()
    fed = [request.feed(piece) for piece in pieces]
    assert fed == ends
    assert [type(end) for end in fed] == [bool] * len(ends)


def test_request_end_keeps_three_bytes_whatever_it_is_fed() -> None:
    """A megabyte without the blank line leaves three bytes kept (constant memory)."""
    request = RequestEnd()
    for _ in range(16):
        assert not request.feed(b"X-Pad: y\r\n" * 6553 + b"z\r\n\r")
    assert request._tail == b"\r\n\r"
    assert request.feed(b"\n")
