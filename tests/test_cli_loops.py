"""``wsframed serve``, ``connect`` and ``bridge`` on each loop: ``--loop asyncio|trio``.

Real subprocesses on 127.0.0.1, as in test_cli.py (whose helpers these are): every
test runs once with the command on asyncio and once on trio, with the same
expectations (output, log lines, close codes, exit status).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sync_connect

from .test_cli import (
    LINGER,
    ROOT,
    TIMEOUT,
    LineReader,
    assert_one_clean_line,
    run,
    serving,
    wsframed,
)

loops = pytest.mark.parametrize("loop", ["asyncio", "trio"])


@loops
def test_serve_echo_and_connect_lines(loop: str) -> None:
    lines = ["hello", "wsframed", "übermäßig 🎉", "", "last line"]
    with serving("--loop", loop, "--codec", "lines", "--echo") as (server, url, log):
        result = run("connect", url, "--loop", loop, "--codec", "lines", "--linger", LINGER,
                     input="\n".join(lines) + "\n")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == lines
        assert result.stderr == ""
        log.wait_for(r"disconnected \(close code 1000\)")
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=TIMEOUT)
    assert server.returncode == 0
    assert out.splitlines() == lines


@loops
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_on_a_signal_closing_clients_with_1001(
    loop: str, signum: signal.Signals
) -> None:
    with serving("--loop", loop, "--codec", "lines", "--echo") as (server, url, log):
        with sync_connect(url, open_timeout=10) as ws:
            ws.send(b"one\n")
            assert ws.recv(timeout=10) == b"one\n"
            server.send_signal(signum)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
        assert server.wait(timeout=TIMEOUT) == 0
        log.rest()
    assert "Traceback" not in "\n".join(log.lines)
    assert "stopping: closing connections with 1001 (going away)" in log.lines
    assert server.stdout is not None
    assert server.stdout.read() == "one\n"  # the frame it received, printed


@loops
def test_a_codec_mismatch_is_refused_at_the_handshake_on_both_sides(loop: str) -> None:
    with serving("--loop", loop, "--codec", "msgpack") as (_, url, log):
        result = run("connect", url, "--loop", loop, "--codec", "lines", input="x\n")
        log.wait_for(r"codec mismatch: the client offered wsframed\.lines; this server "
                     r"speaks wsframed\.msgpack")
    assert result.returncode == 1
    assert_one_clean_line(result.stderr)
    assert result.stderr == (
        f"wsframed connect: error: codec mismatch: the server at {url} speaks "
        "wsframed.msgpack; this client offered wsframed.lines (--codec lines)\n"
    )


@loops
def test_connect_closes_with_1000_on_sigint(loop: str) -> None:
    with serving("--loop", loop, "--codec", "lines", "--echo") as (_, url, log):
        client = subprocess.Popen(
            wsframed("connect", url, "--loop", loop, "--codec", "lines"), cwd=ROOT,
            text=True, encoding="utf-8", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out = LineReader(client.stdout)
            assert client.stdin is not None
            client.stdin.write("hi\n")
            client.stdin.flush()
            out.wait_for("^hi$")
            client.send_signal(signal.SIGINT)  # stdin still open: Ctrl-C starts the close
            assert client.wait(timeout=TIMEOUT) == 0
            log.wait_for(r"disconnected \(close code 1000\)")
        finally:
            client.kill()
            client.communicate(timeout=TIMEOUT)


@loops
def test_connect_skips_a_bad_input_line_and_exits_1(loop: str) -> None:
    with serving("--loop", loop, "--codec", "msgpack", "--echo") as (_, url, _log):
        result = run("connect", url, "--loop", loop, "--codec", "msgpack", "--linger", LINGER,
                     input="1\nnot json\n2\n")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["1", "2"]
    assert "input line 2 not sent: not valid JSON" in result.stderr
    assert_one_clean_line(result.stderr)


@loops
def test_unreachable_server_and_busy_port_are_one_line_and_exit_1(loop: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        busy = run("serve", "--loop", loop, "--port", str(port))
    assert busy.returncode == 1
    assert_one_clean_line(busy.stderr)
    assert busy.stderr.startswith(f"wsframed serve: error: cannot listen on 127.0.0.1:{port}: ")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("connect", f"ws://127.0.0.1:{port}/", "--loop", loop, input="")
    assert result.returncode == 1
    assert result.stderr == (
        f"wsframed connect: error: cannot connect to ws://127.0.0.1:{port}/: "
        "connection refused\n"
    )


@contextmanager
def tcp_echo() -> Iterator[int]:
    """A TCP echo server on a thread; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@loops
def test_wsframed_bridge_runs_on_the_loop_chosen(loop: str) -> None:
    with tcp_echo() as port:
        proc = subprocess.Popen(
            wsframed("bridge", "--loop", loop, "--listen", "ws://127.0.0.1:0",
                     "--to", f"tcp://127.0.0.1:{port}"),
            cwd=ROOT, text=True, encoding="utf-8", stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            log = LineReader(proc.stderr)
            url = log.wait_for(r"^listening on (ws://127\.0\.0\.1:\d+) -> ").group(1)
            with sync_connect(url, open_timeout=10) as ws:
                ws.send(b"bridged")
                assert ws.recv(timeout=10) == b"bridged"
            log.wait_for(r"to_target=7 to_client=7 .*close=1000 reason='websocket closed'")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=TIMEOUT) == 0
        finally:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)


def test_an_unknown_loop_is_a_usage_error() -> None:
    result = run("serve", "--loop", "curio")
    assert result.returncode == 2
    assert_one_clean_line(result.stderr)
    assert "--loop: invalid choice: 'curio'" in result.stderr
