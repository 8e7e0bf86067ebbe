"""wsframed in Pyodide under Node.js (npm ``pyodide``), over the JavaScript WebSocket.

One Node process installs the wheel built from this checkout with micropip and runs
tests/interop/pyodide/scenarios.py against real ``wsframed.serve()`` servers on
127.0.0.1; each test below checks one scenario's outcome, client side and server side.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import INTEROP_DIR, find_executable, free_port, require
from .pyodide_support import build_wheels, require_pyodide, running_servers

# One Node process runs every scenario: the first test waits for it (with the wheel build).
pytestmark = pytest.mark.timeout(600)
MANY = 200  # connections opened and closed to count the listeners left behind
MIB = 1024 * 1024


def node_command() -> list[str]:
    node = find_executable("WSFRAMED_NODE", "node", "nodejs")
    require("Node.js (node)", node is not None, "apt-get install nodejs npm")
    assert node is not None
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    require(f"Node.js 20 or later (found {version})", major >= 20, "apt-get install nodejs")
    # Node 20 has a WebSocket client behind a flag; 22 has it by default.
    return [node, "--experimental-websocket"] if major < 22 else [node]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_pyodide()
    command = node_command()
    wheels = build_wheels(tmp_path_factory.mktemp("wheels"))
    return asyncio.run(_run(command, wheels))


async def _run(command: list[str], wheels: Path) -> dict[str, Any]:
    async with running_servers() as servers:
        args = {"urls": servers.urls, "refused": f"ws://127.0.0.1:{free_port()}", "many": MANY}
        # WSFRAMED_PYODIDE_ONLY=slow_reader,rpc runs only those scenarios (to debug one).
        args["only"] = [n for n in os.environ.get("WSFRAMED_PYODIDE_ONLY", "").split(",") if n]
        process = await asyncio.create_subprocess_exec(
            *command,
            str(INTEROP_DIR / "pyodide" / "run.mjs"),
            str(wheels),
            str(INTEROP_DIR / "pyodide" / "scenarios.py"),
            json.dumps(args),
            cwd=INTEROP_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(INTEROP_DIR / "node_modules")},
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), 540)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        await asyncio.sleep(0.5)  # the servers see the last closes
        lines = out.decode().splitlines()
        found = [line for line in lines if line.startswith("RESULT ")]
        assert found, (
            f"no result (exit {process.returncode}): {out.decode()[-3000:]}{err.decode()[-3000:]}"
        )
        result: dict[str, Any] = json.loads(found[-1].removeprefix("RESULT "))
        result["server"] = servers.seen
        return result


def test_runs_in_pyodide_without_websockets(results: dict[str, Any]) -> None:
    assert results["platform"] == "emscripten"
    assert results["websockets_imported"] is False


@pytest.mark.parametrize("codec", ["lines", "jsonl", "msgpack", "cbor", "length"])
def test_every_codec_both_ways_with_frames_cut_across_messages(
    results: dict[str, Any], codec: str
) -> None:
    assert results[f"echo_{codec}"] is True


def test_a_4_mib_frame_both_ways(results: dict[str, Any]) -> None:
    assert results["big_frame"] == [4 * 1024 * 1024, True]


def test_close_codes_and_reasons_from_the_server(results: dict[str, Any]) -> None:
    assert results["server_closes_4000"] == [[4000, "server says bye"], 4000, "server says bye"]
    assert results["server_closes_1000"] == ["end of stream", 1000, "done"]


def test_close_codes_and_reasons_from_pyodide(results: dict[str, Any]) -> None:
    # The server's side: the code Pyodide's client sent (1011 goes out as 4011).
    assert results["server"]["closing 4321"] == [4321, "client says bye"]
    assert results["server"]["closing 1011"] == [4011, "oops"]
    # The client's side: the server's reply echoes the code.
    assert results["client_closes_4321"] == [4321, "client says bye"]
    assert results["client_closes_1011"] == [4011, "oops"]


def test_text_policy(results: dict[str, Any]) -> None:
    # reject: the client closes with 1003 (sent as 4003), the reader gets ProtocolError.
    assert results["text_reject"][0][0] == "ProtocolError"
    assert results["text_bytes"] == [["text", "after"], 1000]
    assert results["text_ignore"] == [["after"], 1000]
    assert sorted(results["server"]["text"]) == [1000, 1000, 4003]


def test_a_slow_reader_is_closed_with_1009_past_max_queue(results: dict[str, Any]) -> None:
    assert isinstance(results["slow_reader"], list), results["slow_reader"]
    received, outcome = results["slow_reader"]
    assert received == 1024 * 1024  # what fit in max_queue: sixteen 64 KiB messages
    assert outcome[0] == 1009
    assert outcome[1] == "receive queue full: 65536 B on 1048576 B unread, max 1048576"
    _sent, code, reason = results["server"]["flood"]
    assert (code, reason) == (4009, outcome[1])


def test_a_queue_full_before_connect_returns_is_a_1009_not_a_refused_connect(
    results: dict[str, Any],
) -> None:
    # The CI failure of stop 24: the flood filled the queue between the open event and
    # connect()'s task resuming, and connect() raised ConnectionRefusedError.
    assert isinstance(results["flood_before_open_returns"], list), results[
        "flood_before_open_returns"
    ]
    received, outcome = results["flood_before_open_returns"]
    assert received == 128 * 1024
    assert outcome == [1009, "receive queue full: 65536 B on 131072 B unread, max 131072"]
    _sent, code, reason = results["server"]["flood_early"]
    assert (code, reason) == (4009, outcome[1])


def test_rpc_calls_both_ways(results: dict[str, Any]) -> None:
    assert results["rpc"] == [5, 42]


def test_no_listener_left_behind_after_many_connections(results: dict[str, Any]) -> None:
    assert results["many_connections"] == 0
    assert results["live_proxies"] == 0


def test_ping_is_not_available(results: dict[str, Any]) -> None:
    assert results["ping"].startswith("browsers have no API to send a WebSocket ping")


def test_a_failed_connect_says_the_browser_gives_no_reason(results: dict[str, Any]) -> None:
    assert results["refused"].startswith("could not open a WebSocket to ws://127.0.0.1:")
    assert "browsers give no reason" in results["refused"]


def test_a_javascript_websocket_made_by_the_program_wrapped_in_a_wsstream(
    results: dict[str, Any],
) -> None:
    assert results["wrap_js_websocket"] == [
        "sent before open",  # wrapped before its open event: send() waited for it
        True,  # get_extra_info("url")
        [4100, "done", 3],  # aclose(4100, "done"): the server's reply, then CLOSED
        "sent once open",  # wrapped once open
        1000,
        ["ConnectionClosed", 1006],  # wrapped once closed: its close event is gone
        0,  # listeners left
    ]


def test_drain_waits_while_buffered_amount_is_over_high_water(results: dict[str, Any]) -> None:
    # The server reads nothing until told to on another connection: the client writes
    # 1 MiB at a time until a drain() waits with bufferedAmount over high_water (256 KiB),
    # still waits a second later, and returns once the server reads, with
    # bufferedAmount at most high_water; the server then gets every byte written.
    outcome = results["drain_waits_for_buffered_amount"]
    assert isinstance(outcome, list), outcome
    written, still_waiting, blocked_over_high_water, after_under, released = outcome
    assert [still_waiting, blocked_over_high_water, after_under, released] == [
        True,
        True,
        True,
        "released",
    ]
    assert written % MIB == 0
    assert results["server"]["hold"] == [written, 1000]


@pytest.mark.parametrize("policy", ["reject", "bytes", "ignore"])
def test_events_in_wire_order_and_none_after_closed(results: dict[str, Any], policy: str) -> None:
    # As tests/test_stream_events_order.py over the other backends: a binary line, a
    # text message and the server's close right behind it, nobody reading meanwhile.
    events, lines = results[f"events_{policy}"]
    closing = [["CloseFrame", 1000, ""], ["Closed", 1000, ""]]
    if policy == "reject":
        error = (
            "received a text message of 6 bytes; this stream carries binary messages "
            "only (text='reject'): closing with 1003"
        )
        assert events == [["TextMessage", 6], ["Error", ["ProtocolError", error]], *closing]
        assert lines == ["before", "ProtocolError"]
    else:
        assert events == [["TextMessage", 6], *closing]
        assert lines == (["before", "hello"] if policy == "bytes" else ["before"])
    assert results["server"]["text_then_close"][policy] == 1000


def test_the_reconnecting_loop_in_pyodide(results: dict[str, Any]) -> None:
    seen, attempts = results["reconnect"]
    assert seen == [
        "connection 1",
        [1011, "restarting"],  # the server ended the first connection
        "connection 2",  # the loop opened another
        "could not open a WebSocket",  # the refused URL: the delays ran out
        "ValueError",  # a URL the browser refuses: raised at once
    ]
    # The refused URL: tried once, then once after each of the two delays.
    assert attempts == ["ConnectionRefusedError"] * 3 + ["ValueError"]
    assert results["server"]["restart"] == [2, 1000]  # the second one closed with 1000


def test_cbor2_5_nesting_at_the_default_max_depth(results: dict[str, Any]) -> None:
    # Pyodide's cbor2 is 5's pure-Python wheel (wsframed/codecs/_cbor5.py): it decodes
    # what max_depth=256 allows, and its encoder stops near 170 levels with ValueError.
    assert results["cbor_nesting"] == [
        0,
        "CBOR item nested deeper than max_depth=2",
        151,
        "cannot encode an item nested this deep with cbor2 ",
    ]
