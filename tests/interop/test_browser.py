"""The browser example (examples/browser/) in headless Chromium against a wsframed server.

Chromium is driven over the DevTools protocol (``cdp.py``). The page is served by the
example's own server, which also speaks msgpack frames on ``/ws``; the test fills in the
form, clicks, and asserts what the page shows. ``msgpack.js``, the page's small msgpack
implementation, is cross-checked against ``@msgpack/msgpack`` under Node.js.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math

import pytest

from examples.browser import server as example

from . import cdp
from .conftest import INTEROP_DIR, REPO_ROOT

pytestmark = pytest.mark.timeout(45)

MSGPACK_JS = REPO_ROOT / "examples" / "browser" / "msgpack.js"


async def test_msgpack_js_agrees_with_msgpack_library(node: str) -> None:
    process = await asyncio.create_subprocess_exec(
        node, str(INTEROP_DIR / "node" / "check_msgpack_js.mjs"), str(MSGPACK_JS), "500", "7",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=INTEROP_DIR,
    )  # fmt: skip
    async with asyncio.timeout(20):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode(errors="replace")
    result = json.loads(stdout)
    assert result["checked"] == 500
    assert result["failure_count"] == 0, result["failures"]


async def set_value(page: cdp.Page, element_id: str, value: object) -> None:
    await page.evaluate(f"document.getElementById({element_id!r}).value = {json.dumps(value)}")


async def replies(page: cdp.Page) -> list[dict[str, str]]:
    result: list[dict[str, str]] = await page.evaluate(
        "[...document.querySelectorAll('#replies li.reply')]"
        ".map(li => ({...li.dataset, text: li.textContent}))"
    )
    return result


async def test_browser_page_sends_frames_and_sees_text_refused(
    chromium: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="wsframed")
    # write_chunk_size=7: the replies reach the page cut into 7-byte messages.
    async with (
        example.serve("127.0.0.1", 0, write_chunk_size=7) as server,
        cdp.launch(chromium) as browser,
    ):
        page = await browser.new_page(f"http://127.0.0.1:{server.port}/")
        try:
            await page.wait_for("document.getElementById('status').dataset.state === 'open'")
            await page.wait_for(
                "document.getElementById('server').textContent.includes('wsframed')"
            )
            assert await page.evaluate("document.getElementById('server').textContent") == (
                "wsframed (codec: msgpack)"
            )

            # Three frames as one byte stream cut into 4-byte messages.
            text = "héllo wsframed ✓"
            await set_value(page, "text", text)
            await set_value(page, "count", 3)
            await set_value(page, "chunk", 4)
            await page.evaluate("document.getElementById('send').click()")
            await page.wait_for("document.querySelectorAll('#replies li.reply').length >= 3")
            frame_size = len(example_frame(1, text))
            assert await page.evaluate("document.getElementById('sent').textContent") == (
                f"3 frames, {3 * frame_size} bytes, in {math.ceil(3 * frame_size / 4)} messages"
            )

            # Five more, packed into one message.
            await set_value(page, "text", "packed")
            await set_value(page, "count", 5)
            await set_value(page, "chunk", 10000)
            await page.evaluate("document.getElementById('send').click()")
            await page.wait_for("document.querySelectorAll('#replies li.reply').length >= 8")

            shown = await replies(page)
            texts = [text] * 3 + ["packed"] * 5
            assert [r["id"] for r in shown] == [str(i) for i in range(1, 9)]
            assert [r["upper"] for r in shown] == [t.upper() for t in texts]
            assert [r["sha256"] for r in shown] == [
                hashlib.sha256(t.encode()).hexdigest() for t in texts
            ]
            assert shown[0]["text"].startswith(
                f"#1 {text.upper()} ({len(text)} characters, sha256 "
            )

            # A text message: wsframed refuses it with 1003 and the page shows the code.
            await page.evaluate("document.getElementById('send-text').click()")
            await page.wait_for("document.getElementById('close-code').textContent !== '\u2013'")
            assert await page.evaluate("document.getElementById('close-code').textContent") == (
                "1003"
            )
            assert await page.evaluate("document.getElementById('close-reason').textContent") == (
                "text messages are not accepted"
            )
            status = await page.evaluate("document.getElementById('status').textContent")
            assert status == "closed: 1003 text messages are not accepted"
            assert page.exceptions == []
        except BaseException:
            print(page.diagnostics())
            raise
    assert [r.getMessage() for r in caplog.records] == []  # the handler ended cleanly


def example_frame(frame_id: int, text: str) -> bytes:
    """The msgpack bytes the page sends for one {id, text} frame."""
    from wsframed.codecs import MsgpackCodec

    return MsgpackCodec().encode({"id": frame_id, "text": text})
