"""The README's and the docs' code is the code the suite runs.

Every ```python block of docs/*.md is rendered as the site shows it (``--8<--`` lines
replaced by the file or section they include, as pymdownx.snippets does), then:

- it compiles and every name it uses is defined in the block or is a builtin, so a
  reader who copies it gets no ``NameError`` (no excerpt without its imports);
- a block that calls ``asyncio.run`` uses every function it defines (no ``main()``
  that is defined and never called);
- it is run for real by the test :data:`RUNNERS` names for it: programs as
  subprocesses in a temporary directory (ports, hosts and certificate files rewritten
  to loopback, a free port and a ``trustme`` CA), handlers served on 127.0.0.1 and fed
  a frame, functions called against a loopback peer. A block that includes a whole
  file from ``examples/`` is run by that example's own test.

A new block without an entry in :data:`RUNNERS` fails
``test_every_python_block_has_a_runner``. Every wait is bounded.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import os
import re
import signal
import socket
import ssl
import symtable
import sys
import textwrap
import tokenize
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect

import wsframed
import wsframed.testing
from wsframed import Framed, WsStream
from wsframed.codecs import LengthPrefixedCodec, MsgpackCodec
from wsframed.rpc import RpcPeer

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0  # seconds: the bound on every wait for a sample program (the machine is shared)

pytestmark = pytest.mark.timeout(90)


# The README ------------------------------------------------------------------------


def test_readme_quickstart_is_the_tested_example() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert (ROOT / "examples" / "quickstart.py").read_text() in blocks


def test_readme_has_the_two_fresh_machine_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e . && wsframed demo" in readme
    assert "pip install -e '.[test]' && python -m pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\npython -m pytest\n" in ci  # CI runs the README's test command as written


# The blocks, rendered as the site renders them ------------------------------------

SNIPPET = re.compile(r'^--8<-- "([^"]+)"$')


@dataclass(frozen=True)
class Block:
    page: str
    index: int  # the block's position among the page's python blocks, from 0
    line: int  # where its fence opens in the page
    source: str  # as written in the page, dedented
    rendered: str  # with every --8<-- line replaced by what it includes

    @property
    def key(self) -> str:
        return f"{self.page}#{self.index}"

    @property
    def includes(self) -> list[str]:
        return [m.group(1) for line in self.source.splitlines() if (m := SNIPPET.match(line))]


def include(target: str) -> str:
    """What ``--8<-- "target"`` renders: a whole file or one ``[start:name]`` section."""
    path, _, section = target.partition(":")
    text = (ROOT / path).read_text(encoding="utf-8")
    if not section:
        return text
    assert re.fullmatch(r"\w+", section), f"only named sections are supported: {target}"
    match = re.search(
        rf"^[^\n]*--8<-- \[start:{section}\][^\n]*\n(.*?)^[^\n]*--8<-- \[end:{section}\]",
        text,
        re.S | re.M,
    )
    assert match is not None, f"{path} has no section {section!r}"
    return match.group(1)


def render(source: str) -> str:
    lines = []
    for line in source.splitlines(keepends=True):
        match = SNIPPET.match(line.rstrip("\n"))
        lines.append(include(match.group(1)) if match else line)
    return "".join(lines)


def python_blocks() -> list[Block]:
    blocks = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        fences = re.finditer(r"^([ \t]*)```python\n(.*?)^\1```", text, re.S | re.M)
        for index, match in enumerate(fences):
            source = textwrap.dedent(match.group(2))
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(Block(page.name, index, line, source, render(source)))
    return blocks


BLOCKS = {block.key: block for block in python_blocks()}


def undefined_names(source: str, filename: str) -> set[str]:
    """Global names the code reads that it neither binds nor gets from builtins."""
    top = symtable.symtable(source, filename, "exec")
    bound = {
        s.get_name()
        for s in top.get_symbols()
        if s.is_assigned() or s.is_imported() or s.is_namespace()
    }
    known = bound | set(dir(builtins)) | {"__name__", "__file__", "__doc__"}
    used = {s.get_name() for s in top.get_symbols() if s.is_referenced()}

    def walk(table: symtable.SymbolTable) -> None:
        for child in table.get_children():
            used.update(
                s.get_name() for s in child.get_symbols() if s.is_global() and s.is_referenced()
            )
            walk(child)

    walk(top)
    return used - known


def test_the_name_check_finds_what_a_reader_would_trip_on() -> None:
    excerpt = "async def handler(framed):\n    await framed.send(answer(1))\n"
    assert undefined_names(excerpt, "x") == {"answer"}
    annotated = "async def f(x: Framed[Any]) -> None:\n    pass\n"
    assert undefined_names(annotated, "x") == {"Framed", "Any"}
    complete = "import json\n\ndef answer(r):\n    return json.dumps(r)\n"
    assert undefined_names(complete, "x") == set()


# Checks on every block -------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(BLOCKS))
def test_block_compiles_and_every_name_it_uses_is_defined(key: str) -> None:
    block = BLOCKS[key]
    compile(block.rendered, f"docs/{block.page}", "exec")
    missing = undefined_names(block.rendered, f"docs/{block.page}")
    assert missing == set(), f"docs/{block.page}:{block.line} uses undefined {sorted(missing)}"


@pytest.mark.parametrize("key", sorted(BLOCKS))
def test_a_program_uses_every_function_it_defines(key: str) -> None:
    block = BLOCKS[key]
    tree = ast.parse(block.rendered)
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.decorator_list  # a decorator registers it (a route, a method)
    }
    if "asyncio.run(" not in block.rendered and "main" not in defined:
        return  # a module of definitions (a handler, a codec): its runner calls them
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert defined - used == set(), f"docs/{block.page}:{block.line} never calls them"


def test_every_python_block_has_a_runner() -> None:
    assert len(BLOCKS) >= 17  # the check is not vacuous
    assert set(BLOCKS) == set(RUNNERS), "give each new docs sample a runner in RUNNERS"


def test_every_included_example_is_run_by_a_test() -> None:
    """A block that includes a whole example: that example's test runs it."""
    code = {path.name: code_of(path) for path in (ROOT / "tests").glob("test_*.py")}
    for key, runner in RUNNERS.items():
        if runner != INCLUDED:
            continue
        (target,) = BLOCKS[key].includes
        stem = Path(target.partition(":")[0]).stem
        assert any(stem in text for text in code.values()), f"{key}: no test runs {target}"


