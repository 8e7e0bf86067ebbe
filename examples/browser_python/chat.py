"""The page's Python: a chat client, with wsframed over the browser's WebSocket.

The same code runs outside the browser with websockets underneath: only the page
(``js.document``) is the browser's.
"""

import asyncio
import sys

import js
from pyodide.ffi import create_proxy

import wsframed
from wsframed.codecs import JsonLinesCodec


def element(name):
    return js.document.getElementById(name)


def show(line):
    item = js.document.createElement("li")
    item.textContent = line
    element("log").appendChild(item)


async def run_chat():
    url = js.location.origin.replace("http", "ws", 1) + "/chat"
    element("name").value = js.URLSearchParams.new(js.location.search).get("name") or "guest"
    outbox = asyncio.Queue()

    def on_submit(event):
        event.preventDefault()
        if element("text").value:
            outbox.put_nowait({"name": element("name").value, "text": element("text").value})
            element("text").value = ""

    async def send_typed(framed):
        while True:
            await framed.send(await outbox.get())

    submit = create_proxy(on_submit)
    element("form").addEventListener("submit", submit)
    try:
        async with wsframed.connect(url, JsonLinesCodec()) as framed:
            version = sys.version.split()[0]
            element("status").textContent = (
                f"connected to {url}: wsframed {wsframed.__version__}, "
                f"Python {version} on {sys.platform}"
            )
            js.document.body.dataset.state = "connected"
            sender = asyncio.create_task(send_typed(framed))
            try:
                async for message in framed:
                    show(f"{message['name']}: {message['text']}")
            finally:
                sender.cancel()
        element("status").textContent = "the server closed the chat"
    except OSError as exc:
        element("status").textContent = f"cannot connect: {exc}"
    finally:
        element("form").removeEventListener("submit", submit)
        submit.destroy()
        js.document.body.dataset.state = "closed"
