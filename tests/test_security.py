"""Security: origin checks (CSWSH), TLS, finite defaults everywhere, no code execution
from peer data. The threat model and the limits are in docs/security.md.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import math
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

import wsframed
from wsframed import Framed, WsStream
from wsframed.codecs import (
    BytesCodec,
    CborCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)

from .peers import KiB, MiB

PACKAGE = Path(wsframed.__file__).resolve().parent


async def echo(framed: Framed[Any]) -> None:
    async for item in framed:
        await framed.send(item)


# Cross-Site WebSocket Hijacking: the Origin check ---------------------------------


@pytest.fixture
async def origin_server() -> AsyncIterator[str]:
    async with wsframed.serve(
        echo, "127.0.0.1", 0, codec=MsgpackCodec(), origins=["https://app.example"]
    ) as server:
        yield f"ws://127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://app.example",  # same host, other scheme: another origin
        "https://app.example.evil.example",
        "https://APP.EXAMPLE:443",
        "null",  # sandboxed iframes and file:// pages send this
    ],
)
async def test_a_disallowed_origin_is_refused_with_403(origin_server: str, origin: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        await ws_connect(origin_server, origin=origin)  # type: ignore[arg-type]
    assert info.value.response.status_code == 403


async def test_a_missing_origin_is_refused_when_origins_are_given(origin_server: str) -> None:
    """Browsers always send Origin; a request without one is not from the allowed
    page. Non-browser clients are let in only if ``None`` is in ``origins``."""
    with pytest.raises(InvalidStatus) as info:
        await ws_connect(origin_server)
    assert info.value.response.status_code == 403


async def test_the_allowed_origin_is_served(origin_server: str) -> None:
    async with wsframed.connect(
        origin_server,
        MsgpackCodec(),
        origin="https://app.example",  # type: ignore[arg-type]
    ) as framed:
        await framed.send({"hello": "world"})
        assert await asyncio.wait_for(framed.recv(), 5) == {"hello": "world"}


async def test_non_browser_clients_can_be_allowed_alongside_an_origin() -> None:
    async with wsframed.serve(
        echo, "127.0.0.1", 0, codec=MsgpackCodec(), origins=["https://app.example", None]
    ) as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with wsframed.connect(url, MsgpackCodec()) as framed:
            await framed.send(1)
            assert await asyncio.wait_for(framed.recv(), 5) == 1
        with pytest.raises(InvalidStatus):
            await ws_connect(url, origin="https://evil.example")  # type: ignore[arg-type]


# TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) for a certificate for localhost / 127.0.0.1."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_wss_round_trip_with_a_certificate_made_for_the_test(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, client_ctx = tls
    async with wsframed.serve(echo, "127.0.0.1", 0, codec=MsgpackCodec(), ssl=server_ctx) as srv:
        for host in ("localhost", "127.0.0.1"):
            url = f"wss://{host}:{srv.port}"
            async with wsframed.connect(url, MsgpackCodec(), ssl=client_ctx) as framed:
                items = [{"n": n, "blob": bytes(n * 1000)} for n in range(20)]
                await framed.send_all(items)
                got = [await asyncio.wait_for(framed.recv(), 5) for _ in items]
                assert got == items
                ssl_object = framed.get_extra_info("ssl_object")
                assert ssl_object is not None
                assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
                assert ssl_object.getpeercert()["subjectAltName"]


async def test_wss_refuses_a_certificate_that_is_not_trusted(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, _ = tls
    async with wsframed.serve(echo, "127.0.0.1", 0, codec=MsgpackCodec(), ssl=server_ctx) as srv:
        with pytest.raises(ssl.SSLCertVerificationError):
            await wsframed.connect(
                f"wss://localhost:{srv.port}", MsgpackCodec(), ssl=ssl.create_default_context()
            )


async def test_wss_refuses_a_certificate_for_another_host(
    ca: trustme.CA, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.example").configure_cert(server_ctx)
    _, client_ctx = tls
    async with wsframed.serve(echo, "127.0.0.1", 0, codec=MsgpackCodec(), ssl=server_ctx) as srv:
        with pytest.raises(ssl.SSLCertVerificationError, match=r"match|mismatch"):
            await wsframed.connect(f"wss://localhost:{srv.port}", MsgpackCodec(), ssl=client_ctx)


async def test_plain_ws_to_a_tls_port_fails_fast_instead_of_hanging(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, _ = tls
    async with wsframed.serve(echo, "127.0.0.1", 0, codec=MsgpackCodec(), ssl=server_ctx) as srv:
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017, PT011 - any handshake failure will do
            await wsframed.connect(f"ws://127.0.0.1:{srv.port}", MsgpackCodec(), open_timeout=2)
        assert time.monotonic() - started < 3


# Handshake abuse ----------------------------------------------------------------------


async def test_a_client_that_never_sends_its_handshake_is_dropped_after_open_timeout() -> None:
    """Slowloris: open TCP connections and send nothing (or a byte at a time)."""
    async with wsframed.serve(
        echo, "127.0.0.1", 0, codec=MsgpackCodec(), open_timeout=0.5
    ) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\n")
        started = time.monotonic()
        async with asyncio.timeout(5):
            while await reader.read(1024):
                pass
        assert time.monotonic() - started < 0.5 + 1.0
        writer.close()


async def test_an_oversized_handshake_header_is_refused() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (256 * KiB) + b"\r\n\r\n")
        with_status = await asyncio.wait_for(reader.read(1024), 5)
        assert not with_status.startswith(b"HTTP/1.1 101")
        writer.close()


# No default is unlimited ---------------------------------------------------------------

# Parameter names that are limits: each must have a finite, positive default.
LIMIT_WORDS = ("max", "limit", "size", "queue", "timeout", "high_water", "concurrency")


def limit_defaults(func: Callable[..., Any]) -> dict[str, Any]:
    """The defaults of ``func``'s parameters whose names say they are limits."""
    return {
        name: p.default
        for name, p in inspect.signature(func).parameters.items()
        if any(word in name for word in LIMIT_WORDS) and p.default is not inspect.Parameter.empty
    }