def code_of(path: Path) -> str:
    """A module's source without its comments (a comment naming a file runs nothing)."""
    with path.open("rb") as source:
        return " ".join(
            token.string
            for token in tokenize.tokenize(source.readline)
            if token.type not in (tokenize.COMMENT, tokenize.ENCODING)
        )


# Helpers to run samples for real ---------------------------------------------------


def rewrite(source: str, *pairs: tuple[str, str]) -> str:
    """Replace each ``old`` with ``new``; each ``old`` must occur exactly once."""
    for old, new in pairs:
        assert source.count(old) == 1, f"{old!r} occurs {source.count(old)} times"
        source = source.replace(old, new)
    return source


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with fullchain.pem and privkey.pem for localhost, and the CA's ca.pem."""
    trustme = pytest.importorskip("trustme")
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(directory / "privkey.pem"))
    with (directory / "fullchain.pem").open("wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    return directory


def client_context(certificates: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates / "ca.pem"))


@dataclass
class Program:
    process: asyncio.subprocess.Process

    async def output(self) -> tuple[int, str, str]:
        """Wait (bounded) for the exit; return (code, stdout, stderr)."""
        out, err = await asyncio.wait_for(self.process.communicate(), WAIT)
        assert self.process.returncode is not None
        return self.process.returncode, out.decode(), err.decode()

    async def readline(self) -> str:
        assert self.process.stdout is not None
        return (await asyncio.wait_for(self.process.stdout.readline(), WAIT)).decode()

    async def listening(self, port: int) -> None:
        """Wait (bounded) until the program accepts TCP connections on ``port``."""
        async with asyncio.timeout(WAIT):
            while True:
                if self.process.returncode is not None:
                    code, out, err = await self.output()
                    pytest.fail(f"exited {code} before listening\n{out}\n{err}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                return


@contextlib.asynccontextmanager
async def program(
    source: str, directory: Path, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[Program]:
    """Run ``source`` as ``python sample.py args`` in ``directory``; kill it on exit."""
    path = directory / "sample.py"
    path.write_text(source, encoding="utf-8")
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(path), *args, cwd=directory, env=environment,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Program(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


def definitions(block: Block) -> dict[str, Any]:
    """Execute a block of definitions (no ``asyncio.run``) and return its namespace."""
    assert "asyncio.run(" not in block.rendered
    namespace: dict[str, Any] = {"__name__": "docs_sample"}
    exec(compile(block.rendered, f"docs/{block.page}", "exec"), namespace)  # our own docs
    return namespace


@contextlib.asynccontextmanager
async def echo_target() -> AsyncIterator[int]:
    """A TCP echo server on loopback (the bridge samples' target); yields its port."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def echo_through(stream: WsStream, data: bytes) -> bytes:
    stream.write(data)
    await stream.drain()
    return await asyncio.wait_for(stream.readexactly(len(data)), WAIT)


# The runners, one per block --------------------------------------------------------

INCLUDED = "included"  # the block is a whole file of examples/ (or tests/) run by its test
Runner = Callable[..., Any]


async def run_bridge_tls_sample(tmp_path: Path, certificates: Path) -> None:
    """bridge.md: serve_bridge() over TLS to a TCP target, bytes both ways."""
    for name in ("fullchain.pem", "privkey.pem"):
        (tmp_path / name).write_bytes((certificates / name).read_bytes())
    async with echo_target() as target:
        source = rewrite(
            BLOCKS["bridge.md#0"].rendered,
            ('"wss://0.0.0.0:6080"', '"wss://localhost:0"'),
            ('"tcp://127.0.0.1:5900"', f'"tcp://127.0.0.1:{target}"'),
        )
        async with program(source, tmp_path) as sample:
            line = await sample.readline()
            match = re.fullmatch(r"listening on wss://localhost:(\d+)/?\n", line)
            assert match is not None, line
            url = f"wss://localhost:{match.group(1)}/"
            connection = await ws_connect(url, ssl=client_context(certificates))
            async with WsStream(connection) as stream:
                assert await echo_through(stream, b"over TLS\n") == b"over TLS\n"


async def run_bridge_pump_sample(tmp_path: Path) -> None:
    """bridge.md: pump() in a websockets handler; the result line it prints."""
    port = free_port()
    async with echo_target() as target:
        source = rewrite(
            BLOCKS["bridge.md#1"].rendered,
            ('("127.0.0.1", 5900)', f'("127.0.0.1", {target})'),
            ('"0.0.0.0", 6080', f'"127.0.0.1", {port}'),
        )
        async with program(source, tmp_path) as sample:
            await sample.listening(port)
            url = f"ws://127.0.0.1:{port}/"
            connection = await ws_connect(url, subprotocols=["binary"], compression=None)
            assert connection.subprotocol == "binary"
            async with WsStream(connection) as stream:
                assert await echo_through(stream, b"ping\n") == b"ping\n"
            assert await sample.readline() == "5 5 1000 websocket closed\n"


async def run_forwarded_for_handler() -> None:
    """deploy.md: the handler reads the client's address the proxy appended."""
    handler = definitions(BLOCKS["deploy.md#0"])["handler"]
    async with wsframed.serve(handler, "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        headers = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
        url = f"ws://127.0.0.1:{server.port}/"
        async with wsframed.connect(url, MsgpackCodec(), additional_headers=headers) as framed:
            assert await asyncio.wait_for(framed.recv(), WAIT) == {"client": "203.0.113.9"}


async def run_deploy_app(tmp_path: Path) -> None:
    """deploy.md: myapp.py echoes, and SIGTERM closes each connection with 1001."""
    port = free_port()
    async with program(BLOCKS["deploy.md#1"].rendered, tmp_path, str(port)) as sample:
        await sample.listening(port)
        async with wsframed.connect(f"ws://127.0.0.1:{port}/", MsgpackCodec()) as framed:
            await framed.send([1, "two"])
            assert await asyncio.wait_for(framed.recv(), WAIT) == {"echo": [1, "two"]}
            sample.process.send_signal(signal.SIGTERM)
            with pytest.raises(wsframed.EndOfStream):
                await asyncio.wait_for(framed.recv(), WAIT)
            assert framed.stream.close_code == 1001
        assert await sample.output() == (0, "", "")


async def run_consume_sample() -> None:
    """framed.md: consume() hands each frame on, then closes and re-raises on bad data."""
    consume = definitions(BLOCKS["framed.md#0"])["consume"]
    handled: list[Any] = []
    failures: list[BaseException] = []

    async def handler(framed: Framed[Any]) -> None:
        async def handle(item: Any) -> None:
            handled.append(item)

        try:
            await consume(framed, handle)
        except wsframed.FrameTooLarge as exc:
            failures.append(exc)

    codec = LengthPrefixedCodec(max_frame_size=4)
    async with (
        wsframed.serve(handler, "127.0.0.1", 0, codec=codec) as server,
        wsframed.connect(f"ws://127.0.0.1:{server.port}/", LengthPrefixedCodec()) as framed,
    ):
        await framed.send_all([b"ab", b"cd", b"too long"])
        with pytest.raises(wsframed.EndOfStream):
            await asyncio.wait_for(framed.recv(), WAIT)
        assert framed.stream.close_code == 1000
    assert handled == [b"ab", b"cd"]
    assert [(e.size, e.limit) for e in failures] == [(8, 4)]  # type: ignore[attr-defined]


async def run_split_handler() -> None:
    """framed.md: split() halves answering each request."""
    handler = definitions(BLOCKS["framed.md#1"])["handler"]
    async with (
        wsframed.serve(handler, "127.0.0.1", 0, codec=MsgpackCodec()) as server,
        wsframed.connect(f"ws://127.0.0.1:{server.port}/", MsgpackCodec()) as framed,
    ):
        for request in ("a", [1, 2]):
            await framed.send(request)
            assert await asyncio.wait_for(framed.recv(), WAIT) == {"echo": request}


async def run_backends_sample() -> None:
    """backends.md: ask() over picows against serve_fast(), one message per item."""
    namespace = definitions(BLOCKS["backends.md#0"])
    async with await namespace["serve_fast"](0) as server:
        items = [1, "two", {"three": [3]}]
        uri = f"ws://127.0.0.1:{server.port}/"
        assert await asyncio.wait_for(namespace["ask"](uri, items), WAIT) == items


async def run_protocol_functions() -> None:
    """integrations.md: serve_sums() and ask_sums() as shown, over a TCP pair."""
    namespace = definitions(BLOCKS["integrations.md#3"])
    server_side: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await namespace["serve_sums"](Framed.from_streams(reader, writer, MsgpackCodec()))
        server_side.set_result(None)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        framed = Framed.from_streams(reader, writer, MsgpackCodec())
        answers = await asyncio.wait_for(namespace["ask_sums"](framed, [[1, 2], [], [5]]), WAIT)
        assert answers == [3, 0, 5]
        await asyncio.wait_for(server_side, WAIT)


async def run_request_sample() -> None:
    """integrations.md: greet() as shown, in a serve() handler, under aiohttp and Starlette."""
    from aiohttp import web
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    from tests.backend_pairs import aiohttp_server, uvicorn_port, uvicorn_server
    from wsframed.codecs import LinesCodec

    greet = definitions(BLOCKS["integrations.md#4"])["greet"]

    async def ask(port: int) -> str | bytes:
        url = f"ws://127.0.0.1:{port}/hello?name=Ada"
        async with ws_connect(url, additional_headers={"X-Token": "t1"}) as ws:
            return await asyncio.wait_for(ws.recv(), WAIT)

    async def aiohttp_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async with Framed(WsStream(ws), LinesCodec()) as framed:
            await greet(framed)
        return ws

    async def starlette_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async with Framed(WsStream(websocket), LinesCodec()) as framed:
            await greet(framed)

    expected = b"hello, Ada, at /hello (token t1)\n"
    async with wsframed.serve(greet, "127.0.0.1", 0, LinesCodec()) as server:
        assert await ask(server.port) == expected
    async with aiohttp_server(aiohttp_handler, "/hello") as port:
        assert await ask(port) == expected
    app = Starlette(routes=[WebSocketRoute("/hello", starlette_endpoint)])
    async with uvicorn_server(app) as running:
        assert await ask(uvicorn_port(running)) == expected
    client_side, server_side = wsframed.testing.framed_pair(LinesCodec())
    await greet(client_side)
    assert await asyncio.wait_for(server_side.recv(), WAIT) == "hello, stranger"


async def run_rpc_example(capsys: pytest.CaptureFixture[str]) -> None:
    """rpc.md: the client excerpt calls the server excerpt, both as rendered."""
    client = definitions(BLOCKS["rpc.md#0"])
    server = definitions(BLOCKS["rpc.md#1"])
    async with wsframed.serve(server["handle"], "127.0.0.1", 0, codec=MsgpackCodec()) as running:
        await asyncio.wait_for(client["run"](f"ws://127.0.0.1:{running.port}"), WAIT)
    assert capsys.readouterr().out.startswith(
        "add(1, 2) = 3\n"
        "5 calls in flight: [0, 2, 4, 6, 8]\n"
        "greet() = hello, rpc_client.py\n"
        "error: 'divide' failed on the peer: ZeroDivisionError: division by zero\n"
        "timeout: no response to 'slow_echo' (msgid 8) within 0.1 s\n"
    )


async def run_rpc_tcp_client() -> None:
    """rpc.md: call_tcp_server() against a msgpack-RPC peer on plain TCP."""
    call_tcp_server = definitions(BLOCKS["rpc.md#2"])["call_tcp_server"]

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = RpcPeer(Framed.from_streams(reader, writer, MsgpackCodec()))
        peer.register("sum", lambda *numbers: sum(numbers))
        await peer.serve()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    async with server:
        host, port = server.sockets[0].getsockname()[:2]
        assert await asyncio.wait_for(call_tcp_server(host, port), WAIT) == 6


async def run_origins_sample(tmp_path: Path) -> None:
    """security.md: only the listed Origin gets in; others and no Origin get HTTP 403."""
    from websockets.exceptions import InvalidStatus

    port = free_port()
    listen = ('"127.0.0.1", 8000', f'"127.0.0.1", {port}')
    source = rewrite(BLOCKS["security.md#0"].rendered, listen)
    async with program(source, tmp_path) as sample:
        await sample.listening(port)
        url = f"ws://127.0.0.1:{port}/"
        async with wsframed.connect(url, MsgpackCodec(), origin="https://app.example") as framed:
            await framed.send({"n": 1})
            assert await asyncio.wait_for(framed.recv(), WAIT) == {"n": 1}
        for origin in ("https://evil.example", None):
            with pytest.raises(InvalidStatus) as refused:
                await wsframed.connect(url, MsgpackCodec(), origin=origin)
            assert refused.value.response.status_code == 403


async def run_tls_sample(tmp_path: Path, certificates: Path) -> None:
    """security.md: the page's own client() against its own server(), over TLS."""
    for name in ("fullchain.pem", "privkey.pem"):
        (tmp_path / name).write_bytes((certificates / name).read_bytes())
    port = free_port()
    source = rewrite(
        BLOCKS["security.md#1"].rendered,
        ('"0.0.0.0",\n        443,', f'"127.0.0.1",\n        {port},'),
        ('"wss://example.com/"', f'"wss://localhost:{port}/"'),
    )
    # The client's default context trusts the test CA through SSL_CERT_FILE.
    async with program(source, tmp_path, "server") as server:
        await server.listening(port)
        env = {"SSL_CERT_FILE": str(certificates / "ca.pem")}
        async with program(source, tmp_path, env=env) as client:
            assert await client.output() == (0, "{'hello': 'over TLS'}\n", "")


async def run_home_page_example(tmp_path: Path) -> None:
    """index.md: the fifteen-line example prints both replies."""
    async with program(BLOCKS["index.md#0"].rendered, tmp_path) as sample:
        code, out, err = await sample.output()
    assert (code, out) == (0, "{'id': 1, 'sum': 3} {'id': 2, 'sum': 7}\n"), err


async def run_typed_rpc_messages() -> None:
    """typed-frames.md: msgpack-RPC's arrays decode into the right Struct, or are refused."""
    import msgpack  # type: ignore[import-untyped]

    from wsframed.codecs import InvalidFrame

    block = BLOCKS["typed-frames.md#1"]
    # As a user's module runs it: without this module's ``from __future__ import
    # annotations`` (compile() would inherit it), whose string annotations msgspec
    # could not resolve in a namespace that is not a module.
    sample: dict[str, Any] = {"__name__": "docs_sample"}
    code = compile(block.rendered, f"docs/{block.page}", "exec", dont_inherit=True)
    exec(code, sample)  # our own docs
    decoder = sample["codec"].decoder()
    decoder.feed(
        msgpack.packb([1, 7, None, 3])
        + msgpack.packb([2, "log", ["x"]])
        + msgpack.packb([0, "x", "add", []])
    )
    items: list[Any] = []
    with pytest.raises(InvalidFrame) as info:
        items.extend(decoder)
    assert items == [sample["Response"](7, None, 3), sample["Notification"]("log", ["x"])]
    assert (info.value.path, info.value.offset) == ("$[1]", 14)


async def run_trio_programs(tmp_path: Path) -> None:
    """trio.md: its programs (server and client in one trio.run), their exact output."""
    pytest.importorskip("trio")
    cases = (
        ("trio.md#0", "8765", "{'n': 0}\n{'n': 2}\n{'n': 4}\n"),
        (
            "trio.md#1",
            "8766",
            "b'HELLO\\n'\nb'BYTE STREAM\\n'\nb''\n"
            "event: CloseFrame(code=1000, reason='')\nevent: Closed(code=1000, reason='')\n",
        ),
        (
            "trio.md#2",
            "8767",
            "hello trio\n[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]\ncalls in flight: 0\n"
            "no response to 'slow' (msgid 12) within 0.1 s\n",
        ),
        ("trio.md#3", "8768", "connection 1\nconnection 2\nconnection 3\n"),
        (
            "trio.md#4",
            "8769",
            "b'through the bridge\\n'\nconnections: 1\nconnections: 0 listening: ()\n",
        ),
        (
            "trio.md#5",
            "8770",
            "{'you speak': 'wsframed.jsonl'}\n{'you speak': 'wsframed.msgpack'}\n"
            "refused: the server at ws://127.0.0.1:PORT speaks wsframed.msgpack, "
            "wsframed.jsonl; this client offered wsframed.cbor\n",
        ),
    )
    for key, port, expected in cases:
        chosen = str(free_port())
        source = BLOCKS[key].rendered.replace(port, chosen)
        async with program(source, tmp_path) as sample:
            code, out, err = await sample.output()
        assert (code, out) == (0, expected.replace("PORT", chosen)), err


RUNNERS: dict[str, Runner | str] = {
    "backends.md#0": run_backends_sample,
    "bridge.md#0": run_bridge_tls_sample,
    "bridge.md#1": run_bridge_pump_sample,
    "browser.md#0": INCLUDED,  # examples/browser_python/chat.py: test_pyodide_chromium.py
    "byte-streams.md#0": INCLUDED,  # examples/byte_stream_echo.py: test below
    "codecs.md#0": INCLUDED,  # examples/netstring_codec.py: tests/test_custom_codec.py
    "deploy.md#0": run_forwarded_for_handler,
    "deploy.md#1": run_deploy_app,
    "framed.md#0": run_consume_sample,
    "framed.md#1": run_split_handler,
    "index.md#0": run_home_page_example,
    "integrations.md#0": INCLUDED,  # examples/aiohttp_server.py: tests/test_integrations.py
    "integrations.md#1": INCLUDED,  # examples/fastapi_app.py: tests/test_integrations.py
    "integrations.md#2": INCLUDED,  # examples/anyio_tls.py: tests/test_integrations.py
    "integrations.md#3": run_protocol_functions,
    "integrations.md#4": run_request_sample,
    "quickstart.md#0": INCLUDED,  # examples/quickstart.py: tests/test_examples.py
    "rpc.md#0": run_rpc_example,
    "rpc.md#1": run_rpc_example,
    "rpc.md#2": run_rpc_tcp_client,
    "reconnecting.md#0": INCLUDED,  # examples/rpc_reconnect.py: tests/test_rpc_reconnect.py
    "security.md#0": run_origins_sample,
    "security.md#1": run_tls_sample,
    "broadcast.md#0": INCLUDED,  # examples/broadcast_ticker.py: tests/test_broadcast.py
    "negotiation.md#0": INCLUDED,  # examples/codec_negotiation.py: tests/test_negotiation.py
    "testing.md#0": INCLUDED,  # examples/protocol_unit_test.py: tests/test_testing.py
    "typed-frames.md#0": INCLUDED,  # examples/typed_rpc.py: tests/test_codec_msgspec_example.py
    "typed-frames.md#1": run_typed_rpc_messages,
    "trio.md#0": run_trio_programs,
    "trio.md#1": run_trio_programs,
    "trio.md#2": run_trio_programs,
    "trio.md#3": run_trio_programs,
    "trio.md#4": run_trio_programs,
    "trio.md#5": run_trio_programs,
}

RUN = sorted({r.__name__: r for r in RUNNERS.values() if callable(r)}.items())


@pytest.mark.parametrize("runner", [r for _, r in RUN], ids=[name for name, _ in RUN])
async def test_docs_sample_runs(runner: Runner, request: pytest.FixtureRequest) -> None:
    import inspect

    wanted = inspect.signature(runner).parameters
    await runner(**{name: request.getfixturevalue(name) for name in wanted})


async def test_the_byte_stream_guide_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.byte_stream_echo import main

    await main()
    out = capsys.readouterr().out
    assert "b'HELLO\\n'" in out
    assert "b'BYTE STREAM\\n'" in out
    assert "event: Closed(code=1000, reason='')" in out
    assert "closed with 1000" in out
