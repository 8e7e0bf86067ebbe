"""Serve the Python-in-the-browser example: a chat whose page runs Python in Pyodide.

    python examples/browser_python/server.py [--host 127.0.0.1] [--port 8001]

then open http://127.0.0.1:8001/?name=ada in a browser (two tabs to chat). One port
serves the page (index.html, chat.py), Pyodide's files, the wheels the page installs
with micropip, and the chat's WebSocket on ``/chat``, where every JSON line a member
sends ``{"name": ..., "text": ...}`` goes to every member. The page's Python opens
it with ``wsframed.connect(url, JsonLinesCodec())``, as it would outside the browser.

What it needs, installed by ``.ci/install-interop`` (or ``--pyodide`` / ``--wheels``):
Pyodide's npm package in tests/interop/node_modules/pyodide, and the wheels of
micropip, packaging, msgpack (pure Python) and cbor2 5 in tests/interop/pyodide/wheels.
wsframed's own wheel is built from this checkout at start (``python -m build``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import mimetypes
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

import wsframed
from wsframed import ConnectionClosed, Framed, ProtocolError
from wsframed.codecs import JsonLinesCodec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PYODIDE = ROOT / "tests" / "interop" / "node_modules" / "pyodide"
WHEELS = ROOT / "tests" / "interop" / "pyodide" / "wheels"
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"}


def build_wheel(into: Path) -> Path:
    """Build wsframed's wheel from this checkout into ``into``."""
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(into), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(into.glob("wsframed-*.whl"))


def site_files(pyodide: Path, wheels: list[Path]) -> dict[str, Path]:
    """Every URL path the page may ask for, and its file: nothing else is served."""
    files = {"/": HERE / "index.html", "/chat.py": HERE / "chat.py"}
    files.update({f"/pyodide/{f.name}": f for f in pyodide.iterdir() if f.is_file()})
    files.update({f"/wheels/{f.name}": f for f in wheels})
    return files


class Chat:
    """The chat room: every line a member sends goes to every member."""

    def __init__(self, files: dict[str, Path]):
        self.files = files
        self.members: set[Framed[Any]] = set()

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Serve the page and its files; let the WebSocket handshake on /chat through."""
        path = request.path.partition("?")[0]
        if path == "/chat":
            return None
        if path == "/wheels/":  # the page's list of wheels to install
            names = [name.removeprefix("/wheels/") for name in self.files if "/wheels/" in name]
            body, kind = json.dumps(names).encode(), "application/json"
        elif path in self.files:
            file = self.files[path]
            body = file.read_bytes()
            kind = TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "text/plain"
        else:
            return connection.respond(404, "not found\n")
        headers = Headers([("Content-Type", kind), ("Content-Length", str(len(body)))])
        return Response(200, "OK", headers, body)

    async def handler(self, framed: Framed[Any]) -> None:
        self.members.add(framed)
        try:
            async for message in framed:
                if isinstance(message, dict) and {"name", "text"} <= message.keys():
                    line = {"name": str(message["name"])[:40], "text": str(message["text"])[:500]}
                    for member in list(self.members):
                        with contextlib.suppress(ConnectionClosed):
                            await member.send(line)
        except ProtocolError:
            pass  # not JSON lines: the stream closed the connection
        finally:
            self.members.discard(framed)


def serve(chat: Chat, host: str = "127.0.0.1", port: int = 8001) -> wsframed.serve[Any]:
    """The example server, not started yet: ``async with serve(chat) as server``."""
    return wsframed.serve(
        chat.handler,
        host,
        port,
        JsonLinesCodec(),
        process_request=chat.process_request,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--pyodide", type=Path, default=PYODIDE, help="Pyodide's npm package")
    parser.add_argument("--wheels", type=Path, default=WHEELS, help="the dependencies' wheels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheels = [*args.wheels.glob("*.whl"), build_wheel(Path(tmp))]
        chat = Chat(site_files(args.pyodide, wheels))
        async with serve(chat, args.host, args.port) as server:
            print(f"open http://{args.host}:{server.port}/?name=ada (Ctrl-C to stop)", flush=True)
            await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
