"""Importing wsframed does not import websockets: Pyodide has no websockets to import.

websockets is imported when a websockets connection is made (``connect()``,
``serve()``, a ``WsStream`` over a websockets connection), so ``import wsframed`` and
``wsframed.connect`` in the browser (docs/browser.md) need only the codecs' libraries.
"""

from __future__ import annotations

import subprocess
import sys

from wsframed import Framed, connect, serve
from wsframed.codecs import LinesCodec

PROGRAM = """
import sys
import wsframed
import wsframed.client, wsframed.server, wsframed.request, wsframed.framed, wsframed.rpc
import wsframed.codecs, wsframed.backends
print(sorted(name for name in sys.modules if name.partition(".")[0] == "websockets"))
"""


def test_import_wsframed_imports_no_websockets() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout == "[]\n"


async def test_connect_and_serve_still_import_websockets_when_used() -> None:
    async def echo(framed: Framed[str]) -> None:
        async for line in framed:
            await framed.send(line)

    async with serve(echo, "127.0.0.1", 0, codec=LinesCodec()) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", LinesCodec()) as framed:
            await framed.send("hello")
            assert await framed.recv() == "hello"
            assert framed.request is None  # a client's side has no opening request
