"""A minimal Chrome DevTools Protocol client over ``websockets``, for headless Chromium.

Just enough to drive one page: start Chromium with ``--remote-debugging-port=0``, read
the port from ``DevToolsActivePort`` in the profile directory, connect to the browser
target, open a page, attach to it (flat sessions), navigate, evaluate JavaScript and
collect console messages and exceptions for failure reports.

Why not Playwright: it would add a ~40 MB dependency whose pinned protocol must match
whatever Chromium the system has (``playwright install`` cannot download here), while
these tests need four CDP methods. This module uses ``websockets``, already a
dependency of wsframed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class CdpError(Exception):
    """A CDP command failed, or JavaScript threw."""


class Page:
    """One page target, attached with a flat session."""

    def __init__(self, browser: Browser, session_id: str):
        self.browser = browser
        self.session_id = session_id
        self.console: list[str] = []
        self.exceptions: list[str] = []

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.browser.send(method, params, session_id=self.session_id)

    async def evaluate(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page (awaiting a promise); return its JSON value."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CdpError(f"{expression!r} threw: {text}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll ``expression`` until it is truthy; return its value (TimeoutError if never)."""
        async with asyncio.timeout(timeout):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await asyncio.sleep(0.02)

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.console.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.exceptions.append(str(text))
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.console.append(f"log.{entry['level']}: {entry['text']}")

    def diagnostics(self) -> str:
        """Console lines and exceptions seen so far, for an assertion message."""
        return "\n".join(["console:", *self.console, "exceptions:", *self.exceptions])


class Browser:
    """A connection to Chromium's browser target."""

    def __init__(self, connection: ClientConnection):
        self.connection = connection
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._pages: dict[str, Page] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                message = json.loads(raw)
                if "id" in message:
                    future = self._pending.pop(message["id"], None)
                    if future is None or future.done():
                        continue
                    if "error" in message:
                        future.set_exception(CdpError(str(message["error"])))
                    else:
                        future.set_result(message.get("result", {}))
                elif "sessionId" in message and message["sessionId"] in self._pages:
                    page = self._pages[message["sessionId"]]
                    page._on_event(message["method"], message.get("params", {}))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CdpError("the DevTools connection closed"))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> Any:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self.connection.send(json.dumps(message))
        async with asyncio.timeout(15):
            return await future

    async def new_page(self, url: str) -> Page:
        """Open ``url`` in a new page and wait for its load event."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        self._pages[page.session_id] = page
        for domain in ("Runtime", "Page", "Log"):
            await page.send(f"{domain}.enable")
        await page.send("Page.navigate", {"url": url})
        await page.wait_for(
            "document.readyState === 'complete' && location.href !== 'about:blank'"
        )
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("Browser.close"), 5)
        await self.connection.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


async def _devtools_url(profile: Path, process: asyncio.subprocess.Process) -> str:
    """Wait for Chromium to write DevToolsActivePort: the port, then the browser's path."""
    port_file = profile / "DevToolsActivePort"
    async with asyncio.timeout(20):
        while True:
            if process.returncode is not None:
                raise CdpError(f"Chromium exited with status {process.returncode}")
            with contextlib.suppress(FileNotFoundError):
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def launch(executable: str) -> AsyncIterator[Browser]:
    """Start headless Chromium with a fresh profile; yield a :class:`Browser`; stop it.

    Chromium runs in its own process group, which is killed at the end if
    ``Browser.close`` did not stop it within a few seconds.
    """
    with tempfile.TemporaryDirectory(prefix="wsframed-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank",
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            url = await _devtools_url(Path(profile), process)
            connection = await connect(url, max_size=None, compression=None)
            browser = Browser(connection)
            try:
                yield browser
            finally:
                await browser.close()
        finally:
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