def is_finite_positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value > 0
        and math.isfinite(value)
    )


def _rpc_peer() -> Any:
    try:
        from wsframed.rpc import RpcPeer
    except ImportError:  # pragma: no cover - rpc not part of this build
        return None
    return RpcPeer


@pytest.mark.parametrize(
    "func",
    [
        WsStream.__init__,
        Framed.__init__,
        wsframed.serve.__init__,
        wsframed.connect.__init__,
        BytesCodec.__init__,
        LinesCodec.__init__,
        JsonLinesCodec.__init__,
        LengthPrefixedCodec.__init__,
        MsgpackCodec.__init__,
        CborCodec.__init__,
    ],
    ids=lambda f: f.__qualname__,
)
def test_every_limit_parameter_has_a_finite_default(func: Callable[..., Any]) -> None:
    defaults = limit_defaults(func)
    assert defaults, f"{func.__qualname__} has no limit parameters?"
    for name, value in defaults.items():
        assert is_finite_positive(value), f"{func.__qualname__}({name}={value!r})"


def test_rpc_peer_bounds_requests_calls_and_waits_by_default() -> None:
    peer = _rpc_peer()
    if peer is None:
        pytest.skip("wsframed.rpc is not available")
    defaults = limit_defaults(peer.__init__)
    # the peer's requests, this side's calls in flight, and each call's wait
    assert defaults == {"max_concurrency": 64, "max_pending": 1024, "request_timeout": 60.0}


@pytest.mark.parametrize(
    ("codec", "limit"),
    [
        (BytesCodec(), MiB),
        (LinesCodec(), 64 * KiB),
        (JsonLinesCodec(), 64 * KiB),
        (LengthPrefixedCodec(), MiB),
        (LengthPrefixedCodec(8), MiB),
        (MsgpackCodec(), MiB),
        (CborCodec(), MiB),
    ],
    ids=repr,
)
def test_every_codec_has_a_finite_frame_limit_by_default(codec: Any, limit: int) -> None:
    assert codec.max_frame_size == limit  # the documented default (docs/security.md)


def test_cbor_nesting_is_bounded_by_default() -> None:
    assert CborCodec().max_depth == 256


