"""``wsframed serve --cert/--key``, ``connect --cafile/--insecure/--header`` and the
codec negotiation both commands do: real subprocesses on 127.0.0.1, trustme certificates."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from websockets.asyncio.server import ServerConnection, serve

from tests.test_cli import LINGER, ROOT, TIMEOUT, LineReader, run, start_serve, stop


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1, as PEM files."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("certs")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def wss_echo(certs: dict[str, str]) -> Iterator[str]:
    """``wsframed serve --echo --cert --key`` on a free port; yield its wss:// URL."""
    proc = start_serve("--echo", "--cert", certs["cert"], "--key", certs["key"])
    try:
        log = LineReader(proc.stderr)
        yield log.wait_for(r"^listening on (wss://127\.0\.0\.1:\d+)$").group(1)
    finally:
        stop(proc)


def connect(
    url: str, *options: str, text: str = "hello\nworld\n"
) -> subprocess.CompletedProcess[str]:
    return run("connect", url, "--linger", LINGER, *options, input=text)


def test_connect_over_tls_trusting_the_ca(wss_echo: str, certs: dict[str, str]) -> None:
    result = connect(wss_echo, "--cafile", certs["ca"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\nworld\n", "")


def test_connect_refuses_a_certificate_it_cannot_verify(wss_echo: str) -> None:
    result = connect(wss_echo)
    assert result.returncode == 1
    assert result.stderr == (
        f"wsframed connect: error: cannot connect to {wss_echo}: "
        "certificate verify failed: unable to get local issuer certificate\n"
    )


def test_connect_insecure_skips_verification(wss_echo: str) -> None:
    result = connect(wss_echo, "--insecure")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\nworld\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["connect", "ws://127.0.0.1:9/", "--cafile", "ca.pem"],
            "wsframed connect: error: --cafile/--insecure are for a wss:// URI, "
            "not ws://127.0.0.1:9/\n",
        ),
        (
            ["connect", "ws://127.0.0.1:9/", "--insecure"],
            "wsframed connect: error: --cafile/--insecure are for a wss:// URI, "
            "not ws://127.0.0.1:9/\n",
        ),
        (
            ["connect", "wss://127.0.0.1:9/", "--cafile", "/nonexistent/ca.pem"],
            "wsframed connect: error: cannot load --cafile /nonexistent/ca.pem: "
            "no such file or directory\n",
        ),
        (
            ["serve", "--port", "0", "--key", "key.pem"],
            "wsframed serve: error: --key needs --cert\n",
        ),
        (
            ["serve", "--port", "0", "--cert", "/nonexistent/cert.pem"],
            "wsframed serve: error: cannot load --cert /nonexistent/cert.pem: "
            "no such file or directory\n",
        ),
    ],
)
def test_wrong_tls_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = run(*args, input="")
    assert (result.returncode, result.stderr) == (2, message)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("no-colon", "expected NAME:VALUE, not 'no-colon'"),
        (":value", "expected NAME:VALUE, not ':value'"),
        ("bad name:1", "not a valid header name: 'bad name'"),
    ],
)
def test_a_bad_header_is_a_usage_error(value: str, why: str) -> None:
    result = run("connect", "ws://127.0.0.1:9/", "--header", value, input="")
    assert result.returncode == 2
    assert result.stderr.endswith(
        f"wsframed connect: error: argument --header: {why} (see wsframed connect --help)\n"
    )


async def test_connect_sends_every_header() -> None:
    seen: list[list[str]] = []

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        headers = connection.request.headers
        seen.append([*headers.get_all("X-Token"), *headers.get_all("Authorization")])
        await connection.close()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wsframed",
            "connect",
            f"ws://127.0.0.1:{port}/",
            "--header",
            "X-Token: one",
            "--header",
            "X-Token:two",
            "--header",
            "Authorization: Bearer abc:def",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err
    assert seen == [["one", "two", "Bearer abc:def"]]


def test_a_codec_mismatch_fails_the_handshake_on_both_sides() -> None:
    proc = start_serve("--codec", "msgpack")
    try:
        log = LineReader(proc.stderr)
        url = log.wait_for(r"^listening on (ws://127\.0\.0\.1:\d+)$").group(1)
        result = run("connect", f"{url}/", "--codec", "lines", input="hello\n")
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr == (
            f"wsframed connect: error: codec mismatch: the server at {url}/ speaks "
            "wsframed.msgpack; this client offered wsframed.lines (--codec lines)\n"
        )
        refused = log.wait_for(r"^wsframed\.server: refused a client")
        assert refused.string.endswith(
            "codec mismatch: the client offered wsframed.lines; this server speaks "
            "wsframed.msgpack"
        )
    finally:
        stop(proc)


def test_the_same_codec_negotiates(tmp_path: Path) -> None:
    proc = start_serve("--codec", "msgpack", "--echo")
    try:
        log = LineReader(proc.stderr)
        url = log.wait_for(r"^listening on (ws://127\.0\.0\.1:\d+)$").group(1)
        result = run("connect", url, "--codec", "msgpack", "--linger", LINGER, input='[1, "a"]\n')
        assert (result.returncode, result.stdout, result.stderr) == (0, '[1,"a"]\n', "")
    finally:
        stop(proc)
