"""The ``wsframed`` command, end to end: real subprocesses on 127.0.0.1.

Parsing and formatting details are checked in-process (fast); everything that talks
to the network runs ``python -m wsframed`` as a user would.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.client import connect as sync_connect

from wsframed import cli

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 20  # seconds: the bound on any one subprocess


# How long `connect` waits for late replies after the end of its input: the default
# (0.5 s) with room to spare for a loaded 2-core CI machine.
LINGER = "1"


def wsframed(*args: str) -> list[str]:
    return [sys.executable, "-m", "wsframed", *args]


def run(
    *args: str, input: str | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``wsframed ARGS`` to completion (bounded) and return the result."""
    return subprocess.run(
        wsframed(*args), input=input, capture_output=True, text=True, cwd=ROOT,
        timeout=timeout, encoding="utf-8",
    )


def run_connect(url: str, codec: str, lines: str) -> subprocess.CompletedProcess[str]:
    """Run ``wsframed connect URL --codec CODEC`` with ``lines`` piped to its stdin."""
    return run("connect", url, "--codec", codec, "--linger", LINGER, input=lines)


class LineReader:
    """Reads a pipe's lines on a thread, so a test can wait for one with a timeout."""

    def __init__(self, pipe: object) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        """Return the match of the first line (read from now on) matching ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; got {self.lines}") from None
            if line is None:
                raise AssertionError(f"the pipe closed before {pattern!r}; got {self.lines}")
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match

    def rest(self, timeout: float = 10) -> list[str]:
        """Every remaining line, once the pipe is closed."""
        self._thread.join(timeout)
        while (line := self._queue.get_nowait() if not self._queue.empty() else None) is not None:
            self.lines.append(line)
        return self.lines


def start_serve(*args: str, stdout: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """Start ``wsframed serve --port 0 ARGS`` (see :func:`listening_url`)."""
    return subprocess.Popen(
        wsframed("serve", "--port", "0", *args), cwd=ROOT, text=True, encoding="utf-8",
        stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
    )


def listening_url(proc: subprocess.Popen[str]) -> tuple[str, LineReader]:
    """Wait for the server's ``listening on`` line; return its URL and a stderr reader."""
    log = LineReader(proc.stderr)
    return log.wait_for(r"^listening on (ws://127\.0\.0\.1:\d+)$").group(1), log


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT ``proc`` if it still runs, and wait for it (bounded)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, LineReader]]:
    """Run ``wsframed serve --port 0 ARGS``; yield it, its URL and its stderr reader."""
    proc = start_serve(*args)
    try:
        yield (proc, *listening_url(proc))
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def echo_servers() -> Iterator[dict[str, str]]:
    """``wsframed serve --echo`` for several codecs, started at once; codec -> URL."""
    codecs = ["msgpack", "cbor", "jsonl", "length"]
    procs = {c: start_serve("--codec", c, "--echo", stdout=subprocess.DEVNULL) for c in codecs}
    try:
        yield {codec: listening_url(proc)[0] for codec, proc in procs.items()}
    finally:
        for proc in procs.values():
            stop(proc)


