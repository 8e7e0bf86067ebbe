"""Every example runs as a user would run it, finishes by itself, and says what it did.

The scripts are started all at once (they only use ephemeral ports on 127.0.0.1), then
each test waits for its own, so the module costs about as long as the slowest one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT = 30  # seconds, per script

# Each example with the lines its output must contain.
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": ["{'id': 1, 'result': 3}"],
    "lines_chat.py": [
        "[alice] * welcome alice; here: alice",
        "[carol] * welcome carol; here: alice, bob, carol",
        "[alice] bob: hello alice",
        "[bob] carol: hey, what's up?",
        "[carol] alice: hi all",
        "[carol] left",
        "chat over: 3 members, 3 lines, each delivered to everyone",
    ],
    "msgpack_request_response.py": [
        "-> id=1 slow_add(1, 2, 0.3)",
        "<- id=3 'FAST'",
        "<- error: no method 'nope'",
        "results in request order: [3, 30, 'FAST', 300]",
        "close code 1000",
    ],
    "close_with_timeout.py": [
        "echoed 'hello'",
        "close_code=1000",
        "(1006: no close frame came back; the TCP connection was aborted)",
    ],
    "same_protocol_tcp_and_ws.py": [
        "over TCP (Framed.from_streams):",
        "over a WebSocket (wsframed.serve / wsframed.connect):",
        "['get', 'answer']            -> ['value', 42]",
        "same protocol code, same replies on both transports",
    ],
}


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Start every example at once; yield name -> process; kill leftovers at the end."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT), os.environ.get("PYTHONPATH")
    ]))}
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / name)], cwd=ROOT, env=env, text=True,
            encoding="utf-8", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in EXPECTED
    }
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def finished(proc: subprocess.Popen[str]) -> str:
    """Wait (bounded) for ``proc``; assert it exited 0 quietly; return its stdout."""
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    assert err == "", err
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_says_what_it_did(
    name: str, runs: dict[str, subprocess.Popen[str]]
) -> None:
    out = finished(runs[name])
    for line in EXPECTED[name]:
        assert line in out, f"{line!r} missing from the output of {name}:\n{out}"


def test_request_response_replies_out_of_order(runs: dict[str, subprocess.Popen[str]]) -> None:
    out = finished(runs["msgpack_request_response.py"])
    order = [int(n) for n in re.findall(r"<- id=(\d+) ", out)]
    assert order == [3, 4, 2, 1]  # fastest first: replies matched by id, not by order


def test_close_timeout_bounds_the_close(runs: dict[str, subprocess.Popen[str]]) -> None:
    out = finished(runs["close_with_timeout.py"])
    match = re.search(r"aclose\(timeout=0\.5\) returned after ([\d.]+) s, close_code=1006", out)
    assert match is not None, out
    assert 0.45 <= float(match.group(1)) < 3
    match = re.search(r"leaving the block took ([\d.]+) s, close_code=1006", out)
    assert match is not None, out
    assert 0.25 <= float(match.group(1)) < 3


def test_every_example_of_this_suite_exists() -> None:
    for name in EXPECTED:
        assert (EXAMPLES / name).is_file(), name


def test_quickstart_is_what_the_docs_show() -> None:
    page = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    assert '--8<-- "examples/quickstart.py"' in page
