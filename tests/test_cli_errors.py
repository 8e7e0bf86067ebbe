"""The ``wsframed`` command's error paths, in-process: exact exit statuses and messages.

Each calls :func:`wsframed.cli.main` with an argv, as the command does, and reads
what it printed with ``capsys``. Servers it talks to run on 127.0.0.1 in a thread
(``main`` runs its own event loop).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from wsframed import cli


def free_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@contextmanager
def refusing_server(status: int) -> Iterator[int]:
    """A websockets server in a thread that answers every handshake with ``status``."""

    def refuse(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(status, "no\n")

    def handler(connection: ServerConnection) -> None:  # pragma: no cover - never reached
        pass

    with serve(handler, "127.0.0.1", 0, process_request=refuse) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.socket.getsockname()[1]
        finally:
            server.shutdown()
            thread.join(10)


def fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run ``wsframed ARGV``; return its exit status and stderr (stdout must be empty)."""
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert out == ""
    return status, err


# Usage errors: exit status 2, one argparse line ----------------------------------------


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("ws://[::1", "invalid IPv6 URL"),
        ("ws://", "hostname isn't provided"),
        ("ws://127.0.0.1:99999", "port out of range 0-65535"),
        ("ws://127.0.0.1:x", "port could not be cast to integer value as 'x'"),
        ("wss://example.com/#top", "fragment identifier is meaningless"),
        ("ws://user@example.com", "username provided without password"),
    ],
)
def test_connect_refuses_a_bad_uri_as_a_usage_error(
    uri: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fails(["connect", uri], capsys) == (
        2,
        f"wsframed connect: error: argument uri: not a valid WebSocket URI: {uri!r} ({why})"
        " (see wsframed connect --help)\n",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["connect", "http://example.com/"],
         "wsframed connect: error: argument uri: expected a ws:// or wss:// URI, not "
         "'http://example.com/' (see wsframed connect --help)"),
        (["serve", "--port", "70000"],
         "wsframed serve: error: argument --port: port must be in 0..65535, not 70000 "
         "(see wsframed serve --help)"),
        (["serve", "--max-frame-size", "0"],
         "wsframed serve: error: argument --max-frame-size: must be at least 1, not 0 "
         "(see wsframed serve --help)"),
        (["connect", "ws://x", "--linger", "inf"],
         "wsframed connect: error: argument --linger: must be a finite number >= 0, not inf "
         "(see wsframed connect --help)"),
        (["serve", "--close-timeout", "soon"],
         "wsframed serve: error: argument --close-timeout: not a number of seconds: 'soon' "
         "(see wsframed serve --help)"),
        (["serve", "--bogus"],
         "wsframed: error: unrecognized arguments: --bogus (see wsframed --help)"),
    ],
)
def test_bad_arguments_exact_messages(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fails(argv, capsys) == (2, message + "\n")


@pytest.mark.parametrize(
    ("listen", "to", "message"),
    [
        ("ws://127.0.0.1", "tcp://127.0.0.1:1",
         "'ws://127.0.0.1': no port to listen on (ws://HOST:PORT, 0 for any free port)"),
        ("wss://127.0.0.1/path", "tcp://127.0.0.1:1",
         "'wss://127.0.0.1/path': no port to listen on (wss://HOST:PORT, 0 for any free port)"),
        ("tcp://127.0.0.1", "ws://127.0.0.1:1",
         "'tcp://127.0.0.1': no port to listen on (tcp://HOST:PORT, 0 for any free port)"),
        ("ws://127.0.0.1:0", "tcp://127.0.0.1", "'tcp://127.0.0.1': no port (tcp://HOST:PORT)"),
        ("ws://127.0.0.1:0", "tcp://127.0.0.1:x",
         "'tcp://127.0.0.1:x': the port must be a number in 0..65535"),
    ],
)
def test_bridge_url_without_a_port_is_a_usage_error(
    listen: str, to: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fails(["bridge", "--listen", listen, "--to", to], capsys) == (
        2, f"wsframed bridge: error: {message}\n"
    )


# Failures: exit status 1, one line --------------------------------------------------------


def test_connect_to_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"ws://127.0.0.1:{free_port()}/"
    assert fails(["connect", uri], capsys) == (
        1, f"wsframed connect: error: cannot connect to {uri}: connection refused\n"
    )


def test_connect_refused_by_http_status(capsys: pytest.CaptureFixture[str]) -> None:
    with refusing_server(403) as port:
        uri = f"ws://127.0.0.1:{port}/"
        assert fails(["connect", uri, "--open-timeout", "10"], capsys) == (
            1, f"wsframed connect: error: {uri} refused the WebSocket connection (HTTP 403)\n"
        )


def test_serve_on_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with busy_port() as port:
        assert fails(["serve", "--port", str(port)], capsys) == (
            1, f"wsframed serve: error: cannot listen on 127.0.0.1:{port}: "
            "address already in use\n"
        )


def test_bridge_on_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with busy_port() as port:
        argv = ["bridge", "--listen", f"ws://127.0.0.1:{port}", "--to", "tcp://127.0.0.1:1"]
        assert fails(argv, capsys) == (
            1, f"wsframed bridge: error: cannot listen on ws://127.0.0.1:{port}: "
            "address already in use\n"
        )
