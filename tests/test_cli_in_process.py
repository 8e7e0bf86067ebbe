"""``wsframed connect`` in-process, on the input and output a shell gives it: a regular
file as stdin (``< file``), and a stdout whose reader went away (``| head``).

Each calls ``wsframed.cli.main`` with an argv, as the command does; the server is a
websockets echo server on 127.0.0.1 in a thread (``main`` runs its own event loop).
stdin and stdout are real files and pipes, set on ``sys`` as the shell would set them.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

from wsframed import cli

pytestmark = pytest.mark.timeout(60)


@contextmanager
def echo_server(repeat: int = 1) -> Iterator[str]:
    """A websockets server in a thread that sends every message back ``repeat`` times."""

    def echo(connection: ServerConnection) -> None:
        for message in connection:
            for _ in range(repeat):
                connection.send(message)

    with serve(echo, "127.0.0.1", 0, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"
        finally:
            server.shutdown()
            thread.join(10)


def test_connect_sends_a_regular_file_given_as_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``wsframed connect URI < file``: a regular file is read by a thread (the event
    loop cannot watch files); every line goes out and its echo is printed, then the
    command exits 0 once the server has been quiet for ``--linger`` seconds."""
    lines = [f"line {i}" for i in range(50)]
    source = tmp_path / "input.txt"
    source.write_text("".join(line + "\n" for line in lines))
    with source.open("r") as stdin, echo_server() as uri:
        monkeypatch.setattr(sys, "stdin", stdin)
        status = cli.main(["connect", uri, "--codec", "lines", "--linger", "0.5"])
    out, err = capsys.readouterr()
    assert (status, out.splitlines(), err) == (0, lines, "")


def test_connect_with_an_empty_file_as_stdin_sends_nothing_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "empty.txt"
    source.write_bytes(b"")
    with source.open("r") as stdin, echo_server() as uri:
        monkeypatch.setattr(sys, "stdin", stdin)
        status = cli.main(["connect", uri, "--codec", "lines", "--linger", "0.2"])
    assert (status, capsys.readouterr()) == (0, ("", ""))


def test_connect_into_a_closed_pipe_exits_1_without_a_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``wsframed connect ... | head -0``: stdout's reader is gone, so printing a frame
    fails with EPIPE; the command exits 1 and prints no error or traceback."""
    source = tmp_path / "input.txt"
    source.write_text("hello\n" * 20)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away
    stdout = io.TextIOWrapper(io.FileIO(write_end, "w"), encoding="utf-8")
    try:
        with source.open("r") as stdin, echo_server(repeat=50) as uri:
            monkeypatch.setattr(sys, "stdin", stdin)
            monkeypatch.setattr(sys, "stdout", stdout)
            status = cli.main(["connect", uri, "--codec", "lines", "--linger", "0.2"])
    finally:
        with contextlib.suppress(BrokenPipeError):  # whatever is left cannot go anywhere
            stdout.close()
    assert status == 1
    assert capsys.readouterr().err == ""
