"""wsframed in Pyodide in headless Chromium: the example page of examples/browser_python.

Playwright drives the system Chromium (``executable_path``); the page, Pyodide's files
(the npm package) and the wheels come from the example's server on 127.0.0.1, nothing
from a CDN. The page's Python chats with a CPython client of the same server; the test
reads the page's messages; with WSFRAMED_UPDATE_SCREENSHOT=1 it saves the screenshot
docs/browser.md shows.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from examples.browser_python import server as example
from wsframed import connect
from wsframed.codecs import JsonLinesCodec

from .conftest import NODE_MODULES, REPO_ROOT, require
from .pyodide_support import build_wheels

pytestmark = pytest.mark.timeout(600)
SCREENSHOT = REPO_ROOT / "docs" / "browser-example.png"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return list(build_wheels(tmp_path_factory.mktemp("wheels")).glob("*.whl"))


def launch_options(chromium: str) -> dict[str, Any]:
    # Chromium refuses to start as root with its sandbox on (containers, CI).
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return {"executable_path": chromium, "headless": True, "args": args}


async def test_the_example_page_chats_in_python(chromium: str, wheels: list[Path]) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        async_playwright = None
    require("the playwright package", async_playwright is not None, "pip install playwright")
    assert async_playwright is not None
    chat = example.Chat(example.site_files(NODE_MODULES / "pyodide", wheels))
    async with example.serve(chat, "127.0.0.1", 0) as server, async_playwright() as playwright:
        port = server.port
        browser = await playwright.chromium.launch(**launch_options(chromium))
        try:
            page = await browser.new_page(viewport={"width": 640, "height": 420})
            await page.goto(f"http://127.0.0.1:{port}/?name=pyodide")
            await page.wait_for_selector("body[data-state=connected]", timeout=240_000)
            status = await page.text_content("#status")
            async with connect(f"ws://127.0.0.1:{port}/chat", JsonLinesCodec()) as framed:
                await framed.send({"name": "cpython", "text": "hello, browser"})
                assert await asyncio.wait_for(framed.recv(), 30) == {
                    "name": "cpython",
                    "text": "hello, browser",
                }
                await page.fill("#text", "hello from Python in Chromium")
                await page.click("button")
                assert await asyncio.wait_for(framed.recv(), 30) == {
                    "name": "pyodide",
                    "text": "hello from Python in Chromium",
                }
            await page.wait_for_function("document.querySelectorAll('#log li').length == 2")
            log = await page.eval_on_selector_all(
                "#log li", "items => items.map(i => i.textContent)"
            )
            if os.environ.get("WSFRAMED_UPDATE_SCREENSHOT") == "1":
                await page.screenshot(path=str(SCREENSHOT))  # docs/browser.md shows it
        finally:
            await browser.close()
    assert log == ["cpython: hello, browser", "pyodide: hello from Python in Chromium"]
    assert status is not None
    assert status.endswith("on emscripten")
    assert f"connected to ws://127.0.0.1:{port}/chat: wsframed 0.1.0, Python 3." in status