async def test_serve_and_connect_hand_websockets_finite_limits() -> None:
    """Inspect the live websockets connections made by serve() and connect() with
    default options: message size, queue, write buffer, keepalive and close timeouts
    are all bounded, compression is off, and the WsStream's own limits are set."""
    seen: dict[str, Any] = {}

    async def handler(framed: Framed[Any]) -> None:
        seen["server"] = framed
        await framed.recv()

    async with (
        wsframed.serve(handler, "127.0.0.1", 0, codec=MsgpackCodec()) as server,
        wsframed.connect(f"ws://127.0.0.1:{server.port}", MsgpackCodec()) as client,
    ):
        await client.send(1)
        async with asyncio.timeout(5):
            while "server" not in seen:
                await asyncio.sleep(0.01)
        for framed in (client, seen["server"]):
            stream = framed.stream
            assert isinstance(stream, WsStream)
            conn = stream.get_extra_info("connection")
            assert conn.protocol.max_message_size == MiB
            assert conn.max_queue_high == 16
            assert conn.write_limit_high == 32 * KiB
            assert conn.ping_interval == 20
            assert conn.ping_timeout == 20
            assert conn.close_timeout == 10
            assert conn.protocol.extensions == []  # no permessage-deflate: no bombs
            assert stream._limit == 64 * KiB
            assert stream._event_queue_size == 256
            assert stream._write_chunk_size == 64 * KiB
            assert stream._close_timeout == 10


def test_websockets_bounds_the_opening_handshake() -> None:
    from websockets import http11

    assert http11.MAX_LINE_LENGTH <= 8192
    assert http11.MAX_NUM_HEADERS <= 128
    assert MiB >= http11.MAX_BODY_SIZE


# No code execution from peer data ----------------------------------------------------

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill",
                     "cloudpickle", "jsonpickle", "yaml"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "input"}
FORBIDDEN_ATTRIBUTES = {("os", "system"), ("os", "popen"), ("pickle", "loads"),
                        ("marshal", "loads")}


def test_the_package_has_no_pickle_eval_exec_or_shell() -> None:
    offences = []
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]] if node.level == 0 else []
            else:
                names = []
            offences += [f"{where}:{node.lineno}: imports {n}" for n in names
                         if n in FORBIDDEN_MODULES]
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                    offences.append(f"{where}:{node.lineno}: calls {func.id}()")
                if (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and (func.value.id, func.attr) in FORBIDDEN_ATTRIBUTES
                ):
                    offences.append(f"{where}:{node.lineno}: calls {func.value.id}.{func.attr}()")
                for keyword in node.keywords:
                    if (
                        keyword.arg == "shell"
                        and isinstance(keyword.value, ast.Constant)
                        and keyword.value.value is True
                    ):
                        offences.append(f"{where}:{node.lineno}: shell=True")
    assert offences == []


def test_codecs_do_not_decode_into_code() -> None:
    """msgpack ext types and unknown CBOR tags stay inert data by default."""
    ext = MsgpackCodec().decoder()
    ext.feed(b"\xd4\x05\x01")  # fixext 1, type 5
    (value,) = list(ext)
    assert type(value).__name__ == "ExtType"
    tagged = CborCodec().decoder()
    tagged.feed(b"\xd9\x27\x0f\x01")  # tag 9999 (unassigned) around 1
    (value,) = list(tagged)
    assert type(value).__name__ == "CBORTag"
    assert (value.tag, value.value) == (9999, 1)


def test_cbor_shared_references_from_the_peer_are_refused_by_default() -> None:
    def dag(levels: int) -> bytes:
        # shareable([ shareable([...]), sharedref(child) ]): each level doubles.
        def level(i: int) -> bytes:
            if i == levels:
                return b"\xd8\x1c\x81\x01"
            return b"\xd8\x1c\x82" + level(i + 1) + b"\xd8\x1d" + bytes([i + 1])

        return level(0)

    for wire in (bytes.fromhex("d81c81d81d00"), dag(20)):  # a cycle; 2**20 leaves
        decoder = CborCodec().decoder()
        decoder.feed(wire)
        with pytest.raises(wsframed.DecodeError):
            list(decoder)