def assert_one_clean_line(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


# demo ----------------------------------------------------------------------------


def test_demo_prints_the_transcript_and_exits_0() -> None:
    started = time.monotonic()
    result = run("demo")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    for expected in [
        # a heading per section
        "1. Lines, echoed (LinesCodec)",
        "2. msgpack request/response (MsgpackCodec)",
        "3. msgpack-RPC (wsframed.rpc.RpcPeer)",
        "4. CBOR items, echoed (CborCodec)",
        "5. Split halves: one task sends, another receives",
        "6. Oversized frames refused",
        "7. Close handshake",
        # msgpack-RPC: a call, calls in flight, a call back, a remote error
        "server -> client  [1, 0, None, 3]",
        "answered by msgid: [0, 2, 4, 6, 8]",
        "the server calls the client back -> 'hello, the demo client'",
        "RemoteError: 'divide' failed on the peer: ZeroDivisionError: division by zero",
        # lines echoed
        "client -> server  'hello'",
        "server -> client  'hello'",
        # msgpack request/response
        "client -> server  {'id': 1, 'method': 'add', 'params': [1, 2]}",
        "server -> client  {'id': 1, 'result': 3}",
        # CBOR: bytes and a bignum survive the round trip
        "server -> client  {'sensor': 't1', 'celsius': 21.5, 'raw': b'\\x00\\x01\\xff'}",
        f"server -> client  {2**70}",
        # the two halves in two tasks
        "receiver task  server -> client  25",
        "receiver task  end of stream after 5 replies",
        # oversized: refused locally, still usable, refused from the peer
        "frame to encode of 100 bytes exceeds the limit of 64 bytes; nothing was sent",
        "server -> client  'still usable'",
        "received frame of at least 65 bytes exceeds the limit of 64 bytes",
        "server -> client  'after the long line'",
        "closed: code 1009 (frame too large)",
        # the close handshake, seen from both sides
        "client event     CloseFrame(code=1000, reason='')",
        "client event     Closed(code=1000, reason='')",
        "server event     Closed(code=1000, reason='')",
        "client close_code=1000",
    ]:
        assert expected in out, f"{expected!r} missing from:\n{out}"
    assert elapsed < 10


# serve + connect ---------------------------------------------------------------------




@pytest.mark.parametrize("codec", ["msgpack", "cbor", "jsonl"])
def test_serve_echo_and_connect_json_lines(codec: str, echo_servers: dict[str, str]) -> None:
    lines = [
        '{"id":1,"method":"add","params":[1,2]}',
        '[1,2.5,null,true,"é",{"nested":{"deep":[]}}]',
        '{"blob":{"$bytes":"00ff10"}}',  # bytes for msgpack and CBOR, an object for jsonl
        '"text"',
        "-7",
    ]
    # A blank line is skipped, not sent.
    result = run_connect(echo_servers[codec], codec, "\n".join(lines) + "\n\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == lines


def test_length_codec_shows_bytes_literals(echo_servers: dict[str, str]) -> None:
    result = run_connect(echo_servers["length"], "length", "ab\r\n\ncd\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["b'ab'", "b''", "b'cd'"]




def test_server_refusing_an_oversized_frame_closes_with_1009() -> None:
    with serving("--codec", "lines", "--max-frame-size", "8") as (_, url, log):
        result = run("connect", url, "--codec", "lines", input="short\n" + "x" * 100 + "\n")
        log.wait_for(r"exceeds the limit of 8 bytes.*; closing with 1009$")
    assert result.returncode == 1
    assert_one_clean_line(result.stderr)
    assert "connection closed with code 1009 (frame too large)" in result.stderr


def test_connect_exits_when_the_server_goes_away() -> None:
    """SIGINT stops serve cleanly (exit 0) and a connected client ends with 1001."""
    with serving("--codec", "lines", "--echo") as (server, url, log):
        client = subprocess.Popen(
            wsframed("connect", url, "--codec", "lines"), cwd=ROOT, text=True,
            encoding="utf-8", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out = LineReader(client.stdout)
            assert client.stdin is not None
            client.stdin.write("ping\n")
            client.stdin.flush()
            out.wait_for("^ping$")
            log.wait_for("connected")
            server.send_signal(signal.SIGINT)
            assert server.wait(timeout=TIMEOUT) == 0
            assert client.wait(timeout=TIMEOUT) == 0  # 1001 is a normal end
        finally:
            client.kill()
            client.communicate(timeout=TIMEOUT)




def test_serve_skips_a_bad_line_and_takes_text_with_text_bytes() -> None:
    with serving("--codec", "lines", "--echo", "--text", "bytes") as (_, url, log):
        with sync_connect(url, open_timeout=10) as ws:
            ws.send(b"\xff not utf-8\n")
            ws.send("a text message\n")  # --text bytes: its UTF-8 bytes are data
            assert ws.recv(timeout=10) == b"a text message\n"
        log.wait_for(r"skipped a frame: .*not valid utf-8")
        log.wait_for(r"disconnected \(close code 1000\)")




# errors ---------------------------------------------------------------------------






def test_bad_argument_in_a_subprocess() -> None:
    result = run("serve", "--port", "http")
    assert result.returncode == 2
    assert result.stdout == ""
    assert_one_clean_line(result.stderr)
    assert "argument --port: not a port number: 'http'" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["serve", "--port", "70000"],
        ["serve", "--codec", "xml"],
        ["serve", "--max-frame-size", "0"],
        ["connect"],
        ["connect", "http://example.com/"],
        ["connect", "ws://x", "--linger", "-1"],
        ["demo", "--timeout", "soon"],
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_clean_line(err)
    assert ": error: " in err


@pytest.mark.parametrize("command", ["demo", "serve", "connect", "bridge", "bench"])
def test_help_on_every_subcommand(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: wsframed {command}")


def test_help_in_a_subprocess() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("demo", "serve", "connect", "bridge", "bench"):
        assert command in result.stdout


def test_missing_optional_subcommand(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_optional_module", lambda name: (None, ""))
    assert cli.main(["bridge", "--listen", "ws://127.0.0.1:0"]) == 2
    assert capsys.readouterr().err == "bridge: not available in this build\n"


# formatting, in-process ---------------------------------------------------------------


def test_format_frame() -> None:
    assert cli.format_frame("lines", "héllo") == "héllo"
    assert cli.format_frame("bytes", b"a\n") == "b'a\\n'"
    assert cli.format_frame("length", bytearray(b"\x00")) == "b'\\x00'"
    assert cli.format_frame("msgpack", {"a": [1, b"\x01", None]}) == (
        '{"a":[1,{"$bytes":"01"},null]}'
    )
    assert cli.format_frame("cbor", {1: (2, 3), b"k": {4}}) == '{"1":[2,3],"6b":{"$set":[4]}}'


def test_parse_input_line() -> None:
    assert cli.parse_input_line("bytes", b"raw\n") == b"raw\n"
    assert cli.parse_input_line("length", b"frame\r\n") == b"frame"
    assert cli.parse_input_line("lines", "über\n".encode()) == "über"
    assert cli.parse_input_line("msgpack", b'{"b":{"$bytes":"ff"}}\n') == {"b": b"\xff"}
    assert cli.parse_input_line("jsonl", b'{"$bytes":"ff"}\n') == {"$bytes": "ff"}
    with pytest.raises(ValueError, match="not valid JSON"):
        cli.parse_input_line("cbor", b"{oops}\n")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        cli.parse_input_line("lines", b"\xff\n")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("wsframed ")
